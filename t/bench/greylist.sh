#!/bin/sh
# greylist.sh: issue 12's targets in make bench: regmilter's warm throughput
# and p99 with greylisting on (unregistered = greylist, 1 s delay; the memory
# store, and Redis on loopback) against greylisting off (unregistered = tag),
# over the milter protocol (t/tools/milter-bench), against NSD behind Unbound
# with compare.sh's workload, servers and regmilter configuration
# (compare/servers.sh, compare/milters.sh).
#
# The machine is shared and its load moves by tens of per cent within
# seconds, so all are measured in ONE regmilter process, switched by
# SIGHUP (a reload keeps the DNS cache; memory <-> Redis carries the
# greylisting state over through a snapshot file), in short runs that
# alternate off, off-again, rcpt, memory, redis, redis-direct (in a shuffled
# order each round) round after round. "redis" is the default configuration
# ([state] pass_cache = 60: a pass Redis gave is answered again for 60 s
# without asking it); "redis-direct" has pass_cache = 0, a Redis round trip
# for every recipient. "off-again" is off once more, the control: how far
# two runs of the same configuration land apart is what the method can
# resolve. "rcpt" is greylisting off with RCPT TO answered
# (exempt_recipients), the negotiation greylisting needs: the last table
# splits greylisting's cost into the protocol's (one more answered command
# per transaction) and the store's.
#
# Two kinds of run:
# - closed loop (milter-bench --concurrency C): C sessions, each starting
#   its next transaction when the last is answered; the milter is saturated
#   from c = 8 on, and a transaction's latency is mostly its wait in the
#   queue (Little's law: mean latency = C ÷ throughput, so a few per cent of
#   throughput is a few per cent of latency);
# - open loop (milter-bench --rate R, at most C in flight, C the largest of
#   --concurrency): transactions arrive at a constant rate R = L × off's
#   closed-loop throughput at that C (the median of its rounds), L from
#   --loads; a latency counts from the arrival, waits included. This is the
#   latency a relay sees below saturation.
# The targets are the medians of the per-round ratios on ÷ off and p99
# rises, and the p99 over every transaction of all rounds (pooled).
#
#   t/bench/greylist.sh [--rounds N] [--concurrency C[,C...]] [--loads L[,L...]] [--seconds S] [--lines K] [--quick]
#
#   --rounds       rounds (default 7; --quick: 3)
#   --concurrency  default 1,8,32 (--quick: 8)
#   --loads        open-loop loads, fractions of off's throughput (default
#                  0.5; "none": no open-loop runs). Nearer 1 the queue a
#                  stall of the machine leaves takes ever longer to drain
#                  (at 0.7 a 10 ms stall costs 23 ms more), and p99 measures
#                  the stalls.
#   --seconds      per run (default 2; --quick: 1)
#   --lines        workload lines (default 2000; --quick: 400)
# Every workload line is sent once under memory and once under Redis first
# (not measured; 1 s later every greylisted triplet of the workload passes),
# so the measured runs pass the same mail as greylisting off does: the
# greylisting step itself is measured, on the 10 % of transactions whose
# client is unregistered (and not refused for SPF).
# Prints one "run" line per run (steal_pct: the per cent of the machine's
# CPU time the hypervisor gave other guests during it), the steal over all
# runs, then the tables: medians of the per-round ratios and p99 rises
# against off, the p99 of every transaction of all rounds per variant
# (pooled), and the per-round medians against rcpt.
# Exit: 0; 77 when the namespace, a server or Redis is missing ("# skip: ...").
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
BUILD=$(cd "${BUILD:-$top/build}" && pwd) || exit 1
export BUILD

rounds=7 conc=1,8,32 loads=0.5 seconds=2 lines=2000 args="$*"
while [ $# -gt 0 ]; do
    case $1 in
    --quick) rounds=3 conc=8 seconds=1 lines=400; shift; continue ;;
    --rounds) rounds=$2 ;;
    --concurrency) conc=$2 ;;
    --loads) loads=$2 ;;
    --seconds) seconds=$2 ;;
    --lines) lines=$2 ;;
    *) echo "usage: greylist.sh [--rounds N] [--concurrency C[,C...]] [--loads L[,L...]|none] [--seconds S] [--lines K] [--quick]" >&2; exit 2 ;;
    esac
    shift 2 || exit 2
done
[ "$loads" = none ] && loads=""
for l in $(echo "$loads" | tr ',' ' '); do
    awk -v l="$l" 'BEGIN { exit !(l ~ /^(0?\.[0-9]+|1(\.0*)?)$/ && l + 0 > 0) }' ||
        { echo "greylist: --loads wants fractions in (0, 1], got $l" >&2; exit 2; }
