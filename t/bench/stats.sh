#!/bin/sh
# stats.sh: what statistics cost. regmilter warm, without [stats]
# ("regmilter") and with [stats] listen set and scraped once a second
# ("regmilter-stats"), one t/bench/compare.sh run each, in alternating order
# (off, on, then on, off, ...) over one workload, for ROUNDS rounds; then per
# concurrency the medians of each side and the ratio on ÷ off of throughput
# and of milter CPU per transaction, with the spread of the per-round ratios
# (how much two runs minutes apart differ here).
#
#   t/bench/stats.sh [--quick] [--rounds R] [--seconds S] [--concurrency C[,C...]]
#
#   --quick        2 rounds of 1 s runs at concurrency 8 (about a minute)
#   --rounds       rounds (default 3)          --seconds  per run (default 4)
#   --concurrency  default 8,32
#
# Output: one "stats-run" line per run, one "stats" line per concurrency:
#   stats c=8 rounds=5 off_tx_per_s=.. on_tx_per_s=.. tx_ratio=.. tx_ratio_min=.. tx_ratio_max=..
#         off_cpu_ms=.. on_cpu_ms=.. cpu_ratio=.. cpu_ratio_min=.. cpu_ratio_max=..
# tx_ratio is on ÷ off of the medians; _min/_max are the extremes of the
# per-round ratios. Needs what compare.sh needs (root, the bench packages).
# Exit: 0, 77 when compare.sh cannot run here, 1 on an error, 2 on bad usage.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
BUILD=$(cd "${BUILD:-$top/build}" && pwd) || exit 1
export BUILD

rounds=3 seconds=4 conc=8,32
while [ $# -gt 0 ]; do
    case $1 in
    --quick) rounds=2 seconds=1 conc=8; shift; continue ;;
    --rounds) rounds=$2 ;;
    --seconds) seconds=$2 ;;
    --concurrency) conc=$2 ;;
    *) echo "usage: stats.sh [--quick] [--rounds R] [--seconds S] [--concurrency C[,C...]]" >&2; exit 2 ;;
    esac
    [ $# -ge 2 ] || { echo "stats.sh: missing value for $1" >&2; exit 2; }
    shift 2
done
for v in "$rounds" "$seconds"; do
    case $v in '' | *[!0-9]*) echo "stats.sh: not a number: '$v'" >&2; exit 2 ;; esac
done
[ "$rounds" -ge 1 ] && [ "$rounds" -le 50 ] || { echo "stats.sh: --rounds must be 1..50" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/regmilter-bench-stats.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
"$here/compare/gen-workload" "$work/workload" || exit 1
SCRAPE_LOG=$work/scrapes.log
export SCRAPE_LOG
: > "$SCRAPE_LOG"

echo "# statistics cost: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $rounds round(s), warm, $seconds s per run, concurrency $conc; regmilter-stats is scraped once a second"
r=1
while [ "$r" -le "$rounds" ]; do
    order="regmilter regmilter-stats"
    [ $((r % 2)) = 0 ] && order="regmilter-stats regmilter"
    for m in $order; do
        "$here/compare.sh" --milter "$m" --cache warm --concurrency "$conc" --runs 1 --seconds "$seconds" \
            --workload "$work/workload" > "$work/out" 2>&1
        rc=$?
        if [ $rc = 77 ]; then
            grep '^# skip' "$work/out"
            exit 77
        fi
        if [ $rc != 0 ]; then
            echo "# $m failed (exit $rc); its output:"
            sed 's/^/#   /' "$work/out" | tail -n 20
            exit 1
        fi
        side=off
        [ "$m" = regmilter-stats ] && side=on
        grep '^run ' "$work/out" | sed "s/^run /stats-run round=$r side=$side /" | tee -a "$work/runs"
    done
    r=$((r + 1))
done
sed 's/^/# /' "$SCRAPE_LOG"

# Per concurrency: medians per side, the ratio of the medians, and the
# extremes of the per-round ratios.
for c in $(echo "$conc" | tr ',' ' '); do
    awk -v c="$c" '
        function med(a, n,    i, j, t) {
            for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        {
            for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            if (v["c"] != c) next
            tx[v["side"], v["round"]] = v["tx_per_s"]; cpu[v["side"], v["round"]] = v["milter_cpu_ms"]
            if (v["round"] > n) n = v["round"]
        }
        END {
            for (r = 1; r <= n; r++) {
                offt[r] = tx["off", r]; ont[r] = tx["on", r]; offc[r] = cpu["off", r]; onc[r] = cpu["on", r]
                rt[r] = offt[r] > 0 ? ont[r] / offt[r] : 0; rc[r] = offc[r] > 0 ? onc[r] / offc[r] : 0
            }
            mo = med(offt, n); mn = med(ont, n); co = med(offc, n); cn = med(onc, n)
            tmin = tmax = rt[1]; cmin = cmax = rc[1]
            for (r = 2; r <= n; r++) {
                if (rt[r] < tmin) tmin = rt[r]; if (rt[r] > tmax) tmax = rt[r]
                if (rc[r] < cmin) cmin = rc[r]; if (rc[r] > cmax) cmax = rc[r]
            }
            printf "stats c=%s rounds=%d off_tx_per_s=%.0f on_tx_per_s=%.0f tx_ratio=%.3f tx_ratio_min=%.3f tx_ratio_max=%.3f",
                c, n, mo, mn, (mo > 0 ? mn / mo : 0), tmin, tmax
            printf " off_cpu_ms=%.3f on_cpu_ms=%.3f cpu_ratio=%.3f cpu_ratio_min=%.3f cpu_ratio_max=%.3f\n",
                co, cn, (co > 0 ? cn / co : 0), cmin, cmax
        }' "$work/runs"
done
