#!/bin/sh
# greylist.sh: greylisting under a real Postfix, with unregistered =
# greylist, a 2 s delay and the memory backend with a snapshot: the first
# attempt of an unregistered client gets 451 4.7.1 at RCPT and its retry
# after the delay is delivered; a registered client is never delayed; the
# state survives a restart of the milter (SIGTERM saves the snapshot, the
# next start reads it: the retry is not greylisted again).
# Needs root, postfix, smtp-sink, nsd, drill (t/integration/lib/postfix.sh);
# exits 77 (skipped) with the reason when one is missing.
# Run alone: sudo BUILD=$PWD/build sh t/integration/postfix/greylist.sh [SCENARIO...]
#   (--list: the scenarios; E2E_KEEP=DIR keeps everything for debugging)
set -u
TLIB=$(cd "$(dirname "$0")/../lib" && pwd)
. "$TLIB/postfix.sh"
e2e_phase greylist "retry registered restart" "$@"
e2e_start --no-postfix
# The base configuration with unregistered = greylist, and the state in
# memory, saved in the milter's own directory (its user may write there).
milter_config enforce greylist 2020-01-01 tempfail
cat >> "$MILTER_CONF" <<EOF

[greylist]
delay = 2
auto_allow = 0

[state]
backend = memory
snapshot = $MILTER_DIR/state
snapshot_interval = 10
EOF
E2E_CONFIG_NOW=greylist
milter_reload || not_ok "greylist configuration" "the milter did not take it"
postfix_start

# attempt NAME RCPT TOKEN: an unregistered client (198.51.100.66) sends TOKEN to RCPT.
attempt() {
    session "$1" 198.51.100.66 mx.spf.e2e.test <<EOF
MAIL FROM:<carol@pass.spf.e2e.test>
RCPT TO:<$2>
$(message "$3")
EOF
}

if wanted retry; then
    attempt first dave@dest.test e2e-grey-first
    check "greylist: first attempt of an unregistered client: 451 4.7.1 at RCPT" \
        "$(reply first 'RCPT TO:<dave@dest.test>')" "451 4.7.1 greylisted, please retry in 2 seconds"
    check "greylist: first attempt: nothing queued (no recipient)" "$(code first 'DATA')" "554 5.5.1"
    attempt early dave@dest.test e2e-grey-early
    check_match "greylist: a retry before the delay: 451 4.7.1 with the seconds left" \
        "$(reply early 'RCPT TO:<dave@dest.test>')" "451 4.7.1 greylisted, please retry in [12] second*"
    sleep 2.1
    attempt retry dave@dest.test e2e-grey-retry
    check "greylist: the retry after the delay: RCPT accepted" "$(code retry 'RCPT TO:<dave@dest.test>')" "250 2.1.5"
    check "greylist: the retry: DATA accepted" "$(code retry '.')" "250 2.0.0"
    wait_delivered retry
    check "greylist: the retry is delivered" "$(delivered_to e2e-grey-retry)" "dave@dest.test"
    check "greylist: the earlier attempts were not" "$(delivered_to e2e-grey-first)$(delivered_to e2e-grey-early)" ""
    check_match "greylist: the decision line of the first attempt" \
        "$(grep 'rcpt=<dave@dest.test>' "$MILTER_LOG" | grep 'greylist=new' | head -n 1)" \
        "*stage=rcpt ip=198.51.100.66 *greylist=new action=tempfail code=\"451 4.7.1\" reason=greylist:registry:unregistered:reg.e2e.test*"
    check_match "greylist: the decision line of the delivered retry" \
        "$(grep 'stage=data ip=198.51.100.66' "$MILTER_LOG" | tail -n 1)" "*greylist=passed *"
fi

if wanted registered; then
    session registered 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<alice@pass.spf.e2e.test>
RCPT TO:<erin@dest.test>
$(message e2e-grey-registered)
EOF
    check "greylist: a registered client is never delayed: RCPT" \
        "$(code registered 'RCPT TO:<erin@dest.test>')" "250 2.1.5"
    check "greylist: registered: DATA" "$(code registered '.')" "250 2.0.0"
    wait_delivered registered
    check "greylist: registered: delivered at the first attempt" "$(delivered_to e2e-grey-registered)" \
        "erin@dest.test"
    check "greylist: registered: no greylist= in its decision lines" \
        "$(grep 'ip=198.51.100.7 ' "$MILTER_LOG" | grep -c 'greylist=')" 0
fi

if wanted restart; then
    attempt before-restart frank@dest.test e2e-grey-before-restart
    check "restart: first attempt greylisted" "$(code before-restart 'RCPT TO:<frank@dest.test>')" "451 4.7.1"
    milter_stop
    check_match "restart: SIGTERM saved the state snapshot" "$(grep -F 'state: saved' "$MILTER_LOG")" \
        "*state: saved [1-9]* entries to $MILTER_DIR/state in *"
    milter_start
    check_match "restart: the new milter read the snapshot" "$(grep -F 'state: read' "$MILTER_LOG")" \
        "*state: read [1-9]* entries from $MILTER_DIR/state*"
    sleep 2.1
    attempt after-restart frank@dest.test e2e-grey-after-restart
    check "restart: the retry after the restart is not greylisted again" \
        "$(code after-restart 'RCPT TO:<frank@dest.test>')" "250 2.1.5"
    check "restart: DATA" "$(code after-restart '.')" "250 2.0.0"
    wait_delivered after-restart
    check "restart: delivered" "$(delivered_to e2e-grey-after-restart)" "frank@dest.test"
fi
e2e_finish
