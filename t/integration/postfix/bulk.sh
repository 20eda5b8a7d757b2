#!/bin/sh
# bulk.sh: bulk mail refused recipient by recipient through a real Postfix:
# a sender the registry marks as bulk (opted-out recipients refused at RCPT)
# and a message with Precedence: bulk (opted-out recipients removed at the
# end of the message; every recipient opted out: the message refused), with
# who finally got each message (t/fixtures/e2e/bulk-table).
# Needs root, postfix, smtp-sink, nsd, drill (t/integration/lib/postfix.sh);
# exits 77 (skipped) with the reason when one is missing.
# Run alone: sudo BUILD=$PWD/build sh t/integration/postfix/bulk.sh [SCENARIO...]
#   (--list: the scenarios; E2E_KEEP=DIR keeps everything for debugging)
set -u
TLIB=$(cd "$(dirname "$0")/../lib" && pwd)
. "$TLIB/postfix.sh"
e2e_phase bulk "bulk-sender precedence precedence-all" "$@"
e2e_start

if wanted bulk-sender; then
    session bulk-sender 198.51.100.8 bulk-mx.spf.e2e.test <<EOF
MAIL FROM:<news@pass.spf.e2e.test>
RCPT TO:<optout@dest.test>
RCPT TO:<optin@dest.test>
$(message e2e-bulk-sender)
EOF
    check "registry bulk sender: MAIL" "$(code bulk-sender 'MAIL FROM:<news@pass.spf.e2e.test>')" "250 2.1.0"
    check "registry bulk sender: opted-out RCPT refused" "$(code bulk-sender 'RCPT TO:<optout@dest.test>')" "550 5.7.1"
    check "registry bulk sender: opted-in RCPT accepted" "$(code bulk-sender 'RCPT TO:<optin@dest.test>')" "250 2.1.5"
    check "registry bulk sender: DATA" "$(code bulk-sender '.')" "250 2.0.0"
    wait_delivered bulk-sender
    check "registry bulk sender: delivered only to the opted-in recipient" "$(delivered_to e2e-bulk-sender)" \
        "optin@dest.test"
fi

if wanted precedence; then
    session precedence 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<list@pass.spf.e2e.test>
RCPT TO:<optin@dest.test>
RCPT TO:<optout@dest.test>
RCPT TO:<bob@dest.test>
$(message e2e-precedence "Precedence: bulk")
EOF
    check "Precedence: bulk: RCPT optout accepted at envelope time" "$(code precedence 'RCPT TO:<optout@dest.test>')" \
        "250 2.1.5"
    check "Precedence: bulk: DATA accepted" "$(code precedence '.')" "250 2.0.0"
    wait_delivered precedence
    check "Precedence: bulk: delivered only to those who accept bulk" "$(delivered_to e2e-precedence)" \
        "bob@dest.test optin@dest.test"
fi

if wanted precedence-all; then
    session precedence-all 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<list@pass.spf.e2e.test>
RCPT TO:<optout@dest.test>
RCPT TO:<optout2@dest.test>
$(message e2e-precedence-all "Precedence: bulk")
EOF
    check "Precedence: bulk, every recipient opted out: DATA" "$(code precedence-all '.')" "550 5.7.1"
    # Refused at the end of the message: never queued, so there is nothing
    # to wait for; the queue being empty shows no copy is on its way.
    wait_queue_empty
    check "Precedence: bulk, all opted out: delivered to nobody" "$(delivered_to e2e-precedence-all)" ""
fi

e2e_finish
