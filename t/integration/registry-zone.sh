#!/bin/sh
# regmilter-zone end to end, with real servers on loopback:
#  1. registry: the fixture registrations (good entries and every kind of
#     failure) checked through unbound in front of NSD serving the forward and
#     in-addr.arpa/ip6.arpa fixtures, one reverse zone delegated to a black
#     hole (a PTR that times out). The reported failures must equal
#     t/fixtures/registry/expected-failures line by line; without
#     --skip-failing nothing is written; --no-dns without --allow-special
#     gives expected-failures-no-dns; --allow-generic-ptr lifts only the
#     dynamic-name rule.
#  2. The zone passes nsd-checkzone, kzonecheck and named-checkzone (those
#     installed); the serial rises over --previous.
#  3. NSD serves the zone and rbldnsd the dataset: drill the names (dashed and
#     reversed, IPv4 and IPv6, test points, TXT) on both.
#  4. optout: a zone from t/fixtures/registry/bulk-table served by NSD and
#     rbldnsd answers 127.0.0.2/127.0.0.3 at labels computed here with
#     coreutils, and bulk::lookup_zones (t/optout-lookup) agrees with the
#     table for the same addresses.
# Run alone: make build/regmilter-zone build/t/dns-blackhole build/t/optout-lookup &&
#            BUILD=$PWD/build sh t/integration/registry-zone.sh
. "$(dirname "$0")/lib/dns-server.sh"
. "$(dirname "$0")/lib/recursor.sh"

need_build regmilter-zone t/dns-blackhole t/optout-lookup
need_cmd drill sha256sum basenc base32
F=$PWD/t/fixtures/registry
ZONE="$BUILD/regmilter-zone"
tmpdir_new W
chmod 0755 "$W"  # rbldnsd reads the datasets as an unprivileged user

dns_server_start hosts.test=$F/hosts.test.zone 2.0.192.in-addr.arpa=$F/2.0.192.in-addr.arpa.zone \
    100.51.198.in-addr.arpa=$F/100.51.198.in-addr.arpa.zone 8.b.d.0.1.0.0.2.ip6.arpa=$F/8.b.d.0.1.0.0.2.ip6.arpa.zone
FIXTURE_NS=$DNS_SERVER
dns_blackhole_start 120
recursor_start hosts.test=$FIXTURE_NS 2.0.192.in-addr.arpa=$FIXTURE_NS 100.51.198.in-addr.arpa=$FIXTURE_NS \
    8.b.d.0.1.0.0.2.ip6.arpa=$FIXTURE_NS 113.0.203.in-addr.arpa=$BLACKHOLE_SERVER

# build NAME ARGS...: run regmilter-zone registry on the fixture (from its
# directory, so messages say "registrations:LINE"); status in $W/NAME.rc,
# problems (FILE:LINE lines, timeout details cut) in $W/NAME.problems.
build() {
    _n=$1
    shift
    (cd "$F" && "$ZONE" registry --zone reg.test --date 2025-06-01 "$@" registrations) \
        > "$W/$_n.out" 2> "$W/$_n.err"
    echo $? > "$W/$_n.rc"
    grep '^registrations:' "$W/$_n.err" | sed -e 's/ timed out (.*)$/ timed out/' > "$W/$_n.problems"
}

# same_lines NAME GOT WANT: ok when the files are equal, else the diff.
same_lines() {
    if diff -u "$3" "$2" > "$W/diff" 2>&1; then ok "$1"; else not_ok "$1" "$(cat "$W/diff")"; fi
}

DNS="--nameserver $RECURSOR_SERVER --timeout-ms 1500 --retries 0 --jobs 8"

# --- 1. checks: the failures, line by line ---
build strict --allow-special $DNS --format both -o "$W/strict.zone" --rbldnsd "$W/strict.rbl"
check "registry: exit status with failures" "$(cat "$W/strict.rc")" 1
same_lines "registry: every failure reported, line by line" "$W/strict.problems" "$F/expected-failures"
check "registry: nothing written without --skip-failing" "$(ls "$W" | grep -c '^strict\.\(zone\|rbl\)')" 0
check_match "registry: the summary says why" "$(tail -n 1 "$W/strict.err")" \
    "regmilter-zone: 20 of 24 entries failed; nothing written*"

# --allow-generic-ptr lifts the dynamic-name rule (a), and nothing else: line 16
# (dsl-192-0-2-25.pool.hosts.test, PTR and A in place) is published.
build generic --allow-special --allow-generic-ptr $DNS --skip-failing -o "$W/generic.zone"
grep -v '^registrations:16: ' "$F/expected-failures" > "$W/generic.want"
same_lines "registry --allow-generic-ptr: every other failure stays" "$W/generic.problems" "$W/generic.want"
check "registry --allow-generic-ptr: the dynamic-looking name is published" \
    "$(grep -c '^192-0-2-25[[:space:]].*127\.0\.0\.2' "$W/generic.zone")" 1

