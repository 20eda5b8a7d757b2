#!/bin/sh
# Registry zones through the whole stack: regmilter-query -c CONF --json with
# the production resolver against NSD serving three fixture zones (dashed and
# reversed allow-lists, a reversed block-list) on loopback: both name forms,
# IPv4, IPv6 and IPv4-mapped clients, codes 2 and 3, TXT metadata, error
# answers, a timeout through a black hole, and the verdicts and headers that
# follow. Also `--check` on a good and a broken file.
. "$(dirname "$0")/lib/dns-server.sh"
. "$(dirname "$0")/lib/query.sh"

need_build regmilter-query t/json-get t/dns-blackhole
zones=t/fixtures/zones
dns_server_start reg.test=$zones/reg.test.zone rev.test=$zones/rev.test.zone bl.test=$zones/bl.test.zone
dns_blackhole_start 120
tmpdir_new work

printf 'out@example.org reject\n@optin.example accept\n' > "$work/bulk.table"
cat > "$work/regmilter.ini" <<CONF
[milter]
authserv_id = mx.test
[registry reg]
zone = reg.test
unregistered = reject
on_error = tempfail
reject_text = %{ip} is not registered in %{zone}; see https://reg.test/register
[registry rev]
zone = rev.test
format = reversed
unregistered = tag
[registry bl]
zone = bl.test
format = reversed
meaning = blocked
listed = reject
[spf]
check_helo = no
[bulk]
table = $work/bulk.table
CONF

QUERY_CONF=$work/regmilter.ini
QUERY_FROM=sender@reg.test

