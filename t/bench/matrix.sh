#!/bin/sh
# matrix.sh: make bench's comparison: every milter, warm and cold, at
# concurrency 1, 8 and 32, each case run by t/bench/compare.sh against one
# generated workload, then one table per (cache, concurrency) with the ratios
# of regmilter to each peer, and issue 10's targets as same-run ratios.
#
#   t/bench/matrix.sh [--quick] [--milters "NAME ..."] [--micro FILE] [--out FILE]
#
#   --quick    one run per case, 1 s warm and 3 s cold runs, a 400-line warm set
#              (under 2 minutes); default: medians of 3 runs, 4 s warm, 10 s cold
#   --milters  a subset of: regmilter regmilter-grey-memory regmilter-grey-redis
#              null-all null-floor pyspf-milter opendmarc
#   --micro    the micro-benchmarks' output (t/run-bench), for the bulk-table target
#   --out      also keep every "case" line there (default $BUILD/bench/cases.txt)
#
# The machine is shared: absolute numbers move with the load; compare the
# ratios, which are measured in the same run. The do-nothing filters have no
# DNS, so they are measured warm only; so is regmilter with greylisting
# (regmilter-grey-memory, -redis: unregistered = greylist, a 1 s delay, the
# memory store or a Redis on loopback), compared with regmilter right before
# it (issue 12's targets). A milter that cannot start is reported
# ("# skip: ...") and the others go on.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
BUILD=$(cd "${BUILD:-$top/build}" && pwd) || exit 1
export BUILD
. "$here/compare/milters.sh"

# Greylisting on and off is t/bench/greylist.sh's (rounds back to back); here on request only.
quick=0 milters=$(echo "$MILTERS" | tr ' ' '\n' | grep -v '^regmilter-grey-' | tr '\n' ' ') micro="" out=$BUILD/bench/cases.txt
while [ $# -gt 0 ]; do
    case $1 in
    --quick) quick=1; shift; continue ;;
    --milters) milters=$2 ;;
    --micro) micro=$2 ;;
    --out) out=$2 ;;
    *) echo "usage: matrix.sh [--quick] [--milters \"NAME ...\"] [--micro FILE] [--out FILE]" >&2; exit 2 ;;
    esac
    shift 2 || exit 2
done

if [ $quick = 1 ]; then
    runs=1 warm_s=1 cold_s=3 warm_lines=400
else
    runs=3 warm_s=4 cold_s=10 warm_lines=""
fi
delay=20
conc=1,8,32

work=$(mktemp -d "${TMPDIR:-/tmp}/regmilter-bench.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
"$here/compare/gen-workload" "$work/workload" || exit 1
mkdir -p "$(dirname "$out")"
: > "$out"

echo "# comparison: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# workload: $(wc -l < "$work/workload/workload") transactions over 2000 sender domains; $runs run(s) per case;" \
    "cold = $delay ms per authoritative answer"
for cache in warm cold; do
    for m in $milters; do
        case $cache:$m in cold:null-* | cold:regmilter-grey-*) continue ;; esac
        if [ "$cache" = warm ]; then
            set -- --seconds "$warm_s" ${warm_lines:+--lines "$warm_lines"}
        else
            set -- --seconds "$cold_s" --delay-ms "$delay"
        fi
        start=$(date +%s)
        "$here/compare.sh" --milter "$m" --cache "$cache" --concurrency "$conc" --runs "$runs" \
            --workload "$work/workload" "$@" > "$work/case.out" 2>&1
        rc=$?
        echo "== $m, $cache ($(($(date +%s) - start)) s)"
        grep -E '^(# skip|case )' "$work/case.out"
        grep '^case ' "$work/case.out" >> "$out"
        if [ $rc != 0 ] && [ $rc != 77 ]; then
            echo "# $m ($cache) failed (exit $rc); its output:"
            sed 's/^/#   /' "$work/case.out" | tail -n 20
        fi
    done
done

