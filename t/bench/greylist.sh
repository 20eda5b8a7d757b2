#!/bin/sh
# greylist.sh: issue 12's targets in make bench: regmilter's warm throughput
# and p99 with greylisting on (unregistered = greylist, 1 s delay; the memory
# store, and Redis on loopback) against greylisting off (unregistered = tag),
# over the milter protocol with t/bench/compare.sh's warm cases
# (compare/milters.sh: regmilter, regmilter-grey-memory, regmilter-grey-redis).
# The machine is shared and its load moves by tens of per cent within
# minutes, so the three run back to back in each round (in a rotating order)
# and the targets are the medians of the per-round ratios.
#
#   t/bench/greylist.sh [--rounds N] [--concurrency C[,C...]] [--seconds S] [--lines K] [--quick]
#
#   --rounds       rounds (default 5; --quick: 2)
#   --concurrency  default 8,32 (--quick: 8)
#   --seconds      per measured run (default 3; --quick: 1)
#   --lines        workload lines (default 2000; --quick: 400)
# Prints each case's "case" line, then per concurrency: medians of tx/s and
# p99 of each, the ratio on ÷ off and the p99 rise (medians of the rounds'),
# and whether the targets (≥ 0.9×, ≤ +0.5 ms) are met. A case that cannot run
# ("# skip: ..." from compare.sh, e.g. no redis-server) is left out.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
BUILD=$(cd "${BUILD:-$top/build}" && pwd) || exit 1
export BUILD

rounds=5 conc=8,32 seconds=3 lines=2000
while [ $# -gt 0 ]; do
    case $1 in
    --quick) rounds=2 conc=8 seconds=1 lines=400; shift; continue ;;
    --rounds) rounds=$2 ;;
    --concurrency) conc=$2 ;;
    --seconds) seconds=$2 ;;
    --lines) lines=$2 ;;
    *) echo "usage: greylist.sh [--rounds N] [--concurrency C[,C...]] [--seconds S] [--lines K] [--quick]" >&2; exit 2 ;;
    esac
    shift 2 || exit 2
done

work=$(mktemp -d "${TMPDIR:-/tmp}/regmilter-greybench.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
"$here/compare/gen-workload" "$work/workload" || exit 1
: > "$work/cases"

echo "# greylisting on ÷ off: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $rounds round(s) of regmilter (off), regmilter-grey-memory, regmilter-grey-redis, warm, c=$conc," \
    "$seconds s per run, $lines workload lines"
r=1
set -- regmilter regmilter-grey-memory regmilter-grey-redis
while [ $r -le "$rounds" ]; do
    for m in "$@"; do
        "$here/compare.sh" --milter "$m" --cache warm --concurrency "$conc" --runs 1 --seconds "$seconds" \
            --lines "$lines" --workload "$work/workload" > "$work/case.out" 2>&1
        rc=$?
        grep -E '^(# skip|case )' "$work/case.out" | sed "s/^/round $r: /"
        grep '^case ' "$work/case.out" | sed "s/^case /case round=$r /" >> "$work/cases"
        if [ $rc != 0 ] && [ $rc != 77 ]; then
            echo "# $m failed (exit $rc); its output:"
            sed 's/^/#   /' "$work/case.out" | tail -n 20
        fi
    done
    set -- "$2" "$3" "$1" # another order next round
    r=$((r + 1))
done

echo
echo "## Greylisting on ÷ off (medians of $rounds round(s); ratios within each round)"
awk -v conc="$conc" '
function median(list,    n, a, i, j, t) {
    n = split(list, a, " ")
    if (n == 0) return ""
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function add(key, x) { lists[key] = lists[key] (lists[key] == "" ? "" : " ") x }
{
    delete kv
    for (i = 2; i <= NF; i++) { split($i, f, "="); kv[f[1]] = f[2] }
    v[kv["round"], kv["milter"], kv["c"], "tx"] = kv["tx_per_s"]
    v[kv["round"], kv["milter"], kv["c"], "p99"] = kv["p99_ms"]
    v[kv["round"], kv["milter"], kv["c"], "cpu"] = kv["milter_cpu_ms"]
    v[kv["round"], kv["milter"], kv["c"], "redis"] = kv["redis_cpu_ms"]
    rounds[kv["round"]] = 1
}
END {
    nc = split(conc, cs, ",")
    split("memory redis", b, " ")
    print "| c | store | off tx/s | on tx/s | on ÷ off | target ≥ 0.9× | off p99 ms | on p99 ms | p99 rise ms | target ≤ +0.5 | milter CPU ms/tx off → on | Redis CPU ms/tx |"
    print "|---:|---|---:|---:|---:|---|---:|---:|---:|---|---|---:|"
    for (ci = 1; ci <= nc; ci++) {
        c = cs[ci]
        for (bi = 1; bi <= 2; bi++) {
            G = "regmilter-grey-" b[bi]
            delete lists
            for (rd in rounds) {
                if (!((rd, "regmilter", c, "tx") in v) || !((rd, G, c, "tx") in v)) continue
                off = v[rd, "regmilter", c, "tx"] + 0
                if (off <= 0) continue
                add("ratio", (v[rd, G, c, "tx"] + 0) / off)
                add("rise", v[rd, G, c, "p99"] - v[rd, "regmilter", c, "p99"])
                add("offtx", off); add("ontx", v[rd, G, c, "tx"])
                add("offp99", v[rd, "regmilter", c, "p99"]); add("onp99", v[rd, G, c, "p99"])
                add("offcpu", v[rd, "regmilter", c, "cpu"]); add("oncpu", v[rd, G, c, "cpu"])
                if (v[rd, G, c, "redis"] != "") add("redis", v[rd, G, c, "redis"])
            }
            if (lists["ratio"] == "") continue
            ratio = median(lists["ratio"]); rise = median(lists["rise"])
            printf "| %s | %s | %.0f | %.0f | %.2f× | %s | %.2f | %.2f | %+.2f | %s | %.3f → %.3f | %s |\n", c, b[bi], \
                median(lists["offtx"]), median(lists["ontx"]), ratio, (ratio >= 0.9 ? "yes" : "**no**"), \
                median(lists["offp99"]), median(lists["onp99"]), rise, (rise <= 0.5 ? "yes" : "**no**"), \
                median(lists["offcpu"]), median(lists["oncpu"]), \
                (lists["redis"] == "" ? "-" : sprintf("%.3f", median(lists["redis"])))
        }
    }
}' "$work/cases"
