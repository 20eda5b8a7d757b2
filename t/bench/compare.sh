#!/bin/sh
# compare.sh: one case of make bench's comparison: one milter, warm or cold
# caches, at one or more concurrencies, over the milter protocol, against
# NSD behind Unbound, with the generated workload (t/bench/compare/gen-workload).
#
#   t/bench/compare.sh --milter NAME --cache warm|cold [--concurrency C[,C...]]
#       [--delay-ms MS] [--count N] [--seconds S] [--runs R] [--workload DIR]
#       [--lines K] [--perf PREFIX] [--perf-stat PREFIX]
#
#   --milter       regmilter, regmilter-grey-memory, regmilter-grey-redis, null-all,
#                  null-floor, pyspf-milter or opendmarc
#                  (or regmilter-stats: regmilter with [stats] on and scraped)
#                  (t/bench/compare/milters.sh says how each is configured)
#   --cache warm   start everything, send every workload line once (not
#                  measured), then measure; the runs share the warm processes
#   --cache cold   for each run, a fresh Unbound and a fresh milter: nobody's
#                  cache survives; each transaction is a workload line not seen before
#   --concurrency  transactions in flight (default 8); a list runs each in turn
#   --delay-ms     added to every authoritative answer by t/tools/dns-delay
#                  (default: 20 cold, 0 warm)
#   --count        at most N transactions per run (default: 20000 warm, the
#                  number of workload lines cold); --seconds: at most S seconds
#                  per run (default 4 warm, 10 cold)
#   --runs         runs per concurrency (default 3); the "case" line has the medians
#   --workload     a directory made by gen-workload (default: a fresh one, 2000 domains)
#   --lines K      only the first K workload lines (a smaller warm set; default all)
#   --perf PREFIX  record every CPU with perf during each run, to PREFIX-cC.data,
#                  the milter's pid to PREFIX-cC.pid and its command name to
#                  PREFIX-cC.comm (perf report --comm: its threads come and go);
#                  $PERF_RECORD_EVENTS replaces "-e cpu-clock -F 999" (e.g. -e
#                  sched:sched_switch --filter 'prev_comm == "regmilter"')
#   --perf-stat PREFIX  count the threads the milter creates and the times its
#                  threads leave a CPU (sched_switch) during each run, to PREFIX-cC.stat
#
# Output, one line per run and one per concurrency (key=value, for matrix.sh):
#   run  milter=.. cache=.. c=.. run=R tx=.. errors=.. tx_per_s=.. p50_ms=.. p99_ms=..
#        milter_cpu_ms=.. resolver_cpu_ms=.. upstream_q=.. rss_mib=.. answers=..
#   case (the same keys, medians of the runs; answers of the last run)
# milter_cpu_ms and resolver_cpu_ms are CPU milliseconds per transaction (the
# milter's process tree, Unbound); upstream_q is NSD's queries per transaction;
# rss_mib the milter's peak RSS; redis_cpu_ms (regmilter-grey-redis) the CPU
# milliseconds of its redis-server per transaction.
#
# Everything runs in a private network and mount namespace (unshare, as root;
# a user namespace otherwise): Unbound listens on 127.0.0.1:53 there, and a
# resolv.conf naming it is bind-mounted over /etc/resolv.conf for the milters
# that use the system resolver; the host's own resolv.conf and ports are
# untouched, and every process started here ends with the namespace.
# Exit: 0, 77 when the milter or the namespace is unavailable (the reason on
# stdout as "# skip: ..."), 1 on an error, 2 on bad usage.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
BUILD=$(cd "${BUILD:-$top/build}" && pwd) || exit 1
export BUILD

usage() {
    sed -n '/^#   t\/bench\/compare.sh/,/^# Output/s/^# \{0,3\}//p' "$0" | sed '$d' >&2
    echo "compare: $1" >&2
    exit 2
}

milter="" cache="" conc=8 delay="" count="" seconds="" runs=3 workload="" lines="" perf="" perf_stat=""
while [ $# -gt 0 ]; do
    case $1 in
    --*=*) _opt=${1%%=*} _val=${1#*=}; shift; set -- "$_opt" "$_val" "$@"; continue ;;
    esac
    [ $# -ge 2 ] || usage "missing value for $1"
    case $1 in
    --milter) milter=$2 ;;
    --cache) cache=$2 ;;
    --concurrency) conc=$2 ;;
    --delay-ms) delay=$2 ;;
    --count) count=$2 ;;
    --seconds) seconds=$2 ;;
    --runs) runs=$2 ;;
    --workload) workload=$2 ;;
    --lines) lines=$2 ;;
    --perf) perf=$2 ;;
    --perf-stat) perf_stat=$2 ;;
    *) usage "unknown option $1" ;;
    esac
    shift 2
done
[ -n "$milter" ] || usage "--milter is required"
. "$here/compare/milters.sh"
case " $MILTERS $VARIANTS " in *" $milter "*) ;; *) usage "unknown milter '$milter' (known: $MILTERS $VARIANTS)" ;; esac
case $cache in warm | cold) ;; *) usage "--cache must be warm or cold" ;; esac
_number() { case $2 in '' | *[!0-9]*) usage "$1 must be a number, got '$2'" ;; esac; }
for c in $(echo "$conc" | tr ',' ' '); do
    _number --concurrency "$c"
    [ "$c" -ge 1 ] && [ "$c" -le 256 ] || usage "--concurrency must be 1..256"