done

# Into a private network and mount namespace, as compare.sh does.
if [ -z "${BENCH_NS:-}" ]; then
    for ns in "unshare --mount --net" "unshare --user --map-root-user --mount --net"; do
        # shellcheck disable=SC2086
        $ns true 2>/dev/null && BENCH_NS=1 exec $ns --propagation private sh "$0" $args
    done
    echo "# skip: cannot create a private network and mount namespace (unshare --mount --net failed)"
    exit 77
fi

. "$here/lib/common.sh"
. "$here/compare/servers.sh"
. "$here/compare/milters.sh"
for tool in nsd nsd-control drill unbound ip; do
    command -v "$tool" >/dev/null 2>&1 || { echo "# skip: $tool not found (contrib/install-deps bench)"; exit 77; }
done
for f in regmilter t/milter-bench; do
    [ -x "$BUILD/$f" ] || { echo "greylist: $BUILD/$f not built (make bench builds it)" >&2; exit 1; }
done

tmpdir_new T
chmod 0755 "$T"
at_exit 'stop_pid "$GREY_PID" 1; stop_pid "$REDIS_BENCH_PID" 1; servers_stop'
ip link set lo up || exit 1
"$here/compare/gen-workload" "$T/workload" || exit 1
WORKLOAD=$T/workload
head -n "$lines" "$WORKLOAD/workload" > "$T/lines"
nsd_start "$WORKLOAD" || exit 1
unbound_start "$NSD_PORT" || exit 1
redis_bench_start || { echo "# skip: $MILTER_SKIP"; exit 77; }

# The configurations of one process; the memory store's snapshot
# carries its state over a switch to Redis and back.
MILTER_SOCK=$T/regmilter.sock
variant_ini() {
    case $1 in
    off | off-again) regmilter_ini tag memory "snapshot = $T/state" ;;
    # Greylisting off, but RCPT TO answered as greylisting needs it
    # (policy::stage_needs): the protocol's share of greylisting's cost. No
    # workload recipient is abuse@ (they are postmaster@): SPF refusals move
    # from MAIL FROM to RCPT TO, every answer stays the same.
    rcpt) regmilter_ini tag memory "snapshot = $T/state" "[policy]" "exempt_recipients = abuse@" ;;
    memory) regmilter_ini greylist memory "snapshot = $T/state" ;;
    redis) regmilter_ini greylist redis "snapshot = $T/state" ;;
    # Redis asked for every recipient: no [state] pass_cache (the default
    # remembers a pass for 60 s), the round trip's own cost.
    redis-direct) regmilter_ini greylist redis "snapshot = $T/state" "pass_cache = 0" ;;
    esac
}
variant_ini off > "$T/regmilter.ini"
"$BUILD/regmilter" -c "$T/regmilter.ini" -f -P "" > "$T/regmilter.log" 2>&1 &
GREY_PID=$!
wait_for "regmilter" 50 test -S "$MILTER_SOCK" || { cat "$T/regmilter.log" >&2; exit 1; }

# switch VARIANT: its configuration, SIGHUP, and the reload line.
switch() {
    _n=$(grep -c 'reloaded ' "$T/regmilter.log")
    variant_ini "$1" > "$T/regmilter.ini"
    kill -HUP "$GREY_PID"
    wait_for "reload to $1" 100 _reloaded "$_n" || { tail -n 5 "$T/regmilter.log" >&2; exit 1; }
}
_reloaded() { [ "$(grep -c 'reloaded ' "$T/regmilter.log")" -gt "$1" ]; }

# bench C COUNT SECONDS LABEL [LATENCIES [RATE]]: milter-bench's line; every
# transaction's latency appended to LATENCIES; RATE: open loop.
bench() {
    "$BUILD/t/milter-bench" --socket "unix:$MILTER_SOCK" --pid "$GREY_PID" --cpu "resolver=$UNBOUND_PID" \
        --cpu "redis=$REDIS_BENCH_PID" --workload "$T/lines" --concurrency "$1" --count "$2" \
        --max-seconds "$3" --label "$4" ${5:+--latencies "$5"} ${6:+--rate "$6"}
}

VARIANTS="off off-again rcpt memory redis redis-direct"

# The machine's CPU time so far, from /proc/stat: "STEAL TOTAL" in ticks.
# Steal is the time the hypervisor gave this machine's CPUs to other
# guests: a run with much of it measures them, not greylisting.
cpu_times() { awk '$1 == "cpu" { t = 0; for (i = 2; i <= 9; i++) t += $i; print $9, t; exit }' /proc/stat; }
# steal_pct BEFORE AFTER: the per cent of CPU time stolen between the two.
steal_pct() {
    echo "$1 $2" | awk '{ t = $4 - $2; printf "%.1f", (t > 0 ? 100 * ($3 - $1) / t : 0) }'
}

