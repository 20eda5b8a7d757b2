#!/bin/sh
# registry-info.sh: regmilter-query --registry-info against what
# regmilter-zone publishes, served by NSD (zone files) and by rbldnsd
# (datasets) on loopback. The good entries of t/fixtures/registry/registrations
# become reg.test in both forms (read by a dashed and a reversed [registry]),
# t/fixtures/registry/block-registrations becomes the block-list bl.test; for
# each line of t/fixtures/registry/registry-info the JSON answer must say
# listed or not, the code, the class and the parsed metadata, on both servers.
# Also the text output, the RFC 5782 test points (asked although 127/8 is
# trusted), and a configuration without a registry.
# Run: BUILD=$PWD/build sh t/integration/registry-info.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$here/lib/dns-server.sh"
. "$here/lib/query.sh"

need_build regmilter-query regmilter-zone t/json-get
F=$top/t/fixtures/registry
tmpdir_new work
chmod 0755 "$work" # rbldnsd reads the datasets as an unprivileged user

grep ' contact=REG-' "$F/registrations" > "$work/good"
"$BUILD/regmilter-zone" registry --zone reg.test --format both --no-dns --allow-special --date 2025-06-01 \
    -o "$work/reg.zone" --rbldnsd "$work/reg.rbl" "$work/good" 2> "$work/reg.err"
check "regmilter-zone registry: 4 servers, both outputs" "$? $(tail -n 1 "$work/reg.err")" \
    "0 regmilter-zone: reg.test: 4 servers published, 0 failed, serial 2025060100"
"$BUILD/regmilter-zone" registry --zone bl.test --no-dns --allow-special --date 2025-06-01 \
    -o "$work/bl.zone" --rbldnsd "$work/bl.rbl" "$F/block-registrations" 2> "$work/bl.err"
check "regmilter-zone registry: the block-list" "$?" 0

cat > "$work/regmilter.ini" <<CONF
[registry dashed]
zone = reg.test
[registry reversed]
zone = reg.test
format = reversed
[registry bl]
zone = bl.test
meaning = blocked
CONF
QUERY_CONF=$work/regmilter.ini

# index NAME: the position of [registry NAME] in the answer
index() {
    case $1 in dashed) echo 0 ;; reversed) echo 1 ;; bl) echo 2 ;; esac
}
# value NAME PATH: the field, "-" when empty
value() {
    _v=$(field "$1" "$2")
    echo "${_v:--}"
}
# answers SERVER: every line of the fixture asked of $NS
answers() {
    grep -v '^#' "$F/registry-info" > "$work/cases"
    _last=""
    while read -r _ip _zone _status _code _class _reg _upd _contact; do
        [ -n "$_ip" ] || continue
        _q=$1-$(echo "$_ip" | tr ':.' '--')
        [ "$_q" = "$_last" ] || query "$_q" --ip "$_ip" --registry-info
        _last=$_q
        _p=registry.$(index "$_zone")
        check "$1: $_ip in [registry $_zone]" \
            "$(value "$_q" "$_p.name") $(value "$_q" "$_p.status") $(value "$_q" "$_p.code") $(value "$_q" "$_p.class")
$(value "$_q" "$_p.metadata.registered") $(value "$_q" "$_p.metadata.updated") $(value "$_q" "$_p.metadata.contact")" \
            "$_zone $_status $_code $_class
$_reg $_upd $_contact"
    done < "$work/cases"
}

dns_server_start reg.test="$work/reg.zone" bl.test="$work/bl.zone"
NS=$DNS_SERVER
answers nsd
expect nsd-192-0-2-10 ip 192.0.2.10
expect nsd-192-0-2-10 registry.0.info "registered=2024-01-15 updated=2024-06-01 contact=REG-1"
expect nsd-192-0-2-10 registry.0.query 192-0-2-10.reg.test
expect nsd-192-0-2-10 registry.1.query 10.2.0.192.reg.test
expect nsd-192-0-2-11 registry.0.meaning bulk
expect nsd-127-0-0-2 registry.0.info "test point (RFC 5782 section 5)"

# The text output.
"$BUILD/regmilter-query" -c "$QUERY_CONF" --nameserver "$NS" --ip 192.0.2.11 --registry-info > "$work/text.out" 2>&1
check "text: exit 0" "$?" 0
check "text: the first zone's block" "$(sed -n 1,8p "$work/text.out" | tr '\n' '|')" \
    "ip: 192.0.2.11|registry dashed (reg.test): listed 127.0.0.3 bulk|  query: 192-0-2-11.reg.test|  registered: 2024-02-01|  updated: 2024-02-01|  contact: REG-2|  txt: \"registered=2024-02-01 updated=2024-02-01 contact=REG-2\"|registry reversed (reg.test): listed 127.0.0.3 bulk|"
check "text: an unlisted zone" "$(grep -A1 '^registry bl' "$work/text.out" | tr '\n' '|')" \
    "registry bl (bl.test): not listed|  query: 192-0-2-11.bl.test|"

# A zone whose server does not answer is an error, and the others still answer.
dns_server_stop
query nsd-stopped --ip 192.0.2.10 --registry-info --timeout-ms 200 --retries 0
expect nsd-stopped registry.0.status error

rbldnsd_start reg.test:combined:"$work/reg.rbl" bl.test:combined:"$work/bl.rbl"
NS=$RBLDNSD_SERVER
answers rbldnsd

# No registry configured: said, exit 1.
printf '[spf]\ncheck_helo = no\n' > "$work/none.ini"
"$BUILD/regmilter-query" -c "$work/none.ini" --ip 192.0.2.10 --registry-info > "$work/none.out" 2> "$work/none.err"
check "no [registry]: exit 1 with the reason" "$? $(cat "$work/none.err")" \
    "1 regmilter-query: --registry-info: $work/none.ini has no [registry NAME] section"
"$BUILD/regmilter-query" --registry-info > /dev/null 2> "$work/noip.err"
check "no --ip: exit 2" "$?" 2
finish
