#!/bin/sh
# policy.sh: the policy verdicts through a real Postfix, one SMTP session per
# scenario (client addresses presented with XCLIENT): registered and
# unregistered clients, the block list, IPv6 and IPv4-mapped clients, every
# SPF result, [policy] exempt_recipients, and what reaches the recipient (Authentication-Results,
# Received-SPF, X-Regmilter, a forged Authentication-Results removed).
# Base configuration: enforce, unregistered = reject, on_error = tempfail.
# Needs root, postfix, smtp-sink, nsd, drill (t/integration/lib/postfix.sh);
# exits 77 (skipped) with the reason when one is missing.
# Run alone: sudo BUILD=$PWD/build sh t/integration/postfix/policy.sh [SCENARIO...]
#   (--list: the scenarios; E2E_KEEP=DIR keeps everything for debugging)
set -u
TLIB=$(cd "$(dirname "$0")/../lib" && pwd)
. "$TLIB/postfix.sh"
e2e_phase policy "registered unregistered blocked ipv6 ipv6-unregistered ipv4-mapped spf-fail spf-fail-percent
    softfail temperror permerror logs exempt" "$@"
e2e_start

if wanted registered; then
    session registered 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<alice@pass.spf.e2e.test>
RCPT TO:<bob@dest.test>
$(message e2e-registered "Authentication-Results: mx.e2e.test; spf=pass smtp.mailfrom=forged.example")
EOF
    check "registered + SPF pass: MAIL" "$(code registered 'MAIL FROM:<alice@pass.spf.e2e.test>')" "250 2.1.0"
    check "registered + SPF pass: RCPT" "$(code registered 'RCPT TO:<bob@dest.test>')" "250 2.1.5"
    check "registered + SPF pass: DATA" "$(code registered '.')" "250 2.0.0"
    wait_delivered registered
    check "registered + SPF pass: delivered" "$(delivered_to e2e-registered)" "bob@dest.test"
    ar=$(header_line e2e-registered Authentication-Results)
    check_match "registered + SPF pass: Authentication-Results" "$ar" "Authentication-Results: mx.e2e.test;*spf=pass*"
    check_match "registered: dnswl=pass for the registry zone (RFC 8904)" "$ar" "*dnswl=pass*reg.e2e.test*"
    check "forged Authentication-Results for our authserv_id removed" \
        "$(headers_of e2e-registered | grep -c 'forged.example')" 0
    check_match "Received-SPF present" "$(header_line e2e-registered Received-SPF)" "Received-SPF: [Pp]ass*"
    ar_line=$(headers_of e2e-registered | grep -n '^Authentication-Results:' | head -n 1 | cut -d: -f1)
    rcv_line=$(headers_of e2e-registered | grep -n '^Received: from mx.spf.e2e.test' | head -n 1 | cut -d: -f1)
    check "Authentication-Results above Postfix's Received" \
        "$([ -n "$ar_line" ] && [ -n "$rcv_line" ] && [ "$ar_line" -lt "$rcv_line" ] && echo above)" "above"
fi

if wanted unregistered; then
    session unregistered 198.51.100.66 mx.spf.e2e.test <<EOF
MAIL FROM:<carol@pass.spf.e2e.test>
EOF
    check "unregistered, unregistered = reject: MAIL" \
        "$(code unregistered 'MAIL FROM:<carol@pass.spf.e2e.test>')" "550 5.7.1"
    check_match "unregistered reject text names the address and where to register" \
        "$(reply unregistered 'MAIL FROM:<carol@pass.spf.e2e.test>')" \
        "550 5.7.1 198.51.100.66 is not a registered mail server (not in reg.e2e.test); see https://reg.e2e.test/register"
fi

if wanted blocked; then
    session blocked 198.51.100.9 mx.spf.e2e.test <<EOF
MAIL FROM:<dave@pass.spf.e2e.test>
EOF
    check "block-listed: MAIL" "$(code blocked 'MAIL FROM:<dave@pass.spf.e2e.test>')" "550 5.7.1"
fi

if [ "$E2E_IPV6" = no ] && { wanted ipv6 || wanted ipv6-unregistered || wanted ipv4-mapped; }; then
    echo "# no IPv6 on this host: the IPv6 client sessions are not run"
fi

