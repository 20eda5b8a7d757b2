# milter.sh: the real build/regmilter on a socket, for integration tests
# (POSIX sh, sourced after common.sh / dns-server.sh).
#
# milter_config MODE UNREGISTERED ENFORCE_AFTER ON_ERROR [MORE]  (MORE: appended text, printf %b)
#       writes $MILTER_CONF from t/fixtures/e2e/regmilter.ini.in with its placeholders filled:
#       $MILTER_SOCKET, $MILTER_DIR/regmilter.pid, $DNS_SERVER, $MILTER_TABLE.
#       The file is written beside and renamed, never half-written.
# milter_start [EXTRA ARGS...]
#       starts build/regmilter -f -c $MILTER_CONF [EXTRA ARGS] and waits until
#       $MILTER_SOCKET answers a protocol negotiation (not for the socket file,
#       which a killed milter leaves behind); stops it at exit. Run by root it
#       leaves root for [milter] user = $MILTER_USER of the configuration (give
#       MILTER_DIR to that user so that it can remove its socket and pid file).
#       Sets MILTER_PID and MILTER_LOG (a new log file per start:
#       $MILTER_DIR/milter-N.log). With -p SOCKET in EXTRA ARGS, set
#       MILTER_SOCKET to the same SOCKET first (that is where it waits).
# milter_running    true while the milter of MILTER_PID runs
# milter_stop       SIGTERM, then SIGKILL after 10 s; forgets MILTER_PID; also
#                   waits for the milters sent away by milter_retire
# milter_retire     SIGTERM without waiting (libmilter takes up to 5 s to stop):
#                   milter_stop waits for it later; forgets MILTER_PID
# milter_kill       SIGKILL (no clean-up: the socket file stays); forgets MILTER_PID
# milter_sanitizer_reports
#       the number of AddressSanitizer/LeakSanitizer/UBSan reports in every
#       log of $MILTER_DIR (SANITIZE builds; leaks are reported at exit), a
#       sanitizer that could not run its check (exit status 1) included
# milter_reload [expect-refusal]
#       SIGHUP, then waits for the log line of the next generation (or of the
#       refusal); sets MILTER_GENERATION.
# milter_wait_log PATTERN COUNT
#       until the log has more than COUNT lines matching PATTERN (10 s at most)
# milter_wait_exit [PID]  until the milter process is gone (10 s at most)
#
# Needs $BUILD and a tmpdir; MILTER_DIR defaults to a fresh one.

FIX_E2E=${FIX_E2E:-$(cd "$(dirname "$0")/../fixtures/e2e" && pwd)}

_milter_setup() {
    [ -n "${MILTER_DIR:-}" ] || tmpdir_new MILTER_DIR
    MILTER_SOCKET=${MILTER_SOCKET:-unix:$MILTER_DIR/regmilter.sock}
    MILTER_CONF=${MILTER_CONF:-$MILTER_DIR/regmilter.ini}
    MILTER_TABLE=${MILTER_TABLE:-$MILTER_DIR/bulk-table}
    [ -f "$MILTER_TABLE" ] || cp "$FIX_E2E/bulk-table" "$MILTER_TABLE"
    MILTER_USER=${MILTER_USER:-$(id -un)}
    MILTER_N=${MILTER_N:-0}
}

milter_config() {
    _milter_setup
    sed -e "s|@SOCKET@|$MILTER_SOCKET|" -e "s|@PIDFILE@|$MILTER_DIR/regmilter.pid|" \
        -e "s|@MODE@|$1|" -e "s|@UNREGISTERED@|$2|" -e "s|@ENFORCE_AFTER@|$3|" \
        -e "s|@ON_ERROR@|$4|" -e "s|@NAMESERVER@|$DNS_SERVER|" -e "s|@BULK_TABLE@|$MILTER_TABLE|" \
        -e "s|^user = .*|user = $MILTER_USER|" \
        "$FIX_E2E/regmilter.ini.in" > "$MILTER_CONF.new"
    # $5 (optional): more configuration, appended (printf %b: \n for new lines).
    [ -n "${5:-}" ] && printf '\n%b\n' "$5" >> "$MILTER_CONF.new"
    mv "$MILTER_CONF.new" "$MILTER_CONF"
}

