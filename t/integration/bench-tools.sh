#!/bin/sh
# The tools make bench's comparison is built from, against real servers on
# loopback: gen-workload's zones load in NSD and answer what the workload
# asks; dns-delay relays UDP and TCP answers and holds each back at least the
# delay; milter-bench drives the do-nothing filter in both shapes over the
# milter protocol (the steps a milter negotiates away are not sent), reads a
# workload file, and refuses bad input and non-loopback sockets.
# (Speed itself is make bench's business: no timing here but a lower bound.)
. "$(dirname "$0")/lib/dns-server.sh"

need_build t/dns-delay t/milter-bench t/null-milter
tmpdir_new work

# ---------------------------------------------------------------- gen-workload
W=$work/workload
t/bench/compare/gen-workload "$W" > "$work/gen.out" 2>&1
check "gen-workload exit status" "$?" 0
check "gen-workload: one transaction per domain" "$(wc -l < "$W/workload")" 2000
t/bench/compare/gen-workload "$work/again" > /dev/null 2>&1
check "gen-workload is deterministic" "$(cat "$W"/*.zone "$W/workload" | cksum)" \
    "$(cat "$work/again"/*.zone "$work/again/workload" | cksum)"
t/bench/compare/gen-workload "$work/bad" 5 > /dev/null 2> "$work/bad.err"
check "gen-workload refuses too few domains" "$?" 2
check_match "gen-workload says why" "$(cat "$work/bad.err")" "*DOMAINS must be 10..15000, got 5*"

set --
while read -r zone file; do set -- "$@" "$zone=$W/$file"; done < "$W/zones"
dns_server_start "$@"
q() { timeout 5 drill -p "$DNS_PORT" @127.0.0.1 "$@" 2>&1; }
# Line 8 of the workload: d0008.bench, an include chain, a:relay, exp=.
line8=$(sed -n 8p "$W/workload")
set -- $line8
check "workload line 8" "$4" "user8@d0008.bench"
check_match "d0008.bench publishes its SPF record" "$(q d0008.bench TXT)" \
    "*v=spf1 ip4:198.18.108.0/24 include:_spf.p1.bench a:relay.d0008.bench -all exp=exp.d0008.bench*"
check_match "the client is relay.d0008.bench" "$(q relay.d0008.bench A)" "*relay.d0008.bench.*IN*A*$1*"
check_match "the client is registered (dashed form)" "$(q "$(echo "$1" | tr . -).reg.bench" A)" "*IN*A*127.0.0.2*"
check_match "the client has a PTR" "$(q -x "$1")" "*PTR*$2.*"
check_match "line 13 is sent from an unregistered address" \
    "$(q "$(sed -n 13p "$W/workload" | cut -d' ' -f1 | tr . -).reg.bench" A)" "*rcode: NXDOMAIN*"

# ---------------------------------------------------------------- dns-delay
"$BUILD/t/dns-delay" --upstream "127.0.0.1:$DNS_PORT" --delay-ms 300 --max-seconds 60 \
    > "$work/relay.port" 2> "$work/relay.err" &
RELAY=$!
at_exit "kill $RELAY"
i=0
while [ ! -s "$work/relay.port" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
RP=$(head -n 1 "$work/relay.port")
t0=$(now_ms)
out=$(timeout 5 drill -p "$RP" @127.0.0.1 d0001.bench TXT 2>&1)
t1=$(now_ms)
check_match "dns-delay relays a UDP answer" "$out" "*v=spf1 ip6:2001:2:0:1001::/64*"
check "dns-delay holds the answer back at least 300 ms" "$([ $((t1 - t0)) -ge 300 ] && echo yes || echo "no: $((t1 - t0)) ms")" yes
check_match "dns-delay relays over TCP" "$(timeout 5 drill -t -p "$RP" @127.0.0.1 d0002.bench MX 2>&1)" \
    "*MX*10 mx1.d0002.bench.*"
"$BUILD/t/dns-delay" --upstream 192.0.2.1:53 > /dev/null 2> "$work/relay-bad.err"
check "dns-delay refuses an upstream off loopback" "$?" 2

# ---------------------------------------------------------------- milter-bench and null-milter
for shape in all floor; do
    "$BUILD/t/null-milter" --socket "unix:$work/$shape.sock" --shape "$shape" --max-seconds 120 \
        > "$work/null-$shape.log" 2>&1 &
    pid=$!
    at_exit "kill $pid"
    i=0
    while [ ! -S "$work/$shape.sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    "$BUILD/t/milter-bench" --socket "unix:$work/$shape.sock" --pid "$pid" --workload "$W/workload" \
        --count 50 --concurrency 4 --max-seconds 30 --label "$shape" > "$work/$shape.out" 2>&1
    check "milter-bench against the $shape shape: exit status" "$?" 0
    check_match "milter-bench against the $shape shape: every transaction continues" \
        "$(cat "$work/$shape.out")" "*transactions=50 errors=0 *answers=c:50"
done
# Open loop: transaction n is due at n ÷ 100 s, none started after the 1 s
# limit, so exactly 101 of the 1,000 (a closed loop does them all at once).
"$BUILD/t/milter-bench" --socket "unix:$work/all.sock" --pid "$pid" --workload "$W/workload" \
    --count 1000 --concurrency 4 --max-seconds 1 --rate 100 --label open > "$work/open.out" 2>&1
check "milter-bench --rate: a count it does not reach is exit status 1" "$?" 1
check_match "milter-bench --rate 100 for 1 s starts 101 transactions, all answered" \
    "$(cat "$work/open.out")" "*transactions=101 errors=0 * rate=100 *answers=c:101"
"$BUILD/t/milter-bench" --socket "unix:$work/all.sock" --pid "$pid" --count 5 --rate 0.5 > /dev/null 2> "$work/rate.err"
check "milter-bench: --rate under 1 is bad usage" "$?" 2
check_match "milter-bench says the --rate range" "$(cat "$work/rate.err")" "*--rate 1..100000*"
"$BUILD/t/milter-bench" --socket "unix:$work/all.sock" --pid "$pid" --count 5 --rate 10x > /dev/null 2> "$work/rate.err"
check "milter-bench: --rate 10x is bad usage, not a closed loop" "$?" 2
"$BUILD/t/milter-bench" --socket "unix:$work/all.sock" --pid "$pid" --count 5 --rate 10 --hold yes > /dev/null 2> "$work/rate.err"
check "milter-bench: --rate with --hold is bad usage" "$?" 2
printf '198.18.0.2 host helo user@d0001.bench\n' > "$work/short"
"$BUILD/t/milter-bench" --socket "unix:$work/all.sock" --pid 1 --workload "$work/short" > /dev/null 2> "$work/short.err"
check "milter-bench: a short workload line is bad usage" "$?" 2
check_match "milter-bench names the file and line" "$(cat "$work/short.err")" "*$work/short:1: want*"
"$BUILD/t/milter-bench" --socket "inet:25@192.0.2.1" --pid 1 --count 1 --max-seconds 5 > "$work/far.out" 2>&1
check "milter-bench refuses a socket off loopback as bad usage" "$?" 2
check_match "milter-bench says why it refuses the socket" "$(cat "$work/far.out")" "*loopback addresses and unix sockets only*"

finish
