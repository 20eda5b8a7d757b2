#!/bin/sh
# transactions.sh: several transactions in one SMTP session through a real
# Postfix: a refused MAIL FROM, the next one judged afresh, RSET, two
# messages (the second with the null sender), both delivered.
# Needs root, postfix, smtp-sink, nsd, drill (t/integration/lib/postfix.sh);
# exits 77 (skipped) with the reason when one is missing.
# Run alone: sudo BUILD=$PWD/build sh t/integration/postfix/transactions.sh [SCENARIO...]
#   (--list: the scenarios; E2E_KEEP=DIR keeps everything for debugging)
set -u
TLIB=$(cd "$(dirname "$0")/../lib" && pwd)
. "$TLIB/postfix.sh"
e2e_phase transactions "transactions" "$@"
e2e_start

if wanted transactions; then
    session transactions 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<eve@fail.spf.e2e.test>
MAIL FROM:<alice@pass.spf.e2e.test>
RCPT TO:<optout@dest.test>
RSET
MAIL FROM:<alice@pass.spf.e2e.test>
RCPT TO:<bob@dest.test>
$(message e2e-transaction-1)
MAIL FROM:<>
RCPT TO:<bob@dest.test>
$(message e2e-transaction-2)
EOF
    check "several transactions: SPF fail refused" "$(code transactions 'MAIL FROM:<eve@fail.spf.e2e.test>')" "550 5.7.23"
    check "several transactions: next MAIL FROM judged afresh" \
        "$(code transactions 'MAIL FROM:<alice@pass.spf.e2e.test>')" "250 2.1.0"
    check "several transactions: after RSET" "$(code transactions 'MAIL FROM:<alice@pass.spf.e2e.test>' 2)" "250 2.1.0"
    check "several transactions: first message" "$(code transactions '.' 1)" "250 2.0.0"
    check "several transactions: null sender, second message" "$(code transactions '.' 2)" "250 2.0.0"
    wait_delivered transactions 1
    wait_delivered transactions 2
    check "several transactions: both messages delivered" \
        "$(delivered_to e2e-transaction-1) / $(delivered_to e2e-transaction-2)" "bob@dest.test / bob@dest.test"
fi

e2e_finish
