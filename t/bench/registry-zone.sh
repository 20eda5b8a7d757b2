#!/bin/sh
# bench: regmilter-zone at registry scale. Prints numbers, never fails on them.
#  1. 1,000,000 generated registrations built with --no-dns (default dashed
#     form; then both forms with the rbldnsd dataset): wall time, CPU, peak RSS.
#  2. NSD loads the both-forms zone and rbldnsd the dataset: time until the
#     first answer, and memory.
#  3. DNS checks per second: 20,000 entries checked against NSD on loopback
#     (PTR + A each) with 1, 10 and 100 entries at a time (--jobs).
#  4. regmilter-zone optout on a 1,000,000-entry bulk table.
#  5. NSD and rbldnsd load the opt-out zone; the milter's RCPT lookups
#     (bulk::lookup_zones through a shared cache, build/t/optout-load) at 100
#     concurrent against each, cold and warm.
# Bounded: each server gets 300 s to load; each check run a 120 s budget.
# Run alone: make build/regmilter-zone build/t/optout-load && BUILD=$PWD/build sh t/bench/registry-zone.sh
# (REGISTRY_BENCH_N, REGISTRY_BENCH_CHECKS, REGISTRY_BENCH_LOOKUPS make it smaller)
. "$(dirname "$0")/../integration/lib/dns-server.sh"

need_build regmilter-zone
need_cmd drill awk
ZONE="$BUILD/regmilter-zone"
N=${REGISTRY_BENCH_N:-1000000}
CHECKS=${REGISTRY_BENCH_CHECKS:-20000}
tmpdir_new W
chmod 0755 "$W"
TIME=""
[ -x /usr/bin/time ] && TIME=/usr/bin/time
echo "# $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start"

# run LABEL CMD...: wall time, and with /usr/bin/time CPU and peak RSS
run() {
    _label=$1
    shift
    _t0=$(now_ms)
    if [ -n "$TIME" ]; then
        $TIME -f "%U %S %M" -o "$W/time" "$@" > "$W/run.out" 2> "$W/run.err"
    else
        "$@" > "$W/run.out" 2> "$W/run.err"
    fi
    _rc=$?
    _ms=$(($(now_ms) - _t0))
    if [ -n "$TIME" ]; then
        set -- $(tail -n 1 "$W/time")
        echo "$_label: $_ms ms wall, $1 s user, $2 s system, peak RSS $(($3 / 1024)) MiB (exit $_rc)"
    else
        echo "$_label: $_ms ms wall (exit $_rc; /usr/bin/time not installed: no CPU or RSS)"
    fi
    RUN_MS=$_ms
}

# --- 1. build ---
_t0=$(now_ms)
awk -v n="$N" 'BEGIN { for (i = 1; i <= n; i++)
    printf "10.%d.%d.%d mx.s%d.example contact=H%d email=noc@s%d.example since=2024-01-01%s\n",
        int(i / 65536), int(i / 256) % 256, i % 256, i, i, i, (i % 10 == 0 ? " class=bulk" : "") }' > "$W/regs"
echo "generate $N registrations: $(($(now_ms) - _t0)) ms, $(($(wc -c < "$W/regs") / 1048576)) MiB"
run "build $N, --no-dns, dashed zone file" "$ZONE" registry --zone reg.bench --no-dns --allow-special \
    -o "$W/dashed.zone" "$W/regs"
[ "$RUN_MS" -lt 30000 ] && echo "  (under 30 s)" || echo "  (NOT under 30 s)"
run "build $N, --no-dns, both forms, zone file and rbldnsd dataset" "$ZONE" registry --zone reg.bench --no-dns \
    --allow-special --format both -o "$W/both.zone" --rbldnsd "$W/both.rbl" "$W/regs"
echo "  zone file $(($(wc -c < "$W/both.zone") / 1048576)) MiB, rbldnsd dataset $(($(wc -c < "$W/both.rbl") / 1048576)) MiB"
rm -f "$W/regs"