done
[ "$cache" = cold ] && delay=${delay:-20} || delay=${delay:-0}
seconds=${seconds:-$([ "$cache" = cold ] && echo 10 || echo 4)}
for v in "--delay-ms $delay" "--seconds $seconds" "--runs $runs" "--count ${count:-1}" "--lines ${lines:-1}"; do
    _number $v
done
[ "$runs" -ge 1 ] && [ "$runs" -le 20 ] || usage "--runs must be 1..20"
[ "$seconds" -ge 1 ] && [ "$seconds" -le 600 ] || usage "--seconds must be 1..600"
[ -z "$workload" ] || workload=$(cd "$workload" && pwd) || usage "no workload directory $workload"
case $perf in '' | /*) ;; *) perf=$PWD/$perf ;; esac
case $perf_stat in '' | /*) ;; *) perf_stat=$PWD/$perf_stat ;; esac

# Into a private network and mount namespace (once; the inner run has BENCH_NS set).
if [ -z "${BENCH_NS:-}" ]; then
    for ns in "unshare --mount --net" "unshare --user --map-root-user --mount --net"; do
        if $ns true 2>/dev/null; then
            BENCH_NS=1 exec $ns --propagation private sh "$0" --milter "$milter" --cache "$cache" \
                --concurrency "$conc" --delay-ms "$delay" ${count:+--count "$count"} --seconds "$seconds" \
                --runs "$runs" ${workload:+--workload "$workload"} ${lines:+--lines "$lines"} \
                ${perf:+--perf "$perf"} ${perf_stat:+--perf-stat "$perf_stat"}
        fi
    done
    echo "# skip: cannot create a private network and mount namespace (unshare --mount --net failed)"
    exit 77
fi

. "$here/lib/common.sh"
. "$here/compare/servers.sh"

for tool in nsd nsd-control drill unbound ip mount; do
    command -v "$tool" >/dev/null 2>&1 || { echo "# skip: $tool not found (contrib/install-deps bench)"; exit 77; }
done
for f in t/milter-bench t/dns-delay; do
    [ -x "$BUILD/$f" ] || { echo "compare: $BUILD/$f not built (make bench builds it)" >&2; exit 1; }
done

tmpdir_new T
chmod 0755 "$T"
at_exit "milter_stop; servers_stop"
ip link set lo up || exit 1
printf 'nameserver 127.0.0.1\noptions attempts:2 timeout:2\n' > "$T/resolv.conf"
mount --bind "$T/resolv.conf" /etc/resolv.conf || {
    echo "# skip: cannot bind-mount a resolv.conf in the private mount namespace"
    exit 77
}

if [ -z "$workload" ]; then
    workload=$T/workload
    "$here/compare/gen-workload" "$workload" || exit 1
fi
WORKLOAD=$workload
all_lines=$(wc -l < "$WORKLOAD/workload")
[ -z "$lines" ] || [ "$lines" -gt "$all_lines" ] && lines=$all_lines
[ "$lines" -ge 1 ] || usage "--lines must be at least 1"
head -n "$lines" "$WORKLOAD/workload" > "$T/lines"
count=${count:-$([ "$cache" = cold ] && echo "$lines" || echo 20000)}

nsd_start "$WORKLOAD" || exit 1
upstream=$NSD_PORT
if [ "$delay" -gt 0 ]; then
    relay_start "$delay" || exit 1
    upstream=$RELAY_PORT
fi

# bench C COUNT SECONDS LABEL: milter-bench over the workload; prints its line.
bench() {
    "$BUILD/t/milter-bench" --socket "unix:$MILTER_SOCK" --pid "$MILTER_PID" --cpu "resolver=$UNBOUND_PID" \
        ${MILTER_CPU_EXTRA:+--cpu "$MILTER_CPU_EXTRA"} \
        --workload "$T/lines" --concurrency "$1" --count "$2" --max-seconds "$3" --label "$4"
}

# measure C RUN: one measured run; prints its "run" line.
measure() {
    if ! dns_path_ok "c$1-r$2-$(date +%s%N)"; then
        echo "compare: Unbound -> ${RELAY_PID:+dns-delay -> }NSD does not answer before run $2 at c=$1" \
            "(alive: unbound $(_alive "$UNBOUND_PID"), relay $(_alive "$RELAY_PID"), nsd $(_alive "$NSD_PID");" \
            "answering directly: nsd $(_answers "$NSD_PORT")${RELAY_PID:+, relay $(_answers "$RELAY_PORT")})" >&2
        return 1
    fi
    _q0=$(nsd_queries)
    _perf_pid=""
    if [ -n "$perf" ]; then
        # System-wide: perf -p loses samples of threads that come and go
        # (one per milter connection); perf report --pid picks the milter.
        echo "$MILTER_PID" > "$perf-c$1.pid"
        cat "/proc/$MILTER_PID/comm" > "$perf-c$1.comm"
        eval "exec perf record -a ${PERF_RECORD_EVENTS:--e cpu-clock -F 999} -g -o \"\$perf-c\$1.data\"" > "$T/perf.log" 2>&1 &
        _perf_pid=$!
        sleep 1
    elif [ -n "$perf_stat" ]; then
        # System-wide, filtered on the milter's command name: its threads come and go.
        _comm=$(cat "/proc/$MILTER_PID/comm")
        perf stat -a -e sched:sched_process_fork --filter "parent_comm == \"$_comm\"" \
            -e sched:sched_switch --filter "prev_comm == \"$_comm\"" \
            -o "$perf_stat-c$1.stat" > "$T/perf.log" 2>&1 &
        _perf_pid=$!
        sleep 1
    fi
    _out=$(bench "$1" "$count" "$seconds" measured)
    if [ -n "$_perf_pid" ]; then
        kill -INT "$_perf_pid" 2>/dev/null
        wait "$_perf_pid"
        tail -n 2 "$T/perf.log" | sed 's/^/# perf: /'
        [ -z "$perf_stat" ] || echo "transactions $(echo "$_out" | sed -n 's/.* transactions=\([0-9]*\) .*/\1/p')" >> "$perf_stat-c$1.stat"
    fi
    _q1=$(nsd_queries)
    echo "$_out" | awk -v m="$milter" -v cache="$cache" -v c="$1" -v run="$2" -v q="$((_q1 - _q0))" '
        /^measured: / {
            for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            tx = v["transactions"] + 0
            printf "run milter=%s cache=%s c=%s run=%s tx=%d errors=%s tx_per_s=%s p50_ms=%s p99_ms=%s", \
                m, cache, c, run, tx, v["errors"], v["tx_per_s"], v["p50_ms"], v["p99_ms"]
            printf " milter_cpu_ms=%s resolver_cpu_ms=%s upstream_q=%.2f rss_mib=%.1f answers=%s", \
                v["milter_cpu_ms_per_tx"], v["resolver_cpu_ms_per_tx"], tx ? q / tx : 0, \
                v["hwm_kib"] / 1024, v["answers"]
            if ("redis_cpu_ms_per_tx" in v) printf " redis_cpu_ms=%s", v["redis_cpu_ms_per_tx"]
            printf "\n"
            found = 1
        }
        END { if (!found) exit 1 }' || { echo "compare: milter-bench said: $_out" >&2; return 1; }
}