# round KEY C ROUND SEED [RATE]: every variant once, in an order shuffled by
# SEED (a rerun repeats it, and no variant always follows the same one),
# each run's line appended to $T/runs under c=KEY.
round() {
    for v in $(printf '%s\n' $VARIANTS |
        awk -v seed="$4" 'BEGIN { srand(seed) } { print rand(), $0 }' | sort -n | cut -d' ' -f2); do
        switch "$v"
        # A reload swaps the store (the memory store saves and loads its
        # snapshot): not what is measured, so every variant starts settled.
        sleep 0.3
        _s0=$(cpu_times)
        _out=$(bench "$2" 1000000 "$seconds" measured "$T/lat-$v-$1" ${5:-})
        _steal=$(steal_pct "$_s0" "$(cpu_times)")
        printf '%s\n' "$_out" | awk -v v="$v" -v c="$1" -v r="$3" -v steal="$_steal" '
            /^measured: / {
                for (i = 2; i <= NF; i++) { split($i, kv, "="); x[kv[1]] = kv[2] }
                printf "run variant=%s c=%s round=%s tx_per_s=%s p50_ms=%s p99_ms=%s milter_cpu_ms=%s redis_cpu_ms=%s rate=%s steal_pct=%s answers=%s\n", \
                    v, c, r, x["tx_per_s"], x["p50_ms"], x["p99_ms"], x["milter_cpu_ms_per_tx"], x["redis_cpu_ms_per_tx"], x["rate"], steal, x["answers"]
            }' | tee -a "$T/runs"
    done
}

echo "# greylisting on ÷ off: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# one regmilter switched by SIGHUP; $rounds round(s) of $VARIANTS at c=$conc (closed loop)" \
    "and at loads $loads of off's throughput (open loop), $seconds s a run, $lines workload lines"
for v in memory redis; do
    switch "$v"
    bench 8 "$lines" 300 "warm-up-$v" | sed 's/^/# /'
done
sleep 1.1
: > "$T/runs"
keys=""
cmax=0
for c in $(echo "$conc" | tr ',' ' '); do
    r=1
    while [ "$r" -le "$rounds" ]; do
        round "$c" "$c" "$r" "$((c * 1000 + r))"
        r=$((r + 1))
    done
    keys="$keys${keys:+,}$c"
    [ "$c" -gt "$cmax" ] && cmax=$c
done
# Open loop: L × off's closed-loop throughput at the largest c (the median
# of its rounds), at most that many transactions in flight.
off_tx=$(awk -v c="$cmax" '$2 == "variant=off" && $3 == "c=" c { split($5, a, "="); print a[2] }' "$T/runs" |
    sort -n | awk '{ a[NR] = $1 } END { if (NR) print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }')
li=0
for l in $(echo "$loads" | tr ',' ' '); do
    li=$((li + 1))
    rate=$(awk -v l="$l" -v t="${off_tx:-0}" 'BEGIN { printf "%.0f", l * t }')
    [ "$rate" -ge 1 ] || { echo "greylist: no closed-loop throughput of off at c=$cmax for --loads" >&2; exit 1; }
    echo "# open loop at $l × off's $off_tx tx/s at c=$cmax: $rate transactions/s, at most $cmax in flight"
    r=1
    while [ "$r" -le "$rounds" ]; do
        round "open$l" "$cmax" "$r" "$((9000000 + li * 1000 + r))" "$rate"
        r=$((r + 1))
    done
    keys="$keys,open$l"
done
stop_pid "$GREY_PID" 1
GREY_PID=""

# The c column: "32" for a closed-loop run, "32 @ 0.8× load" for open loop.
SHOW_KEY='function show(k) { return k ~ /^open/ ? cmax " @ " substr(k, 5) "× load" : k }'