# mem_tree PID: memory of PID and its descendants in MiB, as "PSS P MiB (RSS sum R MiB)":
# PSS shares each page among the processes that map it (NSD's forked servers
# share the zone), so its sum is the memory really used; the RSS sum counts
# shared pages once per process.
mem_tree() {
    _pss=0
    _rss=0
    for _p in $1 $(pgrep -P "$1") $(for _c in $(pgrep -P "$1"); do pgrep -P "$_c"; done); do
        _kb=$(awk '/^Pss:/ { print $2 }' "/proc/$_p/smaps_rollup" 2> /dev/null)
        _pss=$((_pss + ${_kb:-0}))
        _kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$_p/status" 2> /dev/null)
        _rss=$((_rss + ${_kb:-0}))
    done
    echo "PSS $((_pss / 1024)) MiB (RSS sum $((_rss / 1024)) MiB)"
}
# wait_answer PORT NAME WANT PID: ms until NAME's A is WANT (at most 300 s), or "failed"
wait_answer() {
    _t0=$(now_ms)
    while [ $(($(now_ms) - _t0)) -lt 300000 ]; do
        if timeout 5 drill -p "$1" @127.0.0.1 A "$2" 2> /dev/null | grep -q "	$3\$"; then
            echo $(($(now_ms) - _t0))
            return 0
        fi
        kill -0 "$4" 2> /dev/null || break
        sleep 0.2
    done
    echo failed
}

# nsd_load LABEL ZONE FILE NAME WANT: NSD with one zone; prints the time to
# the first answer (NAME's A = WANT) and the memory; NSD stays up
# (LOAD_PID, LOAD_PORT) until load_stop. NSD_EXTRA: more server: lines.
nsd_load() {
    LOAD_PORT=$(free_port)
    cat > "$W/nsd.conf" <<CONF
server:
  ip-address: 127.0.0.1@$LOAD_PORT
  port: $LOAD_PORT
  do-ip6: no
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "$W"
  database: ""
  pidfile: "$W/nsd.pid"
  xfrdfile: "$W/xfrd.state"
  zonelistfile: "$W/zone.list"
  logfile: "$W/nsd.log"
${NSD_EXTRA:-}
remote-control:
  control-enable: no
zone:
  name: $2
  zonefile: "$3"
CONF
    /usr/sbin/nsd -d -c "$W/nsd.conf" > "$W/nsd.out" 2>&1 &
    LOAD_PID=$!
    at_exit "kill $LOAD_PID; wait $LOAD_PID"
    _ms=$(wait_answer "$LOAD_PORT" "$4" "$5" "$LOAD_PID")
    echo "nsd load of $1: $_ms ms to the first answer, memory $(mem_tree "$LOAD_PID"), all nsd processes"
}
# rbldnsd_load LABEL ZONE:TYPE:FILE NAME WANT: the same with rbldnsd
rbldnsd_load() {
    RBL_USER=nobody
    id rbldns > /dev/null 2>&1 && RBL_USER=rbldns
    LOAD_PORT=$(free_port)
    /usr/sbin/rbldnsd -n -u "$RBL_USER" -b "127.0.0.1/$LOAD_PORT" "$2" > "$W/rbl.log" 2>&1 &
    LOAD_PID=$!
    at_exit "kill $LOAD_PID; wait $LOAD_PID"
    _ms=$(wait_answer "$LOAD_PORT" "$3" "$4" "$LOAD_PID")
    echo "rbldnsd load of $1: $_ms ms to the first answer, memory $(mem_tree "$LOAD_PID")"
}
load_stop() {
    kill "$LOAD_PID"
    wait "$LOAD_PID" 2> /dev/null
}

# --- 2. NSD and rbldnsd load it ---
nsd_load "the both-forms zone ($N servers, $((2 * N + 4)) names)" reg.bench "$W/both.zone" 10-0-0-5.reg.bench 127.0.0.2
load_stop
if [ -x /usr/sbin/rbldnsd ]; then
    rbldnsd_load "the dataset (both forms, $N servers)" reg.bench:combined:"$W/both.rbl" 5.0.0.10.reg.bench 127.0.0.2
    load_stop
else
    echo "# rbldnsd not installed: not measured"
fi
rm -f "$W/both.zone" "$W/both.rbl" "$W/dashed.zone"