# True once the milter answers a protocol negotiation on its socket; fails
# the wait at once when the process died.
_milter_started() {
    kill -0 "$MILTER_PID" 2>/dev/null || return 0
    _milter_answers
}
_milter_answers() {
    printf 'negotiate\n' | "$BUILD/t/milter-client" --socket "$MILTER_SOCKET" --timeout-ms 1000 2>/dev/null |
        grep -q '^< negotiated '
}

milter_start() {
    _milter_setup
    need_build regmilter t/milter-client
    MILTER_N=$((MILTER_N + 1))
    MILTER_LOG=$MILTER_DIR/milter-$MILTER_N.log
    "$BUILD/regmilter" -c "$MILTER_CONF" -f "$@" > "$MILTER_LOG" 2>&1 &
    MILTER_PID=$!
    at_exit "milter_stop"
    # The socket may exist before the milter listens (a stale file): wait for
    # an answer, not for the file.
    if ! wait_until 10 _milter_started || ! kill -0 "$MILTER_PID" 2>/dev/null; then
        echo "# milter did not start; its log:"
        sed 's/^/#   /' "$MILTER_LOG"
        exit 1
    fi
    MILTER_GENERATION=1
    echo "# regmilter pid $MILTER_PID on $MILTER_SOCKET"
}

milter_running() {
    [ -n "${MILTER_PID:-}" ] && kill -0 "$MILTER_PID" 2>/dev/null
}

milter_stop() {
    [ -n "${MILTER_PID:-}" ] && kill "$MILTER_PID" 2>/dev/null
    for _mp in ${MILTER_PID:-} ${MILTER_RETIRED:-}; do
        milter_wait_exit "$_mp" || kill -9 "$_mp" 2>/dev/null
        wait "$_mp" 2>/dev/null
    done
    MILTER_PID=""
    MILTER_RETIRED=""
}

milter_retire() {
    [ -n "${MILTER_PID:-}" ] || return 0
    kill "$MILTER_PID" 2>/dev/null
    MILTER_RETIRED="${MILTER_RETIRED:-} $MILTER_PID"
    MILTER_PID=""
}

milter_kill() {
    [ -n "${MILTER_PID:-}" ] || return 0
    kill -9 "$MILTER_PID" 2>/dev/null
    wait "$MILTER_PID" 2>/dev/null
    MILTER_PID=""
}

milter_sanitizer_reports() {
    cat "$MILTER_DIR"/milter-*.log 2>/dev/null |
        grep -c -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|Sanitizer has encountered a fatal error'
}

_milter_gone() { ! kill -0 "$1" 2>/dev/null; }
milter_wait_exit() { wait_until 10 _milter_gone "${1:-$MILTER_PID}"; }

_milter_log_grew() { [ "$(grep -c "$1" "$MILTER_LOG")" -gt "$2" ]; }
milter_wait_log() { wait_until 10 _milter_log_grew "$1" "$2"; }

milter_reload() {
    _done=$(grep -c "reloaded .*configuration generation" "$MILTER_LOG")
    _refused=$(grep -c "keeping configuration generation" "$MILTER_LOG")
    kill -HUP "$MILTER_PID"
    if [ "${1:-}" = expect-refusal ]; then
        milter_wait_log "keeping configuration generation" "$_refused" && return 0
    elif milter_wait_log "reloaded .*configuration generation" "$_done"; then
        MILTER_GENERATION=$(grep -o "reloaded .*configuration generation [0-9]*" "$MILTER_LOG" | tail -n 1 |
            grep -o '[0-9]*$')
        return 0
    fi
    echo "# reload: no answer in the milter log"
    return 1
}
