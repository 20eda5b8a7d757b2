#!/bin/sh
# regmilter-query as an administrator meets it: bad arguments give a usage
# line and exit status 2; --trace shows each DNS query with its answer and
# each SPF term evaluated, against NSD serving t/fixtures/zones on loopback.
. "$(dirname "$0")/lib/dns-server.sh"

need_build regmilter-query
tmpdir_new work
Q="$BUILD/regmilter-query"

# usage_case NAME WANT_MESSAGE ARGS...: exit 2, the message and a usage line on stderr
usage_case() {
    _name=$1 _want=$2
    shift 2
    "$Q" "$@" > "$work/out" 2> "$work/err"
    check "bad args: $_name: exit status" "$?" 2
    check_match "bad args: $_name: message" "$(head -n 1 "$work/err")" "regmilter-query: $_want"
    if grep -q '^usage: regmilter-query --ip ADDR' "$work/err"; then ok "bad args: $_name: usage line"
    else not_ok "bad args: $_name: usage line" "stderr was: $(cat "$work/err")"; fi
    check "bad args: $_name: nothing on stdout" "$(wc -c < "$work/out" | tr -d ' ')" 0
}

usage_case "no arguments" "--ip is required"
usage_case "unparsable --ip" '--ip: "192.0.2.300" is not an IPv4 or IPv6 address' --ip 192.0.2.300
usage_case "host name as --ip" '--ip: "mail.example" is not an IPv4 or IPv6 address' --ip mail.example
usage_case "unknown option" 'unknown option "--frmo"' --ip 192.0.2.1 --frmo a@b.example
usage_case "missing value" "--from needs a value" --ip 192.0.2.1 --from
usage_case "bad timeout" '--timeout-ms: "soon" is not a number from 100 to 30000' --ip 192.0.2.1 --timeout-ms soon
usage_case "timeout out of range" '--timeout-ms: "50" is not a number from 100 to 30000' --ip 192.0.2.1 --timeout-ms 50
usage_case "bad nameserver" '--nameserver: *ns.example*' --ip 192.0.2.1 --nameserver ns.example:53
usage_case "header without colon" "--header: \"Precedence bulk\" has no ':'*" --ip 192.0.2.1 --header "Precedence bulk"

"$Q" --help > "$work/help" 2>&1
check "--help: exit status" "$?" 0
check_match "--help: usage on stdout" "$(head -n 1 "$work/help")" "usage: regmilter-query*"

zones=t/fixtures/zones
dns_server_start spf.test=$zones/spf.test.zone other.test=$zones/other.test.zone

# --trace goes to stderr; --json stays one parseable line on stdout.
"$Q" --nameserver "$DNS_SERVER" --ip 203.0.113.5 --from user@chain.spf.test --trace --json \
    > "$work/trace.json" 2> "$work/trace.err"
check "trace: exit status" "$?" 0
check "trace: stdout is one JSON line" "$(wc -l < "$work/trace.json" | tr -d ' ')" 1
if grep -q '^trace: .*TXT chain\.spf\.test' "$work/trace.err"; then ok "trace: the first TXT query is shown"
else not_ok "trace: the first TXT query is shown" "stderr: $(head -c 600 "$work/trace.err")"; fi
if grep -q '^trace: .*TXT l1\.spf\.test' "$work/trace.err"; then ok "trace: the include's TXT query is shown"
else not_ok "trace: the include's TXT query is shown" "stderr: $(head -c 600 "$work/trace.err")"; fi
if grep -q '^trace: .*v=spf1' "$work/trace.err"; then ok "trace: answers carry the record text"
else not_ok "trace: answers carry the record text" "stderr: $(head -c 600 "$work/trace.err")"; fi
if grep -q '^trace: .*include:l1\.spf\.test' "$work/trace.err"; then ok "trace: the include term is shown"
else not_ok "trace: the include term is shown" "stderr: $(head -c 600 "$work/trace.err")"; fi
n=$(grep -c '^trace: ' "$work/trace.err")
[ "$n" -ge 4 ] && ok "trace: $n lines" || not_ok "trace: lines" "got $n, want at least 4"

# Without --json: one readable summary line.
"$Q" --nameserver "$DNS_SERVER" --ip 198.51.100.7 --from user@fail.spf.test > "$work/plain" 2>&1
check "plain output: exit status" "$?" 0
check_match "plain output: result line" "$(cat "$work/plain")" "*fail*fail.spf.test*"

finish
