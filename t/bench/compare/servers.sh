# servers.sh: the DNS side of make bench's comparison (POSIX sh, sourced by
# t/bench/compare.sh after lib/common.sh). Meant to run inside the private
# network namespace compare.sh creates, so the ports are fixed:
#
#   NSD (authoritative, the generated zones)       127.0.0.1:5300
#   dns-delay (optional, holds each answer N ms)   127.0.0.1:5301 -> 5300
#   Unbound (recursive, what every milter asks)    127.0.0.1:53   -> 5300 or 5301
#
# nsd_start WORKLOAD_DIR    NSD serving every zone in WORKLOAD_DIR/zones; waits
#                           until each answers its SOA. Sets NSD_PID.
# nsd_queries               NSD's query count so far (UDP + TCP), from nsd-control
# relay_start DELAY_MS      dns-delay in front of NSD. Sets RELAY_PID.
# unbound_start PORT        Unbound on 127.0.0.1:53 sending the zones' names to
#                           127.0.0.1:PORT (stub zones, no DNSSEC validation,
#                           no QNAME minimisation: one upstream query per question
#                           it cannot answer from its cache). Sets UNBOUND_PID.
# unbound_stop              stops it (its cache goes with it)
# dns_path_ok LABEL         a name never asked before (LABEL.probe.bench) goes
#                           through Unbound, the relay and NSD and comes back
#                           NXDOMAIN: the whole path answers (one upstream query)
# servers_stop              stops every server started here (registered at exit)
#
# Needs $T (a scratch directory) and $BUILD.

NSD_PORT=5300
RELAY_PORT=5301
NSD_PID="" RELAY_PID="" UNBOUND_PID=""

# stop_pid PID [GRACE]: SIGTERM, then SIGKILL after GRACE seconds (default
# 3); waits for it (a child of this shell is reaped; an exited one counts as
# gone even before that).
stop_pid() {
    [ -n "$1" ] || return 0
    kill "$1" 2>/dev/null || return 0
    _i=0 _steps=$((${2:-3} * 20))
    while _running "$1" && [ $_i -lt $_steps ]; do sleep 0.05; _i=$((_i + 1)); done
    kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    return 0
}

_running() {
    [ -r "/proc/$1/stat" ] && ! sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | grep -q '^Z'
}

# wait_for WHAT TRIES CMD...: runs CMD every 0.1 s until it succeeds; false after TRIES.
wait_for() {
    _what=$1 _tries=$2
    shift 2
    _i=0
    until "$@" >/dev/null 2>&1; do
        _i=$((_i + 1))
        if [ $_i -ge "$_tries" ]; then
            echo "compare: $_what did not come up" >&2
            return 1
        fi
        sleep 0.1
    done
}

nsd_start() {
    _wl=$1
    {
        cat <<CONF
server:
  ip-address: 127.0.0.1@$NSD_PORT
  port: $NSD_PORT
  do-ip6: no
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "$_wl"
  database: ""
  pidfile: "$T/nsd.pid"
  xfrdfile: "$T/xfrd.state"
  zonelistfile: "$T/zone.list"
  logfile: "$T/nsd.log"
  verbosity: 1
  hide-version: yes
  refuse-any: no
remote-control:
  control-enable: yes
  control-interface: $T/nsd.ctl
CONF
        while read -r _zone _file; do
            printf 'zone:\n  name: "%s"\n  zonefile: "%s"\n' "$_zone" "$_file"
        done < "$_wl/zones"
    } > "$T/nsd.conf"
    nsd-checkconf "$T/nsd.conf" >&2 || return 1
    : > "$T/nsd.log"
    nsd -d -c "$T/nsd.conf" > "$T/nsd.out" 2>&1 &
    NSD_PID=$!
    # A query sent before NSD binds would wait for drill's own timeout.
    wait_for "NSD" 100 grep -q 'nsd started' "$T/nsd.log" "$T/nsd.out" || { cat "$T/nsd.log" "$T/nsd.out" >&2; return 1; }
    while read -r _zone _file; do
        if ! wait_for "NSD (zone $_zone)" 100 _soa_ok "$NSD_PORT" "$_zone"; then
            cat "$T/nsd.log" "$T/nsd.out" >&2
            return 1
        fi
    done < "$_wl/zones"
}

_soa_ok() {
    timeout 1 drill -p "$1" @127.0.0.1 SOA "$2" 2>/dev/null | grep -q 'flags: qr aa'
}

nsd_queries() {
    nsd-control -c "$T/nsd.conf" stats_noreset 2>/dev/null | sed -n 's/^num\.queries=//p'
}

relay_start() {
    "$BUILD/t/dns-delay" --upstream "127.0.0.1:$NSD_PORT" --port "$RELAY_PORT" --delay-ms "$1" \
        --max-seconds 7200 > "$T/relay.port" 2> "$T/relay.err" &
    RELAY_PID=$!
    wait_for "dns-delay" 50 test -s "$T/relay.port" || { cat "$T/relay.err" >&2; return 1; }
}

unbound_start() {
    _upstream=$1
    cat > "$T/unbound.conf" <<CONF
server:
  interface: 127.0.0.1
  port: 53
  do-ip6: no
  access-control: 127.0.0.0/8 allow
  username: ""
  chroot: ""
  directory: "$T"
  pidfile: "$T/unbound.pid"
  logfile: "$T/unbound.log"
  use-syslog: no
  verbosity: 1
  num-threads: 1
  module-config: "iterator"
  qname-minimisation: no
  do-not-query-localhost: no
  minimal-responses: yes
  prefetch: no
  local-zone: "18.198.in-addr.arpa." nodefault
  local-zone: "19.198.in-addr.arpa." nodefault
CONF
    while read -r _zone _file; do
        printf 'stub-zone:\n  name: "%s."\n  stub-addr: 127.0.0.1@%s\n' "$_zone" "$_upstream" >> "$T/unbound.conf"
    done < "$WORKLOAD/zones"
    unbound-checkconf "$T/unbound.conf" >/dev/null || { unbound-checkconf "$T/unbound.conf" >&2; return 1; }
    : > "$T/unbound.log"
    unbound -d -c "$T/unbound.conf" > "$T/unbound.out" 2>&1 &
    UNBOUND_PID=$!
    # "start of service" once it listens; localhost is one of its own local
    # zones: answered without an upstream query.
    wait_for "Unbound" 100 grep -q 'start of service' "$T/unbound.log" &&
        wait_for "Unbound" 50 _unbound_ok || { cat "$T/unbound.log" "$T/unbound.out" >&2; return 1; }
}

_unbound_ok() {
    timeout 1 drill @127.0.0.1 localhost A 2>/dev/null | grep -q 'rcode: NOERROR'
}

dns_path_ok() {
    timeout 3 drill @127.0.0.1 "$1.probe.bench" A 2>/dev/null | grep -q 'rcode: NXDOMAIN'
}

unbound_stop() {
    stop_pid "$UNBOUND_PID"
    UNBOUND_PID=""
}

servers_stop() {
    unbound_stop
    stop_pid "$RELAY_PID"
    stop_pid "$NSD_PID"
    RELAY_PID="" NSD_PID=""
}
