# redis-server.sh: a real Redis on loopback for integration tests and benches
# (POSIX sh, sourced; sources common.sh).
#   . "$(dirname "$0")/lib/redis-server.sh"
#
# redis_start [PASSWORD]
#       Starts redis-server on 127.0.0.1 at a free port AND on a unix socket in
#       a fresh directory, without persistence, with PASSWORD (requirepass) when
#       given; waits until it answers PING; stops it at exit (whichever
#       redis_start/redis_restart started last). Sets REDIS_PORT, REDIS_TCP
#       (127.0.0.1:PORT), REDIS_SOCK, REDIS_UNIX (unix:PATH), REDIS_DIR,
#       REDIS_PID, REDIS_PASSWORD. Skips (exit 77) when redis-server or
#       redis-cli is missing; exits 1 with Redis's log when it does not start.
# redis_kill            SIGKILL the server (an outage, as a crash makes it)
# redis_restart         start it again on the same port and socket (empty)
# redis_cli ARG...      redis-cli on the TCP port, with the password

. "$(dirname "$0")/lib/common.sh"

_redis_launch() {
    # Started directly (no eval, no subshell), so that $! is redis-server itself.
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --unixsocket "$REDIS_SOCK" --unixsocketperm 700 --dir "$REDIS_DIR" --daemonize no \
        --logfile "$REDIS_DIR/redis.log" ${REDIS_PASSWORD:+--requirepass "$REDIS_PASSWORD"} &
    REDIS_PID=$!
    _n=0
    while [ $_n -lt 50 ]; do
        [ "$(redis_cli PING 2>/dev/null)" = PONG ] && return 0
        kill -0 "$REDIS_PID" 2>/dev/null || return 1
        sleep 0.1
        _n=$((_n + 1))
    done
    return 1
}

redis_start() {
    need_cmd redis-server redis-cli
    REDIS_PASSWORD=${1:-}
    tmpdir_new REDIS_DIR
    REDIS_SOCK=$REDIS_DIR/redis.sock
    REDIS_UNIX=unix:$REDIS_SOCK
    at_exit 'kill -9 "$REDIS_PID"'
    _try=0
    while [ $_try -lt 5 ]; do
        _try=$((_try + 1))
        REDIS_PORT=$(free_port) || exit 1
        REDIS_TCP=127.0.0.1:$REDIS_PORT
        _redis_launch && return 0
        kill -9 "$REDIS_PID" 2>/dev/null
        wait "$REDIS_PID" 2>/dev/null
    done
    echo "redis_start: redis-server did not start; its log:" >&2
    cat "$REDIS_DIR/redis.log" >&2
    exit 1
}

redis_kill() {
    kill -9 "$REDIS_PID" 2>/dev/null
    wait "$REDIS_PID" 2>/dev/null
    return 0
}

redis_restart() {
    _redis_launch && return 0
    echo "redis_restart: redis-server did not start again; its log:" >&2
    tail -n 20 "$REDIS_DIR/redis.log" >&2
    return 1
}

redis_cli() {
    if [ -n "$REDIS_PASSWORD" ]; then
        redis-cli -h 127.0.0.1 -p "$REDIS_PORT" -a "$REDIS_PASSWORD" --no-auth-warning "$@"
    else
        redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"
    fi
}
