# recursor.sh: a real recursive resolver (unbound) on loopback in front of
# the test's authoritative servers, for tools that ask a resolver with RD set
# and need answers from several servers -- some of which never answer
# (POSIX sh, sourced after dns-server.sh).
#
# recursor_start ZONE=HOST:PORT...
#       Starts unbound on 127.0.0.1 at a free port with one stub zone per
#       argument (the zone's queries go to HOST:PORT; unbound's RFC 6761/6890
#       default local zones of those names are overridden), no DNSSEC
#       validation, no other upstream: a name outside the stub zones is
#       REFUSED (local-zone "." refuse), never asked of the Internet. Waits until it answers, stops it at exit. Sets RECURSOR_PORT
#       and RECURSOR_SERVER (127.0.0.1:PORT). Skips (exit 77) without unbound.

recursor_start() {
    command -v unbound >/dev/null 2>&1 || [ -x /usr/sbin/unbound ] || skip "unbound not found (install it: contrib/install-deps)"
    _ub=$(command -v unbound || echo /usr/sbin/unbound)
    tmpdir_new RECURSOR_DIR
    _stubs=""
    for _z in "$@"; do
        _name=${_z%%=*}
        _addr=${_z#*=}
        _host=${_addr%:*}
        _port=${_addr##*:}
        _stubs="$_stubs
local-zone: \"$_name.\" transparent
stub-zone:
  name: \"$_name.\"
  stub-addr: $_host@$_port
server:"
    done
    _try=0
    while [ $_try -lt 5 ]; do
        _try=$((_try + 1))
        RECURSOR_PORT=$(free_port) || exit 1
        cat > "$RECURSOR_DIR/unbound.conf" <<CONF
server:
  interface: 127.0.0.1@$RECURSOR_PORT
  port: $RECURSOR_PORT
  do-ip6: no
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "$RECURSOR_DIR"
  pidfile: "$RECURSOR_DIR/unbound.pid"
  use-syslog: no
  logfile: "$RECURSOR_DIR/unbound.log"
  verbosity: 1
  num-threads: 1
  module-config: "iterator"
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  local-zone: "." refuse
  qname-minimisation: no
  cache-max-negative-ttl: 5
$_stubs
remote-control:
  control-enable: no
CONF
        if ! unbound-checkconf "$RECURSOR_DIR/unbound.conf" > "$RECURSOR_DIR/checkconf.log" 2>&1; then
            cat "$RECURSOR_DIR/checkconf.log" >&2
            exit 1
        fi
        "$_ub" -d -c "$RECURSOR_DIR/unbound.conf" > "$RECURSOR_DIR/unbound.out" 2>&1 &
        RECURSOR_PID=$!
        at_exit "kill $RECURSOR_PID; wait $RECURSOR_PID"
        _i=0
        while [ $_i -lt 50 ]; do
            if timeout 2 drill -p "$RECURSOR_PORT" @127.0.0.1 SOA "${1%%=*}" 2>/dev/null | grep -q 'rcode: NOERROR'; then
                RECURSOR_SERVER=127.0.0.1:$RECURSOR_PORT
                echo "# unbound pid $RECURSOR_PID on $RECURSOR_SERVER"
                return 0
            fi
            kill -0 "$RECURSOR_PID" 2>/dev/null || break
            sleep 0.1
            _i=$((_i + 1))
        done
        kill "$RECURSOR_PID" 2>/dev/null; wait "$RECURSOR_PID" 2>/dev/null
        grep -qiE 'could not bind|address already in use' "$RECURSOR_DIR/unbound.log" "$RECURSOR_DIR/unbound.out" && continue
        echo "recursor_start: unbound did not answer; log:" >&2
        cat "$RECURSOR_DIR/unbound.log" "$RECURSOR_DIR/unbound.out" >&2
        exit 1
    done
    echo "recursor_start: no port after $_try tries" >&2
    exit 1
}
