#!/bin/sh
# bad-input.sh: input no well-behaved client or MTA sends, through a real
# Postfix: a 10 kB MAIL FROM, a 10 kB header, NUL bytes, 8-bit envelope,
# headers and body, empty HELO/EHLO, 1,000 recipients, clients dropping the
# connection mid-transaction; and at the milter protocol level with
# miltertest(8): an MTA without SMFIF_DELRCPT (t/fixtures/e2e/internal-error.lua)
# and an MTA dropping the milter connection after each stage
# (abrupt-close.lua). Each gets a defined answer, what is accepted is
# delivered, and the milter is still alive at the end.
# Needs root, postfix, smtp-sink, nsd, drill (t/integration/lib/postfix.sh);
# exits 77 (skipped) with the reason when one is missing; without
# miltertest its two scenarios say so and are not run.
# Run alone: sudo BUILD=$PWD/build sh t/integration/postfix/bad-input.sh [SCENARIO...]
#   (--list: the scenarios; E2E_KEEP=DIR keeps everything for debugging)
set -u
TLIB=$(cd "$(dirname "$0")/../lib" && pwd)
. "$TLIB/postfix.sh"
e2e_phase bad-input "internal-error abrupt-close long-mail-from long-header nul 8bit empty-helo many-rcpts
    disconnect" "$@"
e2e_start

long_local=$(head -c 10240 /dev/zero | tr '\0' 'a')

if { wanted internal-error || wanted abrupt-close; } && ! command -v miltertest >/dev/null 2>&1; then
    echo "# miltertest not installed: the internal-error and abrupt-close milter sessions are not run"
fi

if wanted internal-error && command -v miltertest >/dev/null 2>&1; then
    miltertest -s "$FIX_E2E/internal-error.lua" -D "socket=$MILTER_SOCKET" > "$E2E_DIR/s/internal-error.out" 2>&1
    check "internal error (MTA without SMFIF_DELRCPT): on_internal_error answer" \
        "$(sed -n 's/^eom=//p;s/^reply=//p' "$E2E_DIR/s/internal-error.out" | tr '\n' ' ')" "replycode 451 4.3.0 "
    check_match "internal error logged with the queue id" \
        "$(grep 'error="internal' "$MILTER_LOG" | head -n 1)" \
        "*regmilter\[[0-9]*\]: session=* id=MTINTERNAL1 stage=data error=\"internal: *"
fi

if wanted abrupt-close && command -v miltertest >/dev/null 2>&1; then
    miltertest -s "$FIX_E2E/abrupt-close.lua" -D "socket=$MILTER_SOCKET" > "$E2E_DIR/s/abrupt.out" 2>&1
    check "MTA drops the milter connection after each stage: all rounds ran" \
        "$(grep -c '^dropped-after=' "$E2E_DIR/s/abrupt.out")" 6
    check "MTA drops the milter connection: the milter still answers" \
        "$(sed -n 's/^alive=//p' "$E2E_DIR/s/abrupt.out")" "yes"
fi

if wanted long-mail-from; then
    session bad-long 198.51.100.30 mx.spf.e2e.test <<EOF
MAIL FROM:<$long_local@pass.spf.e2e.test>
MAIL FROM:<alice@pass.spf.e2e.test>
RCPT TO:<bob@dest.test>
$(message e2e-after-long)
EOF
    check_match "10 kB MAIL FROM: a defined refusal" "$(code bad-long "MAIL FROM:<$long_local@pass.spf.e2e.test>")" \
        "5[0-9][0-9] *"
    check "10 kB MAIL FROM: the session goes on" "$(code bad-long '.')" "250 2.0.0"
fi

if wanted long-header; then
    {
        echo "MAIL FROM:<alice@pass.spf.e2e.test>"
        echo "RCPT TO:<bob@dest.test>"
        echo "DATA"
        echo "Subject: e2e-long-header"
        printf 'X-Long: start'
        i=0
        while [ $i -lt 100 ]; do printf '\n\t%s' "$(head -c 98 /dev/zero | tr '\0' 'x')"; i=$((i + 1)); done
        echo ""
        echo "References: <$long_local@example>"
        echo ""
        echo "body"
        echo "."
    } | session bad-long-header 198.51.100.30 mx.spf.e2e.test
    check "10 kB header and a 10 kB header line: DATA" "$(code bad-long-header '.')" "250 2.0.0"
    wait_delivered bad-long-header
    check "10 kB header: delivered" "$(delivered_to e2e-long-header)" "bob@dest.test"
fi

if wanted nul; then
    session bad-nul 198.51.100.30 mx.spf.e2e.test <<'EOF'