echo
echo "## Results (medians of $runs run(s); ratios are regmilter ÷ peer, same run)"
awk -v order="$milters" -v micro="${micro:-/dev/null}" '
function num(x) { return x + 0 }
function fmt(x, d) { return sprintf("%." d "f", x) }
function ratio(a, b) { return num(b) == 0 ? "-" : sprintf("%.2f×", num(a) / num(b)) }
function have(m, cache, c) { return ((m, cache, c, "tx_per_s") in v) }
function get(m, cache, c, k) { return v[m, cache, c, k] }
# Table of one (cache, concurrency).
function table(cache, c,    i, m, p) {
    if (!any[cache, c]) return
    printf "\n### %s, concurrency %s\n\n", cache, c
    print "| milter | tx/s | p50 ms | p99 ms | milter CPU ms/tx | resolver CPU ms/tx | upstream queries/tx | peak RSS MiB | answers |"
    print "|---|---:|---:|---:|---:|---:|---:|---:|---|"
    for (i = 1; i <= n; i++) {
        m = names[i]
        if (!have(m, cache, c)) continue
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", m, fmt(get(m, cache, c, "tx_per_s"), 0), \
            fmt(get(m, cache, c, "p50_ms"), 2), fmt(get(m, cache, c, "p99_ms"), 2), \
            fmt(get(m, cache, c, "milter_cpu_ms"), 3), fmt(get(m, cache, c, "resolver_cpu_ms"), 3), \
            fmt(get(m, cache, c, "upstream_q"), 2), fmt(get(m, cache, c, "rss_mib"), 1), get(m, cache, c, "answers")
    }
    if (!have("regmilter", cache, c)) return
    printf "\n| regmilter ÷ | tx/s | p50 | p99 | milter CPU | resolver CPU | upstream queries | peak RSS |\n"
    print "|---|---:|---:|---:|---:|---:|---:|---:|"
    for (i = 1; i <= n; i++) {
        p = names[i]
        if (p == "regmilter" || !have(p, cache, c)) continue
        printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", p, \
            ratio(get("regmilter", cache, c, "tx_per_s"), get(p, cache, c, "tx_per_s")), \
            ratio(get("regmilter", cache, c, "p50_ms"), get(p, cache, c, "p50_ms")), \
            ratio(get("regmilter", cache, c, "p99_ms"), get(p, cache, c, "p99_ms")), \
            ratio(get("regmilter", cache, c, "milter_cpu_ms"), get(p, cache, c, "milter_cpu_ms")), \
            ratio(get("regmilter", cache, c, "resolver_cpu_ms"), get(p, cache, c, "resolver_cpu_ms")), \
            ratio(get("regmilter", cache, c, "upstream_q"), get(p, cache, c, "upstream_q")), \
            ratio(get("regmilter", cache, c, "rss_mib"), get(p, cache, c, "rss_mib"))
    }
}
# One target: "what | now | target | met?".
function target(what, now, goal, ok) {
    printf "| %s | %s | %s | %s |\n", what, now, goal, ok == "" ? "n/a" : (ok ? "yes" : "**no**")
}
function rel(m, cache, c, k, p) { return have(m, cache, c) && have(p, cache, c) && num(get(p, cache, c, k)) > 0 }
function r(m, cache, c, k, p) { return num(get(m, cache, c, k)) / num(get(p, cache, c, k)) }
BEGIN { n = split(order, names, " ") }
/^case / {
    delete kv
    for (i = 2; i <= NF; i++) { split($i, f, "="); kv[f[1]] = f[2] }
    for (k in kv) v[kv["milter"], kv["cache"], kv["c"], k] = kv[k]
    any[kv["cache"], kv["c"]] = 1
}
END {
    split("1 8 32", cs, " ")
    for (ci = 1; ci <= 3; ci++) table("warm", cs[ci])
    for (ci = 1; ci <= 3; ci++) table("cold", cs[ci])
    print "\n### Issue 10 targets (same-run ratios)\n"
    print "| target | now | goal | met |"
    print "|---|---:|---:|---|"
    R = "regmilter"
    for (ci = 2; ci <= 3; ci++) {
        c = cs[ci]
        if (rel(R, "warm", c, "tx_per_s", "opendmarc"))
            target("warm c=" c ": tx/s ÷ OpenDMARC", sprintf("%.2f×", r(R, "warm", c, "tx_per_s", "opendmarc")), "≥ 2.5×", r(R, "warm", c, "tx_per_s", "opendmarc") >= 2.5)
        if (rel(R, "warm", c, "tx_per_s", "null-floor"))
            target("warm c=" c ": tx/s ÷ MAIL+EOM do-nothing filter", sprintf("%.2f×", r(R, "warm", c, "tx_per_s", "null-floor")), "≥ 0.6×", r(R, "warm", c, "tx_per_s", "null-floor") >= 0.6)
        if (have(R, "warm", c))
            target("warm c=" c ": milter CPU ms/tx", fmt(get(R, "warm", c, "milter_cpu_ms"), 3), "≤ 0.12", num(get(R, "warm", c, "milter_cpu_ms")) <= 0.12)
        if (rel(R, "warm", c, "p99_ms", "null-floor"))
            target("warm c=" c ": p99 ÷ MAIL+EOM do-nothing filter", sprintf("%.2f×", r(R, "warm", c, "p99_ms", "null-floor")), "≤ 1.5×", r(R, "warm", c, "p99_ms", "null-floor") <= 1.5)
    }
    if (have(R, "warm", 8) && have(R, "warm", 32))
        target("warm: tx/s at c=32 ÷ at c=8", sprintf("%.2f×", num(get(R, "warm", 32, "tx_per_s")) / num(get(R, "warm", 8, "tx_per_s"))), "≥ 1×", num(get(R, "warm", 32, "tx_per_s")) >= num(get(R, "warm", 8, "tx_per_s")))
    if (rel(R, "cold", 1, "p50_ms", "pyspf-milter"))
        target("cold c=1: p50 ÷ pyspf-milter", sprintf("%.2f×", r(R, "cold", 1, "p50_ms", "pyspf-milter")), "≤ 1×", r(R, "cold", 1, "p50_ms", "pyspf-milter") <= 1)
    if (rel(R, "cold", 1, "p50_ms", "opendmarc"))
        target("cold c=1: p50 ÷ OpenDMARC", sprintf("%.2f×", r(R, "cold", 1, "p50_ms", "opendmarc")), "≤ 0.5×", r(R, "cold", 1, "p50_ms", "opendmarc") <= 0.5)
    if (rel(R, "cold", 8, "tx_per_s", "pyspf-milter"))
        target("cold c=8: tx/s ÷ pyspf-milter", sprintf("%.2f×", r(R, "cold", 8, "tx_per_s", "pyspf-milter")), "≥ 1×", r(R, "cold", 8, "tx_per_s", "pyspf-milter") >= 1)
    for (ci = 1; ci <= 2; ci++) {
        c = cs[ci]
        if (have(R, "cold", c) && have("pyspf-milter", "cold", c))
            target("cold c=" c ": upstream queries/tx, vs pyspf-milter + 1 (the registry)", fmt(get(R, "cold", c, "upstream_q"), 2) " vs " fmt(num(get("pyspf-milter", "cold", c, "upstream_q")) + 1, 2), "≤", num(get(R, "cold", c, "upstream_q")) <= num(get("pyspf-milter", "cold", c, "upstream_q")) + 1)
    }
    print "\n### Issue 12 targets: greylisting on ÷ off, warm (same-run ratios)\n"
    print "| target | now | goal | met |"
    print "|---|---:|---:|---|"
    split("memory redis", backends, " ")
    for (bi = 1; bi <= 2; bi++) {
        G = "regmilter-grey-" backends[bi]
        for (ci = 1; ci <= 3; ci++) {
            c = cs[ci]
            if (!rel(G, "warm", c, "tx_per_s", R)) continue
            target("warm c=" c ", " backends[bi] ": tx/s ÷ greylisting off", sprintf("%.2f×", r(G, "warm", c, "tx_per_s", R)), "≥ 0.9×", r(G, "warm", c, "tx_per_s", R) >= 0.9)
            rise = num(get(G, "warm", c, "p99_ms")) - num(get(R, "warm", c, "p99_ms"))
            target("warm c=" c ", " backends[bi] ": p99 rise, ms", sprintf("%+.2f", rise), "≤ 0.5", rise <= 0.5)
        }
    }
    while ((getline line < micro) > 0) {
        if (line ~ /^bulk_table: entries=/) {
            split(line, w, " ")
            for (i = 2; i <= length(w); i++) { split(w[i], f, "="); b[f[1]] = f[2] }
            target("bulk table, " b["entries"] " entries: load seconds", b["load_s"], "< 2", num(b["load_s"]) < 2)
            target("bulk table: its RSS, MiB", b["table_rss_mib"], "≤ 64 MB (61.0 MiB)", num(b["table_rss_mib"]) <= 64e6 / 1048576)
        }
    }
}' "$out"