build skip --allow-special $DNS --format both --skip-failing -o "$W/reg.zone" --rbldnsd "$W/reg.rbl"
check "registry --skip-failing: exit status still 1" "$(cat "$W/skip.rc")" 1
same_lines "registry --skip-failing: same failures" "$W/skip.problems" "$F/expected-failures"
check_match "registry --skip-failing: summary" "$(tail -n 1 "$W/skip.err")" \
    "regmilter-zone: reg.test: 4 servers published, 20 failed, serial 2025060100"

build nodns --no-dns --skip-failing -o "$W/nodns.zone"
check "registry --no-dns: exit status" "$(cat "$W/nodns.rc")" 1
same_lines "registry --no-dns without --allow-special: failures" "$W/nodns.problems" "$F/expected-failures-no-dns"

# Only the good lines: exit 0; a rebuild over --previous raises the serial.
grep ' contact=REG-' "$F/registrations" > "$W/good"
"$ZONE" registry --zone reg.test --date 2025-06-01 --allow-special $DNS -o "$W/good.zone" "$W/good" 2> "$W/good.err"
check "registry: all good, exit 0" "$?" 0
"$ZONE" registry --zone=reg.test --date=2025-06-01 --allow-special $DNS --previous="$W/good.zone" \
    -o "$W/good2.zone" "$W/good" 2> "$W/good2.err"
soa_serial() { sed -n 's/.*SOA.*( \([0-9]*\) .*/\1/p' "$1"; }
check "registry: serial rises over --previous" "$(soa_serial "$W/good.zone") $(soa_serial "$W/good2.zone")" \
    "2025060100 2025060101"
"$ZONE" registry --zone reg.test --date 2025-06-02 --allow-special --no-dns --previous "$W/good2.zone" \
    -o "$W/good3.zone" "$W/good" 2> /dev/null
check "registry: a new day starts at YYYYMMDD00" "$(soa_serial "$W/good3.zone")" 2025060200
# Without --previous, the zone that -o replaces is the previous one.
cp "$W/good2.zone" "$W/inplace.zone"
"$ZONE" registry --zone reg.test --date 2025-06-01 --allow-special --no-dns -o "$W/inplace.zone" "$W/good" \
    2> /dev/null
check "registry: without --previous, the serial rises over the zone -o replaces" \
    "$? $(soa_serial "$W/inplace.zone")" "0 2025060102"
# A failed rebuild over a published zone leaves it as it was (written beside, renamed only on success).
cp "$W/good2.zone" "$W/published.zone"
(cd "$F" && "$ZONE" registry --zone reg.test --date 2025-06-02 --no-dns -o "$W/published.zone" registrations) \
    2> /dev/null
check "registry: a failed rebuild leaves the published zone untouched" \
    "$? $(cmp -s "$W/good2.zone" "$W/published.zone" && echo same) $(ls "$W" | grep -c '^published')" "1 same 1"
"$ZONE" optout --zone optout.test -o "$W/published.zone" "$F/no-such-table" 2> /dev/null
check "optout: a missing table leaves the published zone untouched" \
    "$? $(cmp -s "$W/good2.zone" "$W/published.zone" && echo same)" "1 same"
echo '@ IN NS ns.' > "$W/nosoa.zone"
"$ZONE" registry --zone reg.test --allow-special --no-dns --previous "$W/nosoa.zone" -o "$W/x.zone" "$W/good" \
    2> "$W/nosoa.err"
check "registry: a --previous without SOA is an error" "$? $(cat "$W/nosoa.err") $(test -e "$W/x.zone" && echo written)" \
    "1 regmilter-zone: $W/nosoa.zone: no SOA record (the new serial must rise above it) "
"$ZONE" registry --zone reg.test --bogus "$W/good" 2> /dev/null
check "registry: unknown option exits 2" "$?" 2

# --- 2. the zone checkers ---
# zone_checkers ZONE FILE: nsd-checkzone always; kzonecheck and named-checkzone when installed
zone_checkers() {
    if nsd-checkzone "$1" "$2" > "$W/check.log" 2>&1; then ok "nsd-checkzone accepts $1"; else
        not_ok "nsd-checkzone accepts $1" "$(cat "$W/check.log")"; fi
    if command -v kzonecheck > /dev/null 2>&1; then
        if kzonecheck -o "$1" "$2" > "$W/check.log" 2>&1; then ok "kzonecheck accepts $1"; else
            not_ok "kzonecheck accepts $1" "$(cat "$W/check.log")"; fi
    else
        echo "# kzonecheck not installed (package knot-dnssecutils): not run"
    fi
    if command -v named-checkzone > /dev/null 2>&1; then
        if named-checkzone -i full "$1" "$2" > "$W/check.log" 2>&1; then ok "named-checkzone accepts $1"; else
            not_ok "named-checkzone accepts $1" "$(cat "$W/check.log")"; fi
    else
        echo "# named-checkzone not installed (package bind9-utils): not run"
    fi
}
zone_checkers reg.test "$W/reg.zone"
# The registrations' email and phone stay with the operator: only handles are published.
check "registry: no email address or phone number published" \
    "$(cat "$W/reg.zone" "$W/reg.rbl" | grep -c -e 'noc@' -e 'lists@' -e 'hosts\.test' -e '555-0100')" 0

