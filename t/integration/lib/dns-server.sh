# dns-server.sh: a real DNS server (NSD) and a black hole on loopback, for
# integration tests (POSIX sh, sourced; sources common.sh).
#   . "$(dirname "$0")/lib/dns-server.sh"
#
# dns_server_start ZONE=FILE...
#       Starts NSD on 127.0.0.1 at a free port (UDP and TCP) serving each zone
#       from its file (relative paths are taken from the current directory),
#       waits until every zone answers its SOA, and stops NSD at exit.
#       Sets DNS_PORT, DNS_SERVER (127.0.0.1:PORT, for --nameserver) and DNS_DIR
#       (config, logs). DNS_PORT_WANTED=PORT: that port, no other (a resolver
#       that comes back where a dead one was). Retries other ports if one is taken; skips (exit 77)
#       if nsd or drill is missing; exits 1 with NSD's log if a zone fails to load.
# dns_server_stop
#       Stops the NSD started last (also done at exit).
# dns_blackhole_start [MAX_SECONDS]
#       Starts $BUILD/t/dns-blackhole (takes UDP and TCP queries, never answers;
#       exits by itself after MAX_SECONDS, default 300) and stops it at exit.
#       Sets BLACKHOLE_PORT and BLACKHOLE_SERVER (127.0.0.1:PORT).
# dns_query NAME TYPE      drill NAME TYPE against the NSD (debugging aid)
# rbldnsd_start ZONE:TYPE:FILE...
#       Starts rbldnsd (rbldnsd(8) zone specs, e.g. reg.test:combined:FILE) on
#       127.0.0.1 at a free port as an unprivileged user, waits until the
#       first zone answers its SOA, and stops it at exit. The files and their
#       directory must be readable by that user. Sets RBLDNSD_PORT,
#       RBLDNSD_SERVER (127.0.0.1:PORT) and RBLDNSD_LOG; skips (exit 77)
#       without rbldnsd; exits 1 with rbldnsd's log when it does not start.

# A script outside t/integration/ sources common.sh itself first.
[ -n "${_th_loaded:-}" ] || . "$(dirname "$0")/lib/common.sh"

NSD=${NSD:-/usr/sbin/nsd}

