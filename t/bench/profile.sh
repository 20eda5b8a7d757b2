#!/bin/sh
# profile.sh: where a milter spends its CPU under warm load (t/bench/compare.sh
# with perf), at each concurrency in turn:
#   - the top frames by self time, as a share of the milter's own samples;
#   - self time by object (kernel, the milter, libc, libmilter, ...);
#   - the kernel functions with the most inclusive time (kernel stacks are
#     reliable; user-space stacks are not: the build has no frame pointers);
#   - from a second run, threads created and context switches per transaction.
#
#   t/bench/profile.sh [--milter NAME] [--concurrency 8,32] [--seconds S] [--top N] [--out DIR]
#
# perf records every CPU with the cpu-clock software event (this machine has
# no hardware counters for perf: `perf stat -e instructions true` says "not
# supported"), 999 Hz, and keeps PREFIX-cC.data in --out (default
# $BUILD/bench/profile) for `perf report -i FILE --comm $(cat PREFIX-cC.comm)`.
# Where perf cannot record at all, run the milter under
# `valgrind --tool=callgrind` by hand instead (much slower; self costs only).
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
BUILD=$(cd "${BUILD:-$top/build}" && pwd) || exit 1
export BUILD

milter=regmilter conc=8,32 seconds=5 topn=25 out=$BUILD/bench/profile
while [ $# -gt 0 ]; do
    case $1 in
    --milter) milter=$2 ;;
    --concurrency) conc=$2 ;;
    --seconds) seconds=$2 ;;
    --top) topn=$2 ;;
    --out) out=$2 ;;
    *) echo "usage: profile.sh [--milter NAME] [--concurrency 8,32] [--seconds S] [--top N] [--out DIR]" >&2; exit 2 ;;
    esac
    shift 2 || exit 2
done
command -v perf >/dev/null 2>&1 || { echo "# skip: perf not found (contrib/install-deps bench)"; exit 77; }
if ! perf record -e cpu-clock -o /dev/null true >/dev/null 2>&1; then
    echo "# skip: perf cannot record here (perf_event_paranoid=$(cat /proc/sys/kernel/perf_event_paranoid));" \
        "use valgrind --tool=callgrind on the milter instead"
    exit 77
fi
mkdir -p "$out"
prefix=$out/$milter

"$here/compare.sh" --milter "$milter" --cache warm --concurrency "$conc" --runs 1 --seconds "$seconds" \
    --perf "$prefix" | grep -E '^(run|# skip|# perf)' || exit 1
"$here/compare.sh" --milter "$milter" --cache warm --concurrency "$conc" --runs 1 --seconds "$seconds" \
    --perf-stat "$prefix" | grep -E '^(run|# skip)' || exit 1

for c in $(echo "$conc" | tr ',' ' '); do
    data=$prefix-c$c.data
    comm=$(cat "$prefix-c$c.comm")
    # Shares of the milter's own samples (--comm: its threads, whatever their lifetime).
    report() { perf report -i "$data" --comm "$comm" --percentage relative --stdio -g none "$@" 2>/dev/null; }
    report --no-children --sort dso,sym | grep -v '^#' | grep -v '^ *$' > "$prefix-c$c.self"
    echo
    echo "== $milter, warm, concurrency $c: top $topn frames by self time (% of the milter's samples)"
    head -n "$topn" "$prefix-c$c.self" | cut -c1-150 | sed 's/ *$//'
    echo "-- self time by object"
    awk '{ sub(/%/, "", $1); s[$2] += $1 } END { for (d in s) printf "  %6.2f%%  %s\n", s[d], d }' \
        "$prefix-c$c.self" | sort -rn | head -n 8
    echo "-- kernel functions, inclusive (children): where the kernel time goes"
    report --children --sort sym | grep '\[k\]' | head -n 15 | awk '{ printf "  %-8s %s\n", $1, $NF }'
    echo "-- per transaction (second run, perf stat filtered on the command name $comm)"
    awk '/sched_process_fork/ { f = $1 } /sched_switch/ { s = $1 } /^transactions/ { t = $2 }
        END { gsub(/,/, "", f); gsub(/,/, "", s)
              if (t) printf "  threads created/tx %.2f   context switches/tx %.1f   (%d transactions)\n", f / t, s / t, t }' \
        "$prefix-c$c.stat"
done