# --- opt-out zone and dataset from the bulk table ---
"$ZONE" optout --zone optout.test --date 2025-06-01 -o "$W/optout.zone" --rbldnsd "$W/optout.rbl" \
    "$F/bulk-table" 2> "$W/optout.err"
check "optout: exit 0" "$?" 0
zone_checkers optout.test "$W/optout.zone"
cp "$W/optout.zone" "$W/optout2.zone"
"$ZONE" optout --zone optout.test --date 2025-06-01 -o "$W/optout2.zone" "$F/bulk-table" 2> /dev/null
check "optout: a rebuild raises the serial" "$? $(soa_serial "$W/optout.zone") $(soa_serial "$W/optout2.zone")" \
    "0 2025060100 2025060101"
check "optout: no address is published" "$(grep -ci 'example' "$W/optout.zone" "$W/optout.rbl" | sed 's/.*://' | tr '\n' ' ')" "0 0 "
printf 'a@b.example reject\nA@B.EXAMPLE accept\nnonsense\n' > "$W/bad-table"
"$ZONE" optout --zone optout.test -o "$W/bad.zone" "$W/bad-table" 2> "$W/bad.err"
check "optout: a broken table is refused with FILE:LINE, nothing written" \
    "$? $(grep -c "^$W/bad-table:3: " "$W/bad.err") $(test -e "$W/bad.zone" && echo written)" "1 1 "

# --- 3. NSD serves the zone ---
dns_server_start reg.test=$W/reg.zone optout.test=$W/optout.zone
NSD_PORT=$DNS_PORT

# answer PORT TYPE NAME: the answer's rdata (sorted, one line), or the rcode
answer() {
    _out=$(timeout 5 drill -p "$1" @127.0.0.1 "$2" "$3" 2>&1)
    _rdata=$(printf '%s\n' "$_out" | awk -v t="$2" '/^;; ANSWER SECTION:/{a=1;next} /^$/{a=0} a && $4==t {
        $1=$2=$3=$4=""; sub(/^ +/, ""); print }' | sort | tr '\n' ' ' | sed 's/ $//')
    if [ -n "$_rdata" ]; then echo "$_rdata"; else printf '%s\n' "$_out" | sed -n 's/.*rcode: \([A-Z]*\).*/\1/p'; fi
}

V6=2001-0db8-0000-0000-0000-0000-0000-0025
V6REV=5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2
TP6=0000-0000-0000-0000-0000-ffff-7f00
TP6REV=0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0

# registry_answers SERVER PORT: the same questions of NSD and of rbldnsd
registry_answers() {
    _s=$1
    _p=$2
    check "$_s: dashed IPv4 regular" "$(answer "$_p" A 192-0-2-10.reg.test)" 127.0.0.2
    check "$_s: dashed IPv4 TXT" "$(answer "$_p" TXT 192-0-2-10.reg.test)" \
        '"registered=2024-01-15 updated=2024-06-01 contact=REG-1"'
    check "$_s: reversed IPv4 regular" "$(answer "$_p" A 10.2.0.192.reg.test)" 127.0.0.2
    check "$_s: dashed IPv4 bulk" "$(answer "$_p" A 192-0-2-11.reg.test)" 127.0.0.3
    check "$_s: reversed IPv4 bulk" "$(answer "$_p" A 11.2.0.192.reg.test)" 127.0.0.3
    check "$_s: reversed IPv4 TXT, only the handle" "$(answer "$_p" TXT 11.2.0.192.reg.test)" \
        '"registered=2024-02-01 updated=2024-02-01 contact=REG-2"'
    check "$_s: dashed IPv6" "$(answer "$_p" A $V6.reg.test)" 127.0.0.2
    check "$_s: reversed IPv6" "$(answer "$_p" A $V6REV.reg.test)" 127.0.0.2
    check "$_s: reversed IPv6 TXT" "$(answer "$_p" TXT $V6REV.reg.test)" \
        '"registered=2024-03-01 updated=2024-03-01 contact=REG-3"'
    check "$_s: 198.51.100.7 both forms" \
        "$(answer "$_p" A 198-51-100-7.reg.test) $(answer "$_p" A 7.100.51.198.reg.test)" "127.0.0.2 127.0.0.2"
    check "$_s: test point 127.0.0.2 listed" \
        "$(answer "$_p" A 2.0.0.127.reg.test) $(answer "$_p" A 127-0-0-2.reg.test)" "127.0.0.2 127.0.0.2"
    check "$_s: test point ::FFFF:7F00:2 listed" \
        "$(answer "$_p" A 2.0.0.0.$TP6REV.reg.test) $(answer "$_p" A $TP6-0002.reg.test)" "127.0.0.2 127.0.0.2"
    check "$_s: 127.0.0.1 not listed" \
        "$(answer "$_p" A 1.0.0.127.reg.test) $(answer "$_p" A 127-0-0-1.reg.test)" "NXDOMAIN NXDOMAIN"
    check "$_s: ::FFFF:7F00:1 not listed" \
        "$(answer "$_p" A 1.0.0.0.$TP6REV.reg.test) $(answer "$_p" A $TP6-0001.reg.test)" "NXDOMAIN NXDOMAIN"
    check "$_s: a failed entry is not listed" \
        "$(answer "$_p" A 20.2.0.192.reg.test) $(answer "$_p" A 192-0-2-25.reg.test)" "NXDOMAIN NXDOMAIN"
    check_match "$_s: SOA" "$(answer "$_p" SOA reg.test)" "localhost. hostmaster.reg.test. 2025060100 *"
}
registry_answers nsd "$NSD_PORT"

