#!/bin/sh
# reload.sh: SIGHUP reloads of the milter's configuration under a real
# Postfix: a session open across the reload keeps its snapshot while new
# ones get unregistered = tag; an enforce_after date in the future tags
# instead of refusing; observe mode only says what it would have done; a
# broken file is refused and the configuration in force stays. Each
# scenario writes the configuration it needs and checks what was delivered.
# Needs root, postfix, smtp-sink, nsd, drill (t/integration/lib/postfix.sh);
# exits 77 (skipped) with the reason when one is missing.
# Run alone: sudo BUILD=$PWD/build sh t/integration/postfix/reload.sh [SCENARIO...]
#   (--list: the scenarios; E2E_KEEP=DIR keeps everything for debugging)
set -u
TLIB=$(cd "$(dirname "$0")/../lib" && pwd)
. "$TLIB/postfix.sh"
e2e_phase reload "tag before-enforce observe broken" "$@"
e2e_start

# A session opened under unregistered = reject, then the reload to tag.
if wanted tag; then
    e2e_config enforce reject 2020-01-01 tempfail
    rm -f "$E2E_DIR/ready" "$E2E_DIR/go"
    session open-across-reload 198.51.100.66 mx.spf.e2e.test <<EOF &
!touch $E2E_DIR/ready
!wait-file $E2E_DIR/go
MAIL FROM:<carol@pass.spf.e2e.test>
EOF
    open_pid=$!
    wait_until 10 test -f "$E2E_DIR/ready"
    e2e_config enforce tag 2020-01-01 tempfail
    check "SIGHUP reload: new configuration generation" "$MILTER_GENERATION" 2
    session tag 198.51.100.66 mx.spf.e2e.test <<EOF
MAIL FROM:<carol@pass.spf.e2e.test>
RCPT TO:<bob@dest.test>
$(message e2e-unregistered-tag)
EOF
    touch "$E2E_DIR/go"
    wait $open_pid
    check "session opened before the reload keeps its snapshot (reject)" \
        "$(code open-across-reload 'MAIL FROM:<carol@pass.spf.e2e.test>')" "550 5.7.1"
    check "unregistered, unregistered = tag (after reload): MAIL" "$(code tag 'MAIL FROM:<carol@pass.spf.e2e.test>')" \
        "250 2.1.0"
    check "unregistered = tag: DATA" "$(code tag '.')" "250 2.0.0"
    check_match "milter process survived SIGHUP" "$(kill -0 "$MILTER_PID" 2>&1 && echo alive)" "alive"
    wait_delivered tag
    check "unregistered = tag: delivered" "$(delivered_to e2e-unregistered-tag)" "bob@dest.test"
    check_match "unregistered = tag: X-Regmilter header" "$(header_line e2e-unregistered-tag X-Regmilter)" \
        "X-Regmilter: *unregistered*198.51.100.66*"
fi

if wanted before-enforce; then
    e2e_config enforce reject 2099-01-01 tempfail
    session before-enforce 198.51.100.66 mx.spf.e2e.test <<EOF
MAIL FROM:<carol@pass.spf.e2e.test>
RCPT TO:<bob@dest.test>
$(message e2e-before-enforce)
EOF
    check "unregistered before enforce_after: MAIL accepted" \
        "$(code before-enforce 'MAIL FROM:<carol@pass.spf.e2e.test>')" "250 2.1.0"
    check "before enforce_after: DATA" "$(code before-enforce '.')" "250 2.0.0"
    wait_delivered before-enforce
    check_match "before enforce_after: tagged instead" "$(header_line e2e-before-enforce X-Regmilter)" \
        "X-Regmilter: *198.51.100.66*"
fi

if wanted observe; then
    e2e_config observe reject 2020-01-01 tempfail
    session observe 198.51.100.66 mx.spf.e2e.test <<EOF
MAIL FROM:<carol@fail.spf.e2e.test>
RCPT TO:<bob@dest.test>
$(message e2e-observe)
EOF
    check "observe mode: unregistered + SPF fail accepted: MAIL" "$(code observe 'MAIL FROM:<carol@fail.spf.e2e.test>')" \
        "250 2.1.0"
    check "observe mode: DATA" "$(code observe '.')" "250 2.0.0"
    wait_delivered observe
    check "observe mode: delivered" "$(delivered_to e2e-observe)" "bob@dest.test"
    check_match "observe mode: would-reject header" "$(header_line e2e-observe X-Regmilter)" "X-Regmilter: would reject*"
fi

# Observe mode in force, then a broken file.
if wanted broken; then
    e2e_config observe reject 2020-01-01 tempfail
    e2e_config_broken '[milter]\nmode = sometimes\n[nonsense\n'
    milter_reload expect-refusal
    check_match "broken configuration refused on reload" "$(grep -c 'reload refused' "$MILTER_LOG")" "[1-9]*"
    session after-broken 198.51.100.66 mx.spf.e2e.test <<EOF
MAIL FROM:<carol@fail.spf.e2e.test>
EOF
    check "after a refused reload the old configuration (observe) stays" \
        "$(code after-broken 'MAIL FROM:<carol@fail.spf.e2e.test>')" "250 2.1.0"
fi

e2e_finish