MAIL FROM:<nul\x00byte@pass.spf.e2e.test>
MAIL FROM:<alice@pass.spf.e2e.test>
RCPT TO:<bob\x00@dest.test>
RCPT TO:<bob@dest.test>
DATA
Subject: e2e-nul
X-Nul: a\x00b

body with a NUL \x00 here
.
EOF
    check_match "NUL in MAIL FROM: a defined reply" "$(code bad-nul 'MAIL FROM:<nul\x00byte@pass.spf.e2e.test>')" \
        "[245][0-9][0-9] *"
    check_match "NUL in a header and the body: a defined reply" "$(code bad-nul '.')" "[245][0-9][0-9] *"
    wait_delivered bad-nul
    check "NUL bytes: delivered" "$(delivered_to e2e-nul)" "bob@dest.test"
fi

# smtp-sink does not offer SMTPUTF8, so the UTF-8 envelope is only checked
# for its replies; the 8-bit message goes to an ASCII recipient.
if wanted 8bit; then
    session bad-8bit 198.51.100.30 mx.spf.e2e.test <<'EOF'
MAIL FROM:<j\xc3\xb6rg@pass.spf.e2e.test> SMTPUTF8
RCPT TO:<m\xc3\xbcller@dest.test>
RSET
MAIL FROM:<alice@pass.spf.e2e.test>
RCPT TO:<bob@dest.test>
DATA
Subject: e2e-8bit
X-Eight: caf\xc3\xa9 \xff\xfe
Precedence: bulk \xe9

8-bit body \xe9\xff
.
EOF
    check "8-bit MAIL FROM (SMTPUTF8)" "$(code bad-8bit 'MAIL FROM:<j\xc3\xb6rg@pass.spf.e2e.test> SMTPUTF8')" "250 2.1.0"
    check "8-bit RCPT TO (SMTPUTF8)" "$(code bad-8bit 'RCPT TO:<m\xc3\xbcller@dest.test>')" "250 2.1.5"
    check "8-bit headers and body: DATA" "$(code bad-8bit '.')" "250 2.0.0"
    wait_delivered bad-8bit
    check "8-bit headers and body: delivered" "$(delivered_to e2e-8bit)" "bob@dest.test"
fi

if wanted empty-helo; then
    raw_session bad-helo <<'EOF'
HELO
EHLO
EHLO mx.spf.e2e.test
QUIT
EOF
    check_match "empty HELO refused by Postfix" "$(reply bad-helo 'HELO')" "501 *"
    check_match "empty EHLO refused by Postfix" "$(reply bad-helo 'EHLO')" "501 *"
    check "EHLO after the empty ones" "$(reply bad-helo 'EHLO mx.spf.e2e.test')" "250 CHUNKING"
fi

if wanted many-rcpts; then
    {
        echo "MAIL FROM:<many@pass.spf.e2e.test>"
        i=1
        while [ $i -le 1000 ]; do echo "RCPT TO:<r$i@dest.test>"; i=$((i + 1)); done
        message e2e-1000-rcpts
    } | session many-rcpts 198.51.100.30 mx.spf.e2e.test
    check "1,000 RCPTs: every one accepted" "$(grep -c '^250 2.1.5' "$E2E_DIR/s/many-rcpts.out")" 1000
    check "1,000 RCPTs: DATA" "$(code many-rcpts '.')" "250 2.0.0"
    wait_delivered many-rcpts
    check "1,000 RCPTs: delivered to all" "$(delivered_to e2e-1000-rcpts | wc -w)" 1000
fi

if wanted disconnect; then
    session disconnect-data 198.51.100.30 mx.spf.e2e.test <<'EOF'
MAIL FROM:<alice@pass.spf.e2e.test>
RCPT TO:<bob@dest.test>
DATA
!close
Subject: e2e-disconnect
.
EOF
    session disconnect-rcpt 198.51.100.30 mx.spf.e2e.test <<'EOF'
MAIL FROM:<alice@pass.spf.e2e.test>
RCPT TO:<bob@dest.test>
!close
EOF
    session after-disconnect 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<alice@pass.spf.e2e.test>
RCPT TO:<bob@dest.test>
$(message e2e-after-disconnect)
EOF
    check "after clients disconnected mid-transaction the milter still answers" "$(code after-disconnect '.')" \
        "250 2.0.0"
    # Never queued: the queue being empty shows that no copy is on its way.
    wait_queue_empty
    check "disconnect during DATA: nothing delivered" "$(delivered_to e2e-disconnect)" ""
fi

check_match "milter alive after the bad input" "$(kill -0 "$MILTER_PID" 2>&1 && echo alive)" "alive"
e2e_finish
