#!/bin/sh
# soak.sh (make soak): many transactions through the real milter over the
# milter protocol, and how its resident memory moves meanwhile. NSD on
# loopback serves the zones of the benchmark workload (t/bench/compare/gen-workload:
# SPF trees, the registry with its RFC 5782 test points, PTRs); one pass over
# the workload warms the cache first; then build/t/milter-bench runs STEP
# transactions at a time until TOTAL, and after each step the milter's RSS
# (its whole process tree) is printed. Prints numbers; never fails on them.
#
#   t/bench/soak.sh [--total N] [--step N] [--concurrency C] [--max-seconds S]
#
#   --total        transactions after the warm-up (default 1000000)
#   --step         transactions between two RSS readings (default 50000)
#   --concurrency  milter-bench threads (default 8)
#   --max-seconds  bound for the whole run (default 5400): the last step is
#                  cut short and the curve ends there
#
# Output: "soak step=K tx=N seconds=S tx_per_s=R rss_kib=X errors=E" per step, then
#   soak: TX transactions in S s; RSS first X KiB (after TX1), last Y KiB, growth D KiB (P %)
# Exit: 0 when every transaction got an answer, 1 otherwise, 77 when NSD is missing.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
BUILD=$(cd "${BUILD:-$top/build}" && pwd) || exit 1
export BUILD
. "$top/t/integration/lib/common.sh"
. "$top/t/integration/lib/dns-server.sh"
. "$top/t/integration/lib/milter.sh"

total=1000000 step=50000 conc=8 max_seconds=5400
while [ $# -gt 0 ]; do
    case $1 in
    --total) total=${2:-} ;;
    --step) step=${2:-} ;;
    --concurrency) conc=${2:-} ;;
    --max-seconds) max_seconds=${2:-} ;;
    *) echo "usage: soak.sh [--total N] [--step N] [--concurrency C] [--max-seconds S]" >&2; exit 2 ;;
    esac
    [ $# -ge 2 ] || { echo "soak.sh: missing value for $1" >&2; exit 2; }
    shift 2
done
for v in "$total" "$step" "$conc" "$max_seconds"; do
    case $v in '' | *[!0-9]*) echo "soak.sh: not a number: '$v'" >&2; exit 2 ;; esac
done
[ "$step" -ge 1 ] && [ "$step" -le 1000000 ] && [ "$total" -ge "$step" ] ||
    { echo "soak.sh: want 1 <= --step <= 1000000 and --step <= --total" >&2; exit 2; }

need_build regmilter t/milter-bench t/milter-client
# As the unit does (LimitNOFILE): room for every connection and its DNS sockets.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null

tmpdir_new work
sh "$here/compare/gen-workload" "$work" 2000 || exit 1
set --
while read -r zone file; do set -- "$@" "$zone=$work/$file"; done < "$work/zones"
dns_server_start "$@"

MILTER_DIR=$work
MILTER_CONF=$work/regmilter.ini
_milter_setup
cat > "$MILTER_CONF" <<CONF
[milter]
socket = $MILTER_SOCKET
user = $MILTER_USER
pid_file = $work/regmilter.pid
authserv_id = mx.bench.test

[resolver]
nameservers = $DNS_SERVER
timeout_ms = 2000
retries = 2
cache_size = 100000

[trust]
networks =

[registry reg]
zone = reg.bench
format = dashed
meaning = registered
unregistered = tag

[spf]
fail = reject
softfail = tag
check_helo = yes
headers = both
CONF
milter_start
bench() {  # COUNT MAX-SECONDS
    "$BUILD/t/milter-bench" --socket "$MILTER_SOCKET" --pid "$MILTER_PID" --workload "$work/workload" \
        --count "$1" --concurrency "$conc" --max-seconds "$2" --label soak
}
echo "# soak: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $total transactions in steps of $step, concurrency $conc, at most $max_seconds s; NSD $DNS_SERVER"
warm=$(bench 2000 600)
echo "# warm-up: $warm"

t0=$(date +%s)
done_tx=0 k=0 status=0 first_rss="" first_tx=0 rss=0
while [ "$done_tx" -lt "$total" ]; do
    left=$((max_seconds - ($(date +%s) - t0)))
    [ "$left" -ge 1 ] || { echo "# soak: --max-seconds reached"; break; }
    [ "$left" -gt 3600 ] && left=3600
    n=$step
    [ $((done_tx + n)) -gt "$total" ] && n=$((total - done_tx))
    s0=$(date +%s)
    out=$(bench "$n" "$left") || status=1
    k=$((k + 1))
    got=$(printf '%s\n' "$out" | sed -n 's/.* transactions=\([0-9]*\) .*/\1/p')
    errors=$(printf '%s\n' "$out" | sed -n 's/.* errors=\([0-9]*\) .*/\1/p')
    tps=$(printf '%s\n' "$out" | sed -n 's/.* tx_per_s=\([0-9.]*\) .*/\1/p')
    rss=$(printf '%s\n' "$out" | sed -n 's/.* rss_kib=\([0-9]*\) .*/\1/p')
    done_tx=$((done_tx + ${got:-0}))
    echo "soak step=$k tx=$done_tx seconds=$(($(date +%s) - s0)) tx_per_s=${tps:-?} rss_kib=${rss:-?} errors=${errors:-?}"
    [ -n "$first_rss" ] || { first_rss=${rss:-0}; first_tx=$done_tx; }
    [ "${got:-0}" -lt "$n" ] && { echo "# soak: step cut short: $out"; break; }
    milter_running || { echo "# soak: the milter died"; status=1; break; }
done
secs=$(($(date +%s) - t0))
if [ -n "$first_rss" ] && [ "$first_rss" -gt 0 ]; then
    growth=$((rss - first_rss))
    pct=$(awk -v g="$growth" -v f="$first_rss" 'BEGIN { printf "%.1f", 100 * g / f }')
    echo "soak: $done_tx transactions in $secs s; RSS first $first_rss KiB (after $first_tx), last $rss KiB, growth $growth KiB ($pct %)"
fi
[ "$done_tx" -ge "$total" ] || status=1
exit $status
