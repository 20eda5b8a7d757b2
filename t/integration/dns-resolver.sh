#!/bin/sh
# The production resolver (LdnsResolver, via $BUILD/t/dns-lookup) against a
# real NSD on loopback: answer kinds, CNAMEs, RFC 2308 negative TTLs, TCP
# fallback for a truncated answer, REFUSED, and timeouts bounded by the
# configured timeout and by the deadline (a black hole that never answers).
. "$(dirname "$0")/lib/dns-server.sh"

need_build t/dns-lookup t/dns-blackhole
zones=t/fixtures/zones
dns_server_start spf.test=$zones/spf.test.zone other.test=$zones/other.test.zone \
    dns.test=$zones/dns.test.zone
dns_blackhole_start 120
tmpdir_new work

# lookup NAME TYPE [options]: sets status ttl count ms (first line) and rdata (the rest)
lookup() {
    _n=$1 _t=$2
    shift 2
    "$BUILD/t/dns-lookup" --nameserver "${NS:-$DNS_SERVER}" "$@" "$_n" "$_t" > "$work/out" 2> "$work/err" \
        || not_ok "dns-lookup $_n $_t exit status" "got $?, want 0: $(head -c 300 "$work/err")"
    read -r status ttl count ms < "$work/out"
    rdata=$(sed 1d "$work/out")
}

lookup pass.spf.test TXT
check "TXT status" "$status" ok
check "TXT text" "$rdata" "v=spf1 ip4:192.0.2.0/24 -all"
check "TXT ttl" "$ttl" 300

lookup mx.spf.test MX
check "MX text" "$rdata" "10 mail.spf.test"
lookup mail.spf.test A
check "A through CNAME" "$status $rdata" "ok 192.0.2.77"
lookup MAIL.Spf.Test A
check "names compare case-insensitively" "$status $rdata" "ok 192.0.2.77"

lookup nothing.spf.test TXT
check "NXDOMAIN" "$status" nxdomain
check "NXDOMAIN ttl is min(SOA ttl, minimum) (RFC 2308)" "$ttl" 60
lookup pass.spf.test AAAA
check "NODATA" "$status $count" "nodata 0"
check "NODATA ttl" "$ttl" 60
lookup example.invalid A
check "REFUSED is servfail" "$status" servfail
check_match "REFUSED detail" "$(cat "$work/err")" "*rcode REFUSED*"

lookup two.dns.test A
check "two A records" "$status $count $(echo $rdata)" "ok 2 192.0.2.1 192.0.2.2"
lookup two.dns.test AAAA
check "AAAA in RFC 5952 form" "$rdata" "2001:db8::1"
lookup bin.dns.test TXT
check "TXT strings concatenated, NUL kept" "$(sed 1d "$work/out" | od -An -c | tr -s ' ')" " a \\0 b c \\n"
lookup weird.dns.test PTR
check "a dot inside a label comes back escaped" "$rdata" 'odd\.label.dns.test'
lookup nullmx.dns.test MX
check "null MX (RFC 7505)" "$status|$rdata" "ok|0 "
lookup out.dns.test TXT
check "CNAME chain into another zone" "$status $rdata" "ok v=spf1 ip4:203.0.113.0/28 -all"
lookup dangling.dns.test A
check "CNAME to a missing name is NXDOMAIN" "$status" nxdomain
lookup loop1.dns.test A
check "CNAME loop is a failure, not a hang" "$status" servfail
lookup short.dns.test TXT
check "TTL is the record's" "$ttl" 30
lookup nothing.dns.test A
check "negative TTL from this zone's SOA minimum" "$ttl" 45

lookup big.spf.test TXT
check "big TXT over TCP fallback" "$status $count" "ok 1"
check_match "big TXT came over TCP" "$(cat "$work/err")" "*$DNS_SERVER tcp *"
check_match "big TXT is complete" "$rdata" "v=spf1 ip4:198.51.100.1 *ip4:192.0.2.200 -all"
len=$(printf '%s' "$rdata" | wc -c)
[ "$len" -gt 1232 ] && ok "big TXT larger than the EDNS0 buffer ($len bytes)" \
    || not_ok "big TXT larger than the EDNS0 buffer" "got $len bytes, want > 1232"
lookup big.spf.test TXT --edns 0
check "big TXT over TCP without EDNS0" "$status $count" "ok 1"
lookup pass.spf.test TXT
check_match "a small answer stays on UDP" "$(cat "$work/err")" "detail: $DNS_SERVER [0-9]* ms"

NS=$BLACKHOLE_SERVER
t0=$(now_ms)
lookup pass.spf.test TXT --timeout-ms 300 --retries 2
t1=$(now_ms)
check "black hole is a timeout" "$status" timeout
el=$((t1 - t0))
echo "# timeout 300 ms x 3 tries took $el ms (tool says $ms ms)"
[ "$ms" -ge 880 ] && [ "$el" -lt 1900 ] && ok "timeout took timeout*(retries+1) ($el ms)" \
    || not_ok "timeout took timeout*(retries+1)" "got $el ms (lookup $ms ms), want 900..1900"

t0=$(now_ms)
lookup pass.spf.test TXT --timeout-ms 2000 --retries 2 --deadline-ms 400
t1=$(now_ms)
el=$((t1 - t0))
check "deadline is a timeout" "$status" timeout
echo "# deadline 400 ms (timeout 2000 ms) took $el ms (tool says $ms ms)"
[ "$ms" -ge 390 ] && [ "$ms" -lt 600 ] && ok "deadline bounds the wait ($ms ms)" \
    || not_ok "deadline bounds the wait" "got $ms ms, want 400..600"

# A dead nameserver first, a working one second: the answer still comes.
"$BUILD/t/dns-lookup" --nameserver "$BLACKHOLE_SERVER" --nameserver "$DNS_SERVER" --timeout-ms 200 --retries 1 \
    pass.spf.test TXT > "$work/out" 2> "$work/err"
read -r status ttl count ms < "$work/out"
check "second nameserver answers after the first times out" "$status" ok
[ "$ms" -ge 190 ] && [ "$ms" -lt 1000 ] && ok "one timeout before the second nameserver ($ms ms)" \
    || not_ok "one timeout before the second nameserver" "got $ms ms, want 200..1000"
finish
