#!/bin/sh
# dns-trouble.sh: DNS failing under a real Postfix: the DNS server stopped
# (the registry's on_error = tempfail, then on_error = accept with SPF
# temperror), and a DNS server that never answers (build/t/dns-blackhole):
# the per-stage deadline ([resolver] stage_timeout_ms = 3000) ends the
# session far below Postfix's 30 s milter timeout.
# Needs root, postfix, smtp-sink, nsd, drill (t/integration/lib/postfix.sh);
# exits 77 (skipped) with the reason when one is missing; without
# build/t/dns-blackhole the blackhole scenario says so and is not run.
# Run alone: sudo BUILD=$PWD/build sh t/integration/postfix/dns-trouble.sh [SCENARIO...]
#   (--list: the scenarios; E2E_KEEP=DIR keeps everything for debugging)
set -u
TLIB=$(cd "$(dirname "$0")/../lib" && pwd)
. "$TLIB/postfix.sh"
e2e_phase dns-trouble "dns-down blackhole" "$@"
e2e_start

# NSD stops here for good: the blackhole scenario does not need it.
if wanted dns-down; then
    e2e_config enforce reject 2020-01-01 tempfail
    dns_server_stop
    session dns-down-registry 198.51.100.20 mx.spf.e2e.test <<EOF
MAIL FROM:<kim@pass2.spf.e2e.test>
EOF
    check "DNS down, registry on_error = tempfail: MAIL" \
        "$(code dns-down-registry 'MAIL FROM:<kim@pass2.spf.e2e.test>')" "451 4.4.3"
    e2e_config enforce reject 2020-01-01 accept
    session dns-down-spf 198.51.100.21 mx.spf.e2e.test <<EOF
MAIL FROM:<kim@pass3.spf.e2e.test>
EOF
    check "DNS down, registry on_error = accept: SPF temperror" \
        "$(code dns-down-spf 'MAIL FROM:<kim@pass3.spf.e2e.test>')" "451 4.7.24"
fi

# Every query times out.
if wanted blackhole; then
    if [ -x "$BUILD/t/dns-blackhole" ]; then
        dns_blackhole_start 120
        real_dns=$DNS_SERVER
        DNS_SERVER=$BLACKHOLE_SERVER
        e2e_config enforce reject 2020-01-01 tempfail
        t0=$(now_ms)
        session dns-blackhole 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<alice@pass.spf.e2e.test>
EOF
        t1=$(now_ms)
        check "DNS never answers: MAIL tempfailed (registry on_error = tempfail)" \
            "$(code dns-blackhole 'MAIL FROM:<alice@pass.spf.e2e.test>')" "451 4.4.3"
        check_match "DNS never answers: the session is over in under 10 s (deadlines, not the MTA's timeout)" \
            "$(((t1 - t0) / 1000))" "[0-9]"
        echo "# DNS black hole session took $((t1 - t0)) ms"
        DNS_SERVER=$real_dns
    else
        echo "# $BUILD/t/dns-blackhole not built: the unanswered-DNS session is not run"
    fi
fi

e2e_finish
