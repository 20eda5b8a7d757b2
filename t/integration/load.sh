#!/bin/sh
# A short load test: 1,000 milter connections open at once against the real
# milter (build/t/milter-bench --hold yes: every connection is open and
# negotiated before any goes on), each a whole transaction from a registered
# client with a passing SPF record, DNS from NSD on loopback and a warm cache.
# Every one must get its final answer (continue, as a single session gets):
# no error, no refused connection, no tempfail. The latency is printed, not
# judged. The file limit is raised as the unit's LimitNOFILE does; whichever
# process answers the socket (the milter, or a master in front of it) is
# measured as one process tree. LOAD_CONNECTIONS=N changes the 1,000.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/dns-server.sh"
. "$(dirname "$0")/lib/milter.sh"

need_build regmilter t/milter-bench t/milter-client
N=${LOAD_CONNECTIONS:-1000}
# Each side holds N sockets (the milter also its DNS sockets): raise the soft
# limit towards the hard one, as LimitNOFILE does for the service.
want=$((2 * N + 1024))
ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
have=$(ulimit -n)
[ "$have" = unlimited ] || [ "$have" -ge $((N + 256)) ] ||
    skip "the file limit is $have here (hard $(ulimit -Hn)); $N connections need $((N + 256))"
echo "# file limit $have; $N connections"

dns_server_start reg.e2e.test="$FIX_E2E/reg.e2e.test.zone" block.e2e.test="$FIX_E2E/block.e2e.test.zone" \
    spf.e2e.test="$FIX_E2E/spf.e2e.test.zone"
milter_config enforce reject 2020-01-01 tempfail
milter_start

bench() {  # LABEL COUNT CONCURRENCY [MORE...]
    _l=$1 _c=$2 _p=$3
    shift 3
    "$BUILD/t/milter-bench" --socket "$MILTER_SOCKET" --pid "$MILTER_PID" --label "$_l" --count "$_c" \
        --concurrency "$_p" --max-seconds 50 "$@"
}
field() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# One session alone: the answer every one of the burst must get; the cache warm.
one=$(bench single 5 1)
echo "# $one"
check "single: the registered client's answer" "$(field answers "$one")" "c:5"

t0=$(now_ms)
out=$(bench burst "$N" "$N" --hold yes)
took=$(($(now_ms) - t0))
echo "# $out"
echo "# burst of $N: ${took} ms in all; p50 $(field p50_ms "$out") ms, p99 $(field p99_ms "$out") ms, max $(field max_ms "$out") ms"
check "burst: every transaction answered" "$(field transactions "$out")" "$N"
check "burst: no error" "$(field errors "$out")" 0
check "burst: no refused connection" "$(field refused "$out")" 0
check "burst: every answer is the single session's (no tempfail)" "$(field answers "$out")" "c:$N"
milter_running && ok "the milter still runs" || not_ok "the milter still runs" "it died"
check "no DNS socket error in the log" "$(grep -c 'Error creating socket\|local error' "$MILTER_LOG")" 0
check "no sanitizer report" "$(milter_sanitizer_reports)" 0
finish