# pooled: p99 over every transaction a variant served in all its rounds
# (the shuffled order gives each variant the same mix of the machine's
# moments), against off's. A run's p99 at c=32 moves by several ms from one
# run to the next on this machine; the pooled p99 of 7 rounds rests on
# about 70 times as many transactions in its tail.
pooled() {
echo
echo "## p99 over all rounds' transactions, greylisting on against off"
echo
echo "| c | variant | transactions | p99 ms | rise over off ms | ≤ +0.5 ms |"
echo "|---:|---|---:|---:|---:|---|"
for k in $(echo "$keys" | tr ',' ' '); do
    off_p99=""
    for v in $VARIANTS; do
        f=$T/lat-$v-$k
        [ -s "$f" ] || continue
        set -- $(sort -n "$f" | awk '{ a[NR] = $1 } END { i = int(NR * 0.99); if (i < 1) i = 1; print NR, a[i] }')
        [ "$v" = off ] && off_p99=$2
        awk -v k="$k" -v cmax="$cmax" -v v="$v" -v n="$1" -v p="$2" -v o="$off_p99" "$SHOW_KEY"'
        BEGIN {
            if (v == "off") { printf "| %s | %s | %d | %.2f | | |\n", show(k), v, n, p; exit }
            r = p - o
            mark = v == "rcpt" ? "(reference)" : v == "off-again" ? "(control)" : r <= 0.5 ? "yes" : "**no**"
            printf "| %s | %s | %d | %.2f | %+.2f | %s |\n", show(k), v, n, p, r, mark }'
    done
done
}

# table BASE TITLE: greylisting on (and the control) against the runs of
# variant BASE.
table() {
echo
echo "## $2 (medians of $rounds round(s); ratios within each round)"
echo
awk -v keys="$keys" -v cmax="$cmax" -v base="$1" "$SHOW_KEY"'
function median(list,    n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function add(key, x) { lists[key] = lists[key] (lists[key] == "" ? "" : " ") x }
{
    delete kv
    for (i = 2; i <= NF; i++) { split($i, f, "="); kv[f[1]] = f[2] }
    k = kv["round"] SUBSEP kv["variant"] SUBSEP kv["c"]
    tx[k] = kv["tx_per_s"]; p99[k] = kv["p99_ms"]; cpu[k] = kv["milter_cpu_ms"]; rcpu[k] = kv["redis_cpu_ms"]
    rounds[kv["round"]] = 1
}
END {
    nc = split(keys, cs, ",")
    print "| c | store | " base " tx/s | on tx/s | on ÷ " base " | ≥ 0.9× | " base " p99 ms | on p99 ms | p99 rise ms | ≤ +0.5 ms | milter CPU ms/tx, " base " → on | Redis CPU ms/tx |"
    print "|---:|---|---:|---:|---:|---|---:|---:|---:|---|---|---:|"
    for (ci = 1; ci <= nc; ci++) {
        c = cs[ci]
        for (bi = 1; bi <= 4; bi++) {
            b = bi == 1 ? "memory" : bi == 2 ? "redis" : bi == 3 ? "redis-direct" : "off-again"
            delete lists
            for (rd in rounds) {
                off = rd SUBSEP base SUBSEP c; on = rd SUBSEP b SUBSEP c
                if (!(off in tx) || !(on in tx) || tx[off] + 0 <= 0) continue
                add("ratio", tx[on] / tx[off]); add("rise", p99[on] - p99[off])
                add("offtx", tx[off]); add("ontx", tx[on]); add("offp99", p99[off]); add("onp99", p99[on])
                add("offcpu", cpu[off]); add("oncpu", cpu[on]); add("redis", rcpu[on] - rcpu[off])
            }
            if (lists["ratio"] == "") continue
            ratio = median(lists["ratio"]); rise = median(lists["rise"])
            control = b == "off-again"
            printf "| %s | %s | %.0f | %.0f | %.2f× | %s | %.2f | %.2f | %+.2f | %s | %.3f → %.3f | %s |\n", show(c), \
                control ? "off-again (control)" : b, median(lists["offtx"]), median(lists["ontx"]), ratio, \
                (control ? "" : ratio >= 0.9 ? "yes" : "**no**"), median(lists["offp99"]), median(lists["onp99"]), rise, \
                (control ? "" : rise <= 0.5 ? "yes" : "**no**"), median(lists["offcpu"]), median(lists["oncpu"]), \
                (b ~ /^redis/ ? sprintf("%.3f", median(lists["redis"])) : "-")
        }
    }
}' "$T/runs"
}
# Steal over the runs: the tables are only as good as the machine was quiet.
sed -n 's/.* steal_pct=\([0-9.][0-9.]*\) .*/\1/p' "$T/runs" | sort -n | awk '
    { a[NR] = $1; if ($1 > 5) over++ }
    END {
        if (!NR) exit
        printf "# hypervisor steal per run: median %.1f %%, max %.1f %%; %d of %d runs over 5 %%\n",
            NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2, a[NR], over, NR
        if (over) print "# warning: runs with more than 5 % steal measured the host'"'"'s other guests as much as regmilter; rerun on a quieter machine"
    }'
table off "Greylisting on ÷ off"
pooled
table rcpt "Greylisting on ÷ off with RCPT TO answered (exempt_recipients: the negotiation greylisting needs)"