dns_server_start() {
    [ -x "$NSD" ] || need_cmd nsd
    command -v drill >/dev/null 2>&1 || skip "drill not found (package ldnsutils)"
    [ $# -gt 0 ] || { echo "dns_server_start: no zones given" >&2; exit 1; }
    tmpdir_new DNS_DIR
    _zones=""
    for _z in "$@"; do
        _name=${_z%%=*}
        _file=${_z#*=}
        [ "$_name" != "$_z" ] && [ -n "$_name" ] || { echo "dns_server_start: want ZONE=FILE, got '$_z'" >&2; exit 1; }
        case $_file in /*) ;; *) _file=$PWD/$_file ;; esac
        [ -r "$_file" ] || { echo "dns_server_start: cannot read zone file $_file" >&2; exit 1; }
        _zones="$_zones $_name"
        printf 'zone:\n  name: "%s"\n  zonefile: "%s"\n' "$_name" "$_file" >> "$DNS_DIR/zones.conf"
    done
    _try=0
    while [ $_try -lt 5 ]; do
        _try=$((_try + 1))
        DNS_PORT=${DNS_PORT_WANTED:-$(free_port)} || exit 1
        cat > "$DNS_DIR/nsd.conf" <<CONF
server:
  ip-address: 127.0.0.1@$DNS_PORT
  port: $DNS_PORT
  do-ip6: no
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "$DNS_DIR"
  database: ""
  pidfile: "$DNS_DIR/nsd.pid"
  xfrdfile: "$DNS_DIR/xfrd.state"
  zonelistfile: "$DNS_DIR/zone.list"
  logfile: "$DNS_DIR/nsd.log"
  verbosity: 1
  hide-version: yes
  minimal-responses: no
  refuse-any: no
remote-control:
  control-enable: no
CONF
        cat "$DNS_DIR/zones.conf" >> "$DNS_DIR/nsd.conf"
        if ! nsd-checkconf "$DNS_DIR/nsd.conf" > "$DNS_DIR/checkconf.log" 2>&1; then
            cat "$DNS_DIR/checkconf.log" >&2
            exit 1
        fi
        : > "$DNS_DIR/nsd.log"
        "$NSD" -d -c "$DNS_DIR/nsd.conf" > "$DNS_DIR/nsd.out" 2>&1 &
        DNS_PID=$!
        at_exit "kill $DNS_PID; wait $DNS_PID"
        if _dns_wait_started; then
            DNS_SERVER=127.0.0.1:$DNS_PORT
            for _name in $_zones; do
                if ! _dns_soa_ok "$_name"; then
                    echo "dns_server_start: zone $_name is not served; NSD log:" >&2
                    cat "$DNS_DIR/nsd.log" "$DNS_DIR/nsd.out" >&2
                    exit 1
                fi
            done
            echo "# nsd pid $DNS_PID on $DNS_SERVER serving$_zones"
            return 0
        fi
        kill "$DNS_PID" 2>/dev/null; wait "$DNS_PID" 2>/dev/null
        if grep -qiE 'could not bind|can.t bind|address already in use' "$DNS_DIR/nsd.log" "$DNS_DIR/nsd.out"; then
            continue  # port taken between the check and the bind: try another
        fi
        echo "dns_server_start: nsd did not start; log:" >&2
        cat "$DNS_DIR/nsd.log" "$DNS_DIR/nsd.out" >&2
        exit 1
    done
    echo "dns_server_start: no port after $_try tries" >&2
    exit 1
}

# True once NSD logs that it serves; false if it died or 10 s passed.
_dns_wait_started() {
    _i=0
    while [ $_i -lt 100 ]; do
        grep -q 'nsd started' "$DNS_DIR/nsd.log" "$DNS_DIR/nsd.out" 2>/dev/null && return 0
        kill -0 "$DNS_PID" 2>/dev/null || return 1
        sleep 0.1
        _i=$((_i + 1))
    done
    return 1
}

# True when ZONE's SOA comes back authoritative from our NSD (not another server).
_dns_soa_ok() {
    _out=$(timeout 5 drill -p "$DNS_PORT" @127.0.0.1 SOA "$1" 2>&1)
    case $_out in
    *"rcode: NOERROR"*"flags: qr aa"*) return 0 ;;
    esac
    return 1
}

dns_server_stop() {
    [ -n "${DNS_PID:-}" ] || return 0
    kill "$DNS_PID" 2>/dev/null
    wait "$DNS_PID" 2>/dev/null
    DNS_PID=""
}

dns_query() {
    timeout 5 drill -p "$DNS_PORT" @127.0.0.1 "$2" "$1"
}

dns_blackhole_start() {
    need_build t/dns-blackhole
    tmpdir_new _bh_dir
    "$BUILD/t/dns-blackhole" --max-seconds "${1:-300}" > "$_bh_dir/port" 2> "$_bh_dir/err" &
    BLACKHOLE_PID=$!
    at_exit "kill $BLACKHOLE_PID; wait $BLACKHOLE_PID"
    _i=0
    while [ ! -s "$_bh_dir/port" ] && [ $_i -lt 50 ]; do
        kill -0 "$BLACKHOLE_PID" 2>/dev/null || break
        sleep 0.1
        _i=$((_i + 1))
    done
    BLACKHOLE_PORT=$(head -n 1 "$_bh_dir/port")
    [ -n "$BLACKHOLE_PORT" ] || { echo "dns_blackhole_start: no port; $(cat "$_bh_dir/err")" >&2; exit 1; }
    BLACKHOLE_SERVER=127.0.0.1:$BLACKHOLE_PORT
    echo "# black hole pid $BLACKHOLE_PID on $BLACKHOLE_SERVER"
}

rbldnsd_start() {
    _rbl=$(command -v rbldnsd || echo /usr/sbin/rbldnsd)
    [ -x "$_rbl" ] || skip "rbldnsd not found (package rbldnsd)"
    command -v drill >/dev/null 2>&1 || skip "drill not found (package ldnsutils)"
    _rbl_user=nobody
    id rbldns >/dev/null 2>&1 && _rbl_user=rbldns
    _rbl_zone=${1%%:*}
    tmpdir_new _rbl_dir
    RBLDNSD_LOG=$_rbl_dir/rbldnsd.log
    _try=0
    while [ $_try -lt 5 ]; do
        _try=$((_try + 1))
        RBLDNSD_PORT=$(free_port) || exit 1
        # -n: foreground; -c: look for changed files every second; -t: default TTL.
        "$_rbl" -n -u "$_rbl_user" -b "127.0.0.1/$RBLDNSD_PORT" -c 1 -t 300 "$@" > "$RBLDNSD_LOG" 2>&1 &
        RBLDNSD_PID=$!
        at_exit "kill $RBLDNSD_PID; wait $RBLDNSD_PID"
        if wait_until 10 _rbldnsd_answers && kill -0 "$RBLDNSD_PID" 2>/dev/null; then
            RBLDNSD_SERVER=127.0.0.1:$RBLDNSD_PORT
            echo "# rbldnsd pid $RBLDNSD_PID on $RBLDNSD_SERVER serving $*"
            return 0
        fi
        kill "$RBLDNSD_PID" 2>/dev/null; wait "$RBLDNSD_PID" 2>/dev/null
        grep -qi 'address already in use' "$RBLDNSD_LOG" && continue
        break
    done
    echo "rbldnsd_start: rbldnsd did not answer for $_rbl_zone; log:" >&2
    cat "$RBLDNSD_LOG" >&2
    exit 1
}

# True once rbldnsd answers the first zone's SOA, or once it died (the caller checks which).
_rbldnsd_answers() {
    kill -0 "$RBLDNSD_PID" 2>/dev/null || return 0
    timeout 2 drill -p "$RBLDNSD_PORT" @127.0.0.1 SOA "$_rbl_zone" 2>/dev/null | grep -q 'rcode: NOERROR'
}