if wanted ipv6 && [ "$E2E_IPV6" = yes ]; then
    session ipv6 IPV6:2001:db8::7 mx.spf.e2e.test <<EOF
MAIL FROM:<v6@pass6.spf.e2e.test>
RCPT TO:<bob@dest.test>
$(message e2e-ipv6)
EOF
    check "IPv6 client, registered (dashed IPv6 name) + SPF ip6 pass: MAIL" \
        "$(code ipv6 'MAIL FROM:<v6@pass6.spf.e2e.test>')" "250 2.1.0"
    check "IPv6 client: DATA" "$(code ipv6 '.')" "250 2.0.0"
    wait_delivered ipv6
    check "IPv6 client: delivered" "$(delivered_to e2e-ipv6)" "bob@dest.test"
    check_match "IPv6 client: dnswl=pass policy.ip in Authentication-Results" \
        "$(header_line e2e-ipv6 Authentication-Results)" "*spf=pass*dnswl=pass dns.zone=reg.e2e.test*"
fi

if wanted ipv6-unregistered && [ "$E2E_IPV6" = yes ]; then
    session ipv6-unregistered IPV6:2001:db8::66 mx.spf.e2e.test <<EOF
MAIL FROM:<v6@pass6.spf.e2e.test>
EOF
    check_match "IPv6 client, unregistered: refused with its address in the text" \
        "$(reply ipv6-unregistered 'MAIL FROM:<v6@pass6.spf.e2e.test>')" \
        "550 5.7.1 2001:db8::66 is not a registered mail server*"
fi

if wanted ipv4-mapped && [ "$E2E_IPV6" = yes ]; then
    session ipv4-mapped IPV6:::ffff:198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<alice@pass.spf.e2e.test>
EOF
    check "IPv4-mapped IPv6 client is the IPv4 client (registered): MAIL" \
        "$(code ipv4-mapped 'MAIL FROM:<alice@pass.spf.e2e.test>')" "250 2.1.0"
fi

if wanted spf-fail; then
    session spf-fail 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<eve@fail.spf.e2e.test>
EOF
    check "SPF fail: MAIL" "$(code spf-fail 'MAIL FROM:<eve@fail.spf.e2e.test>')" "550 5.7.23"
    check_match "SPF fail reply carries the exp= explanation" "$(reply spf-fail 'MAIL FROM:<eve@fail.spf.e2e.test>')" \
        "550 5.7.23 *198.51.100.7 is not one of fail.spf.e2e.test's mail servers*"
fi

if wanted spf-fail-percent; then
    session spf-fail-percent 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<eve@pct.spf.e2e.test>
EOF
    check "a % in the reply text reaches the client as one % (escaped for smfi_setreply)" \
        "$(reply spf-fail-percent 'MAIL FROM:<eve@pct.spf.e2e.test>')" \
        "550 5.7.23 100% of pct.spf.e2e.test's mail comes from elsewhere"
fi

if wanted softfail; then
    session softfail 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<frank@soft.spf.e2e.test>
RCPT TO:<bob@dest.test>
$(message e2e-softfail)
EOF
    check "SPF softfail: MAIL accepted" "$(code softfail 'MAIL FROM:<frank@soft.spf.e2e.test>')" "250 2.1.0"
    check "SPF softfail: DATA accepted" "$(code softfail '.')" "250 2.0.0"
    wait_delivered softfail
    check "softfail: delivered" "$(delivered_to e2e-softfail)" "bob@dest.test"
    check_match "softfail: tagged" "$(header_line e2e-softfail X-Regmilter)" "X-Regmilter: *softfail*"
fi

if wanted temperror; then
    session temperror 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<gina@temp.spf.e2e.test>
EOF
    check "SPF temperror: MAIL" "$(code temperror 'MAIL FROM:<gina@temp.spf.e2e.test>')" "451 4.7.24"
    # The reply names the failed lookup; the resolver's address and timings
    # only reach the log.
    check_match "SPF temperror: the reply names the lookup" \
        "$(reply temperror 'MAIL FROM:<gina@temp.spf.e2e.test>')" "*(TXT lookup for spf.unserved.invalid: servfail), try again later"
    check "SPF temperror: no resolver address in the reply" \
        "$(reply temperror 'MAIL FROM:<gina@temp.spf.e2e.test>' | grep -c '127\.0\.0\.1\|tries\| ms')" 0
    check_match "SPF temperror: the log has the resolver's details" \
        "$(grep 'from=<gina@temp.spf.e2e.test>' "$MILTER_LOG" | head -n 1)" "* spf_problem=\"TXT lookup for spf.unserved.invalid: servfail (*rcode REFUSED from 127.0.0.1:*"