# verdict NAME STAGE: "action code xcode" of the first verdict of that stage
verdict() {
    _n=$(field "$1" verdicts.#)
    _i=0
    while [ "$_i" -lt "${_n:-0}" ] 2>/dev/null; do
        if [ "$(field "$1" "verdicts.$_i.stage")" = "$2" ]; then
            echo "$(field "$1" "verdicts.$_i.action") $(field "$1" "verdicts.$_i.code") $(field "$1" "verdicts.$_i.xcode")"
            return
        fi
        _i=$((_i + 1))
    done
    echo "<no $2 verdict>"
}

# Registered (code 2) in both allow-lists, with TXT metadata.
query v4-registered --ip 192.0.2.10
expect v4-registered registry.0.query 192-0-2-10.reg.test
expect v4-registered registry.0.status listed
expect v4-registered registry.0.code 127.0.0.2
expect v4-registered registry.0.meaning registered
expect v4-registered registry.0.info "registered 2025-04-01; contact noc@example.net"
expect v4-registered registry.1.query 10.2.0.192.rev.test
expect v4-registered registry.1.status listed
expect v4-registered registry.1.info "reversed form"
expect v4-registered registry.2.status unlisted
check "v4-registered: mail verdict" "$(verdict v4-registered mail)" "continue  "
check_match "v4-registered: Authentication-Results" "$(field v4-registered headers.0)" \
    "Authentication-Results: mx.test; spf=none smtp.mailfrom=sender@reg.test; dnswl=pass dns.zone=reg.test policy.ip=127.0.0.2 policy.txt=\"registered 2025-04-01; contact noc@example.net\"; dnswl=pass dns.zone=rev.test policy.ip=127.0.0.2*"

# An IPv4-mapped client is an IPv4 client.
query v4-mapped --ip ::ffff:192.0.2.10
expect v4-mapped registry.0.query 192-0-2-10.reg.test
expect v4-mapped registry.0.status listed

# Code 3: registered, declared bulk sender; the opted-out recipient is refused at RCPT.
query v4-bulk --ip 192.0.2.11 --rcpt out@example.org --rcpt in@optin.example
expect v4-bulk registry.0.code 127.0.0.3
expect v4-bulk registry.0.meaning bulk
expect v4-bulk registry.0.info "declared bulk sender"
expect v4-bulk registry.1.meaning bulk
expect v4-bulk bulk.bulk true
expect v4-bulk bulk.signals.0 registry:bulk:reg.test
expect v4-bulk verdicts.3.rcpt out@example.org
expect v4-bulk verdicts.3.action reject
expect v4-bulk verdicts.3.code 550
expect v4-bulk verdicts.3.xcode 5.7.1
expect v4-bulk verdicts.4.rcpt in@optin.example
expect v4-bulk verdicts.4.action continue

# Unlisted everywhere: reject with reject_text (first zone), tag from the other.
query v4-unregistered --ip 192.0.2.20
expect v4-unregistered registry.0.status unlisted
expect v4-unregistered registry.1.status unlisted
check "v4-unregistered: mail verdict" "$(verdict v4-unregistered mail)" "reject 550 5.7.1"
expect v4-unregistered verdicts.2.text "192.0.2.20 is not registered in reg.test; see https://reg.test/register"

# Out-of-range code, "query refused" and 127.0.0.1: registry errors, never listings.
query v4-outside --ip 192.0.2.12
expect v4-outside registry.0.status error
expect v4-outside registry.0.error "answer 10.0.0.2 is outside 127.0.0.0/8"
check "v4-outside: mail verdict (on_error = tempfail)" "$(verdict v4-outside mail)" "tempfail 451 4.4.3"
query v4-refused --ip 192.0.2.13
expect v4-refused registry.0.status error
check_match "v4-refused: error" "$(field v4-refused registry.0.error)" "*refused the query*"
query v4-127-0-0-1 --ip 192.0.2.15
expect v4-127-0-0-1 registry.0.status error

# Registered but block-listed: the block-list's reject, with its TXT.
query v4-blocked --ip 192.0.2.14
expect v4-blocked registry.0.status listed
expect v4-blocked registry.2.status listed
expect v4-blocked registry.2.meaning blocked
expect v4-blocked registry.2.info "listed for spam"
check "v4-blocked: mail verdict" "$(verdict v4-blocked mail)" "reject 550 5.7.1"
expect v4-blocked verdicts.2.text "192.0.2.14 is listed in bl.test (127.0.0.2: listed for spam)"

# IPv6: dashed groups and reversed nibbles.
query v6 --ip 2001:db8::10
expect v6 registry.0.query 2001-0db8-0000-0000-0000-0000-0000-0010.reg.test
expect v6 registry.0.status listed
expect v6 registry.0.info "v6 registered"
expect v6 registry.1.query 0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.rev.test
expect v6 registry.1.code 127.0.0.3
expect v6 registry.1.meaning bulk
expect v6 registry.2.status unlisted
query v6-unregistered --ip 2001:db8::99
check "v6-unregistered: mail verdict" "$(verdict v6-unregistered mail)" "reject 550 5.7.1"

# Nobody answers: every zone is an error within the resolver's bound, and
# on_error = tempfail gives 451 4.4.3 (never a reject).
t0=$(now_ms)
NS=$BLACKHOLE_SERVER query timeout --ip 192.0.2.10 --timeout-ms 300 --retries 0
t1=$(now_ms)
expect timeout registry.0.status error
check_match "timeout: registry.0.error" "$(field timeout registry.0.error)" "timeout*"
expect timeout registry.2.status error
check "timeout: mail verdict" "$(verdict timeout mail)" "tempfail 451 4.4.3"
el=$((t1 - t0))
[ "$el" -lt 5000 ] && ok "timeout: answered within 5000 ms ($el ms)" || not_ok "timeout: answered within 5000 ms" "got $el ms"

# --trace shows the registry's DNS queries too, with their answers.
"$BUILD/regmilter-query" -c "$work/regmilter.ini" --nameserver "$DNS_SERVER" --ip 192.0.2.10 --trace > /dev/null 2> "$work/trace.err"
check_match "--trace: a registry query and its answer" "$(grep 'registry: query A 192-0-2-10.reg.test' "$work/trace.err")" \
    'trace: registry: query A 192-0-2-10.reg.test -> ok (*) \["127.0.0.2"\]'

# --check: the file above is fine; a broken one lists every error and exits 1.
"$BUILD/regmilter-query" -c "$work/regmilter.ini" --check > "$work/check.out" 2>&1
check "--check good file: exit status" "$?" 0
printf '[registry x]\nformat = sideways\nlisted = reject\n[nope]\n' > "$work/bad.ini"
"$BUILD/regmilter-query" -c "$work/bad.ini" --check > "$work/bad.out" 2>&1
check "--check broken file: exit status" "$?" 1
# (The list of sections goes on as sections are added: its beginning is checked.)
check "--check broken file: every error" "$(sed 's/\(allowed: milter, resolver, trust, registry NAME, spf, bulk\).*/\1.../' "$work/bad.out")" \
    "$work/bad.ini:1: [registry x] zone: is required
$work/bad.ini:2: [registry x] format: \"sideways\" is not a valid choice, allowed: dashed|reversed
$work/bad.ini:3: [registry x] listed: applies to meaning = blocked; this zone has meaning = registered (use unregistered)
$work/bad.ini:4: [nope]: unknown section, allowed: milter, resolver, trust, registry NAME, spf, bulk..."

finish