_answers() {
    if timeout 3 drill -p "$1" @127.0.0.1 "direct-$(date +%s%N).probe.bench" A 2>/dev/null | grep -q 'rcode: NXDOMAIN'; then
        echo yes
    else
        echo no
    fi
}

_alive() {
    if [ -z "$1" ]; then echo none; elif kill -0 "$1" 2>/dev/null; then echo yes; else echo no; fi
}

# medians: the "case" line from the "run" lines on stdin.
medians() {
    awk '
        { for (i = 2; i <= NF; i++) { split($i, kv, "="); k = kv[1]; val[k, NR] = kv[2]; if (NR == 1) keys[++nk] = k } }
        END {
            line = "case"
            for (j = 1; j <= nk; j++) {
                k = keys[j]
                if (k == "milter" || k == "cache" || k == "c" || k == "answers") { line = line " " k "=" val[k, NR]; continue }
                if (k == "run") { line = line " runs=" NR; continue }
                n = 0
                for (r = 1; r <= NR; r++) a[++n] = val[k, r] + 0
                for (x = 2; x <= n; x++) for (y = x; y > 1 && a[y - 1] > a[y]; y--) { t = a[y]; a[y] = a[y - 1]; a[y - 1] = t }
                m = n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
                line = line " " k "=" m
            }
            print line
        }'
}

start_milter_or_skip() {
    milter_start "$milter"
    _rc=$?
    [ $_rc = 0 ] && return 0
    echo "# skip: $MILTER_SKIP"
    exit $_rc
}

echo "# $milter, $cache, concurrency $conc, ${delay} ms per authoritative answer, $runs run(s) of at most" \
    "$count transactions and $seconds s, $lines workload lines"
if [ "$cache" = warm ]; then
    unbound_start "$upstream" || exit 1
    start_milter_or_skip
    # Every line the runs will send, once, so that each cache holds its answers.
    warm=$count
    [ "$warm" -gt "$lines" ] && warm=$lines
    bench 8 "$warm" 300 warm-up | sed 's/^/# /'
fi
for c in $(echo "$conc" | tr ',' ' '); do
    r=1
    : > "$T/runs"
    while [ $r -le "$runs" ]; do
        if [ "$cache" = cold ]; then
            unbound_start "$upstream" || exit 1
            start_milter_or_skip
        fi
        measure "$c" "$r" > "$T/run" || exit 1
        cat "$T/run"
        cat "$T/run" >> "$T/runs"
        if [ "$cache" = cold ]; then
            milter_stop
            unbound_stop
        fi
        r=$((r + 1))
    done
    grep '^run ' "$T/runs" | medians
done