# label ADDR: base32(SHA-256(ADDR)) with coreutils alone, as a list provider would.
label() {
    printf %s "$1" | sha256sum | cut -c1-64 | tr a-f A-F | tr -d '\n' | basenc --base16 -d | base32 -w0 |
        tr -d = | tr A-Z a-z
}
optout_answers() {
    _s=$1
    _p=$2
    check "$_s: alice@example.org opted out" "$(answer "$_p" A "$(label alice@example.org).optout.test")" 127.0.0.2
    check "$_s: Bob@example.org (as written) opted out" "$(answer "$_p" A "$(label Bob@example.org).optout.test")" \
        127.0.0.2
    check "$_s: bob@example.org (lower case) opted out" "$(answer "$_p" A "$(label bob@example.org).optout.test")" \
        127.0.0.2
    check "$_s: carol+news@example.org opted out" \
        "$(answer "$_p" A "$(label carol+news@example.org).optout.test")" 127.0.0.2
    check "$_s: carol@example.org opted in" "$(answer "$_p" A "$(label carol@example.org).optout.test")" 127.0.0.3
    check "$_s: @optout.example opted out" "$(answer "$_p" A "$(label @optout.example).optout.test")" 127.0.0.2
    check "$_s: @optin.example (mixed case in the table) opted in" \
        "$(answer "$_p" A "$(label @optin.example).optout.test")" 127.0.0.3
    check "$_s: an address not in the table" "$(answer "$_p" A "$(label gina@example.org).optout.test")" NXDOMAIN
}
optout_answers nsd "$NSD_PORT"

# --- 4. the library's lookup agrees with the table ---
RCPTS=$(grep -v '^#' "$F/optout-recipients")
verdicts() {
    # shellcheck disable=SC2086
    "$BUILD/t/optout-lookup" --nameserver "127.0.0.1:$1" --table "$F/bulk-table" --zone optout.test $RCPTS \
        > "$W/verdicts.$2" 2>&1
    _bad=$(awk '{ t=$2; z=$3; sub("table=","",t); sub("zone=","",z);
        want = (t=="reject") ? "opted-out" : (t=="accept") ? "opted-in" : "none";
        if (z != want) print $0 }' "$W/verdicts.$2")
    check "$2: bulk::lookup_zones agrees with the table for $(wc -l < "$W/verdicts.$2") addresses" "$_bad" ""
    check "$2: verdicts (table side)" "$(awk '{print $2}' "$W/verdicts.$2" | sort | uniq -c | tr -s ' ' | tr '\n' ';')" \
        " 5 table=accept; 2 table=default; 10 table=reject;"
}
verdicts "$NSD_PORT" nsd

# --- rbldnsd serves the datasets ---
if command -v rbldnsd > /dev/null 2>&1 || [ -x /usr/sbin/rbldnsd ]; then
    rbldnsd_start reg.test:combined:"$W/reg.rbl" optout.test:dnset:"$W/optout.rbl"
    ok "rbldnsd loads both datasets"
    registry_answers rbldnsd "$RBLDNSD_PORT"
    optout_answers rbldnsd "$RBLDNSD_PORT"
    verdicts "$RBLDNSD_PORT" rbldnsd
else
    echo "# rbldnsd not installed (package rbldnsd): dataset not served"
fi

finish
