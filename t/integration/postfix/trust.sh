#!/bin/sh
# trust.sh: clients the policy trusts, through a real Postfix: a trusted
# network and an SMTP-authenticated client (XCLIENT LOGIN, which Postfix
# hands to the milter as {auth_authen}) pass even with SPF fail; a client
# without an address: through Postfix (XCLIENT ADDR=[UNAVAILABLE], which
# libmilter itself refuses) and at the milter protocol level with
# miltertest(8) (t/fixtures/e2e/unknown-client.lua, family SMFIA_UNKNOWN).
# Needs root, postfix, smtp-sink, nsd, drill (t/integration/lib/postfix.sh);
# exits 77 (skipped) with the reason when one is missing; without
# miltertest the no-address scenario says so and is not run.
# Run alone: sudo BUILD=$PWD/build sh t/integration/postfix/trust.sh [SCENARIO...]
#   (--list: the scenarios; E2E_KEEP=DIR keeps everything for debugging)
set -u
TLIB=$(cd "$(dirname "$0")/../lib" && pwd)
. "$TLIB/postfix.sh"
e2e_phase trust "trusted authenticated unknown-client no-address" "$@"
e2e_start

if wanted trusted; then
    session trusted 192.0.2.10 mx.spf.e2e.test <<EOF
MAIL FROM:<ivan@fail.spf.e2e.test>
RCPT TO:<bob@dest.test>
$(message e2e-trusted)
EOF
    check "trusted network bypass (unregistered, SPF fail): MAIL" "$(code trusted 'MAIL FROM:<ivan@fail.spf.e2e.test>')" \
        "250 2.1.0"
    check "trusted network bypass: DATA" "$(code trusted '.')" "250 2.0.0"
    wait_delivered trusted
    check "trusted network: delivered" "$(delivered_to e2e-trusted)" "bob@dest.test"
fi

# SMTP AUTH, presented with XCLIENT LOGIN: Postfix hands it to the milter as
# {auth_authen} (asked for with smfi_setsymlist at MAIL FROM).
if wanted authenticated; then
    raw_session authenticated <<'EOF'
EHLO client.e2e.test
XCLIENT ADDR=198.51.100.66 NAME=[UNAVAILABLE] HELO=mx.spf.e2e.test LOGIN=alice
EHLO mx.spf.e2e.test
MAIL FROM:<alice@fail.spf.e2e.test>
QUIT
EOF
    check "SMTP-authenticated client (unregistered, SPF fail) is trusted: MAIL" \
        "$(code authenticated 'MAIL FROM:<alice@fail.spf.e2e.test>')" "250 2.1.0"
    check_match "authenticated trust logged" "$(grep 'from=<alice@fail.spf.e2e.test>' "$MILTER_LOG" | head -n 1)" \
        "*trust=authenticated*"
fi

# XCLIENT ADDR=[UNAVAILABLE]: Postfix 3.7 then sends the milter family "4"
# with the address text "unknown", which libmilter itself refuses (it drops
# the milter connection before any callback runs): Postfix answers with
# milter_default_action. regmilter's own unknown-client path (family
# SMFIA_UNKNOWN, as for local submissions) is the no-address scenario.
if wanted unknown-client; then
    session unknown-client '[UNAVAILABLE]' mx.spf.e2e.test <<EOF
MAIL FROM:<judy@fail.spf.e2e.test>
EOF
    check "XCLIENT ADDR=[UNAVAILABLE]: Postfix's milter_default_action (libmilter refuses the address)" \
        "$(code unknown-client 'MAIL FROM:<judy@fail.spf.e2e.test>')" "451 4.7.1"
fi

if wanted no-address; then
    if command -v miltertest >/dev/null 2>&1; then
        miltertest -s "$FIX_E2E/unknown-client.lua" -D "socket=$MILTER_SOCKET" > "$E2E_DIR/s/miltertest.out" 2>&1
        check "miltertest, client without an address: script ran" "$?" 0
        check "client without an address (unknown_client = trust): MAIL continues" \
            "$(sed -n 's/^mail=//p' "$E2E_DIR/s/miltertest.out")" "continue"
        check "client without an address: end of message accepted" \
            "$(sed -n 's/^eom=//p' "$E2E_DIR/s/miltertest.out")" "continue"
        check "client without an address: Authentication-Results added" \
            "$(sed -n 's/^ar-header=//p' "$E2E_DIR/s/miltertest.out")" "yes"
    else
        echo "# miltertest not installed: the unknown-client milter session is not run"
    fi
fi

e2e_finish