# --- 3. DNS checks per second ---
awk -v n="$CHECKS" -v dir="$W" 'BEGIN {
    fwd = dir "/bench.test.zone"; rev = dir "/10.in-addr.arpa.zone"; regs = dir "/checks"
    print "$ORIGIN bench.test.\n$TTL 300\n@ SOA ns.bench.test. h.bench.test. 1 3600 900 604800 300\n@ NS ns.bench.test.\nns A 127.0.0.1" > fwd
    print "$ORIGIN 10.in-addr.arpa.\n$TTL 300\n@ SOA ns.bench.test. h.bench.test. 1 3600 900 604800 300\n@ NS ns.bench.test." > rev
    for (i = 1; i <= n; i++) {
        a = int(i / 250) % 256; b = i % 250 + 1
        printf "h%d A 10.1.%d.%d\n", i, a, b > fwd
        printf "%d.%d.1 PTR h%d.bench.test.\n", b, a, i > rev
        printf "10.1.%d.%d h%d.bench.test contact=H%d email=noc@bench.test since=2024-01-01\n", a, b, i, i > regs
    } }'
dns_server_start bench.test="$W/bench.test.zone" 10.in-addr.arpa="$W/10.in-addr.arpa.zone"
for jobs in 1 10 100; do
    run "check $CHECKS entries, --jobs $jobs" "$ZONE" registry --zone reg.bench --allow-special \
        --nameserver "$DNS_SERVER" --jobs "$jobs" --budget 120 -o "$W/checks.zone" "$W/checks"
    failed=$(grep -c '^.*checks:[0-9]*:' "$W/run.err")
    echo "  $((CHECKS * 1000 / (RUN_MS > 0 ? RUN_MS : 1))) entries/s, $((2 * CHECKS * 1000 / (RUN_MS > 0 ? RUN_MS : 1))) lookups/s ($failed entries failed)"
done
dns_server_stop

# --- 4. opt-out zone from a large table ---
awk -v n="$N" 'BEGIN { for (i = 1; i <= n; i++) printf "user%d@d%d.example %s\n", i, i % 1000, (i % 3 ? "reject" : "accept") }' \
    > "$W/table"
run "optout: $N table entries to zone file and rbldnsd dataset" "$ZONE" optout --zone optout.bench \
    -o "$W/optout.zone" --rbldnsd "$W/optout.rbl" "$W/table"
echo "  zone file $(($(wc -c < "$W/optout.zone") / 1048576)) MiB, rbldnsd dataset $(($(wc -c < "$W/optout.rbl") / 1048576)) MiB"
rm -f "$W/table"

# --- 5. the opt-out zone served, and the milter's RCPT lookups against it ---
# The label of user1@d1.example (reject): coreutils, as a list provider would.
probe=$(printf %s user1@d1.example | sha256sum | cut -c1-64 | tr a-f A-F | tr -d '\n' | basenc --base16 -d |
    base32 -w0 | tr -d = | tr A-Z a-z).optout.bench
# lookups SERVER: optout-load, 100 threads, cold then warm
lookups() {
    if [ -x "$BUILD/t/optout-load" ]; then
        "$BUILD/t/optout-load" --nameserver "127.0.0.1:$LOAD_PORT" --zone optout.bench --table-size "$N" \
            --threads 100 --count "$LOOKUPS" | sed "s/^/  $1 /"
    else
        echo "# $BUILD/t/optout-load not built: RCPT lookups not measured"
    fi
}
LOOKUPS=${REGISTRY_BENCH_LOOKUPS:-50000}
# Debian's NSD is built with --enable-ratelimit: response rate limiting is on
# (rrl-ratelimit 200 qps per source /24 and answer class; every NXDOMAIN of a
# zone is one class). One milter host asking an opt-out zone is one source:
# measured as shipped, then with rrl-ratelimit: 0.
nsd_load "the opt-out zone ($N entries)" optout.bench "$W/optout.zone" "$probe" 127.0.0.2
lookups "nsd (rrl as shipped)"
load_stop
NSD_EXTRA="  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0"
nsd_load "the opt-out zone, rrl off" optout.bench "$W/optout.zone" "$probe" 127.0.0.2
lookups "nsd (rrl off)"
load_stop
NSD_EXTRA=""
if [ -x /usr/sbin/rbldnsd ]; then
    rbldnsd_load "the opt-out dataset" optout.bench:dnset:"$W/optout.rbl" "$probe" 127.0.0.2
    lookups rbldnsd
    load_stop
fi
echo "# load average $(cut -d' ' -f1-3 /proc/loadavg) at the end (other work on this machine skews wall times)"