fi

if wanted permerror; then
    session permerror 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<hank@perm.spf.e2e.test>
EOF
    check "SPF permerror, permerror = reject: MAIL" "$(code permerror 'MAIL FROM:<hank@perm.spf.e2e.test>')" "550 5.7.24"
fi

# One decision line per stage in the milter's log (e2e_finish checks that
# every one starts with the session and queue id fields). The MAIL line is
# logged before Postfix has a queue id (NOQUEUE); the session= field ties it to
# the end-of-message line, which has the queue id.
if wanted logs; then
    session logs 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<alice@pass.spf.e2e.test>
RCPT TO:<logs@dest.test>
$(message logs-token)
EOF
    wait_delivered logs
    check_match "decision lines logged" "$(grep -c ' stage=' "$MILTER_LOG")" "[1-9]*"
    _mail_line=$(grep 'stage=mail .*from=<alice@pass.spf.e2e.test>' "$MILTER_LOG" | tail -n 1)
    _sid=$(echo "$_mail_line" | sed -n 's/.*: session=\([^ ]*\) .*/\1/p')
    check_match "MAIL line: a session id, and NOQUEUE before the queue id exists" "$_mail_line" "*: session=?* id=NOQUEUE stage=mail *"
    _qid=$(reply logs '.' | sed -n 's/^250 .* queued as \([0-9A-Za-z]*\).*/\1/p')
    check_match "end-of-message line: the same session, with Postfix's queue id" \
        "$(grep "session=$_sid " "$MILTER_LOG" | grep ' stage=data ' | head -n 1)" "*session=$_sid id=$_qid stage=data *"
fi

# [policy] exempt_recipients: an unregistered client still reaches postmaster@
# and abuse@; its refusal moves from MAIL FROM to the other recipients.
if wanted exempt; then
    e2e_config enforce reject 2020-01-01 tempfail '[policy]\nexempt_recipients = postmaster@ abuse@dest.test'
    session exempt 198.51.100.66 mx.spf.e2e.test <<EOF
MAIL FROM:<carol@pass.spf.e2e.test>
RCPT TO:<Postmaster@dest.test>
RCPT TO:<bob@dest.test>
RCPT TO:<abuse@dest.test>
$(message e2e-exempt)
EOF
    check "exempt: MAIL of an unregistered client" "$(code exempt 'MAIL FROM:<carol@pass.spf.e2e.test>')" "250 2.1.0"
    check "exempt: RCPT postmaster@" "$(code exempt 'RCPT TO:<Postmaster@dest.test>')" "250 2.1.5"
    check "exempt: RCPT abuse@dest.test" "$(code exempt 'RCPT TO:<abuse@dest.test>')" "250 2.1.5"
    check "exempt: another recipient gets the registry refusal" "$(reply exempt 'RCPT TO:<bob@dest.test>')" \
        "550 5.7.1 198.51.100.66 is not a registered mail server (not in reg.e2e.test); see https://reg.e2e.test/register"
    check "exempt: DATA" "$(code exempt '.')" "250 2.0.0"
    wait_delivered exempt
    check "exempt: delivered to the exempt recipients only" "$(delivered_to e2e-exempt)" "Postmaster@dest.test abuse@dest.test"
    check_match "exempt: the message says the others were refused" "$(header_line e2e-exempt X-Regmilter)" \
        "X-Regmilter: for exempt recipients only; others got 550 5.7.1 198.51.100.66 is not a registered*"
    check_match "exempt: MAIL FROM logged as deferred to RCPT" \
        "$(grep 'stage=mail .*from=<carol@pass.spf.e2e.test>' "$MILTER_LOG" | tail -n 1)" \
        "*reason=deferred-to-rcpt:registry:unregistered:reg.e2e.test*"
    e2e_config enforce reject 2020-01-01 tempfail
fi

e2e_finish
