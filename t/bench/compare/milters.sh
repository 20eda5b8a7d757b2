# milters.sh: how make bench's comparison starts each milter (POSIX sh, sourced
# by t/bench/compare.sh). One function per milter, milter_start_NAME, each
# configured by the bench and listening on a unix socket in $T; every one
# asks the bench's Unbound (127.0.0.1:53 in the private network namespace):
# regmilter through its nameservers key, the others through the resolv.conf
# that compare.sh bind-mounts over /etc/resolv.conf in its mount namespace.
#
# milter_start NAME    starts it; sets MILTER_PID and MILTER_SOCK (and
#                      MILTER_CPU_EXTRA, "NAME=PID" of a helper process whose
#                      CPU counts too: the Redis of regmilter-grey-redis).
#                      Returns 77 with the reason in MILTER_SKIP when it
#                      cannot run here.
# milter_stop          stops the running one
# MILTERS              every name, in the order the comparison prints them
# VARIANTS             more names compare.sh takes, outside the comparison:
#                      regmilter-stats, regmilter with [stats] listen set and
#                      scraped once a second (t/bench/stats.sh); with
#                      SCRAPE_LOG set, milter_stop appends the scrape count there
#
# Needs $T, $BUILD and $WORKLOAD.

MILTERS="regmilter regmilter-grey-memory regmilter-grey-redis null-all null-floor pyspf-milter opendmarc"
VARIANTS="regmilter-stats"
MILTER_PID="" MILTER_SOCK="" MILTER_SKIP="" MILTER_CPU_EXTRA="" REDIS_BENCH_PID="" SCRAPER_PID=""

milter_start() {
    MILTER_PID="" MILTER_SKIP=""
    MILTER_SOCK=$T/$1.sock
    rm -f "$MILTER_SOCK"
    case $1 in
    regmilter) _start_regmilter ;;
    regmilter-grey-memory) _start_regmilter memory ;;
    regmilter-grey-redis) _start_regmilter redis ;;
    regmilter-stats) _start_regmilter stats ;;
    null-all) _start_null all ;;
    null-floor) _start_null floor ;;
    pyspf-milter) _start_pyspf ;;
    opendmarc) _start_opendmarc ;;
    *)
        MILTER_SKIP="unknown milter '$1' (known: $MILTERS $VARIANTS)"
        return 2
        ;;
    esac || return $?
    if ! wait_for "$1 (socket $MILTER_SOCK)" 150 _socket_up; then
        MILTER_SKIP="$1 did not open its socket; its log: $(tail -n 5 "$T/$1.log" 2>/dev/null | tr '\n' ' ')"
        milter_stop
        return 77
    fi
}

_socket_up() {
    [ -S "$MILTER_SOCK" ] && [ -n "$MILTER_PID" ] && kill -0 "$MILTER_PID"
}

# libmilter takes about 3 s to leave after SIGTERM (its listener's poll
# interval); the bench has no use for a clean exit after 1 s.
milter_stop() {
    stop_pid "$MILTER_PID" 1
    stop_pid "$REDIS_BENCH_PID" 1
    MILTER_PID="" REDIS_BENCH_PID="" MILTER_CPU_EXTRA=""
    if [ -n "$SCRAPER_PID" ]; then
        stop_pid "$SCRAPER_PID" 1
        SCRAPER_PID=""
        # (milter_stop runs at exit, where output is dropped: into a file.)
        [ -z "${SCRAPE_LOG:-}" ] || echo "regmilter-stats: $(wc -l < "$T/scrapes") scrapes," \
            "$(awk '$2 != 0' "$T/scrapes" | wc -l) failed; last: $(cat "$T/stats.txt" 2>/dev/null)" >> "$SCRAPE_LOG"
    fi
}

# regmilter as an MTA would run it (a daemon, its pid file), with the
# registry zone, SPF on both identities, Unbound as its name server. No
# network is trusted: the bench's clients must be checked. Every milter here
# runs as root (user = root: the default user "regmilter" may not exist).
# A start-up error goes to syslog only (no -f), so -t is asked first.
# _start_regmilter memory|redis: the same with unregistered = greylist (a
# 1 s delay: the warm-up's triplets have passed when the runs begin), the
# state in memory or in a redis-server started here on 127.0.0.1:6379 (the
# namespace's own loopback), without persistence.
# _start_regmilter stats: also [stats] listen, and a scraper that fetches
# /metrics with regmilter-query --stats once a second while it runs (a
# Prometheus scrapes every 15 s or so: this is the heavier case).
_start_regmilter() {
    [ -x "$BUILD/regmilter" ] || { MILTER_SKIP="$BUILD/regmilter not built"; return 77; }
    _unregistered=tag _backend=memory
    case ${1:-} in memory | redis) _unregistered=greylist _backend=$1 ;; esac
    if [ "${1:-}" = redis ]; then
        redis_bench_start || return 77
        MILTER_CPU_EXTRA="redis=$REDIS_BENCH_PID"
    fi
    regmilter_ini "$_unregistered" "$_backend" > "$T/regmilter.ini"
    [ "${1:-}" = stats ] && printf '\n[stats]\nlisten = 127.0.0.1:9180\n' >> "$T/regmilter.ini"
    rm -f "$T/regmilter.pid"
    "$BUILD/regmilter" -c "$T/regmilter.ini" -t > "$T/regmilter.log" 2>&1 &&
        "$BUILD/regmilter" -c "$T/regmilter.ini" >> "$T/regmilter.log" 2>&1 || {
        MILTER_SKIP="regmilter did not start: $(tr '\n' ' ' < "$T/regmilter.log")"
        return 77
    }
    wait_for "regmilter pid file" 50 test -s "$T/regmilter.pid" || return 77
    MILTER_PID=$(cat "$T/regmilter.pid")
    if [ "${1:-}" = stats ]; then
        : > "$T/scrapes"
        (
            while kill -0 "$MILTER_PID" 2>/dev/null; do
                "$BUILD/regmilter-query" -c "$T/regmilter.ini" --stats > "$T/stats.new" 2>&1
                echo "scrape $?" >> "$T/scrapes"
                grep '^regmilter_sessions_total ' "$T/stats.new" > "$T/stats.txt"
                sleep 1
            done
        ) &
        SCRAPER_PID=$!
    fi
}

# regmilter_ini UNREGISTERED BACKEND [STATE...]: the bench's configuration
# of regmilter (socket $MILTER_SOCK), [registry reg] unregistered =
# UNREGISTERED, [state] backend = BACKEND and the further [state] lines.
regmilter_ini() {
    cat <<CONF
[milter]
socket = unix:$MILTER_SOCK
user = root
pid_file = $T/regmilter.pid
mode = enforce
authserv_id = mx.bench.test

[resolver]
nameservers = 127.0.0.1
timeout_ms = 2000
retries = 2
cache_size = 100000
stage_timeout_ms = 10000

[trust]
networks =

[registry reg]
zone = reg.bench
format = dashed
meaning = registered
unregistered = $1
bulk_codes = 127.0.0.3

[spf]
fail = reject
softfail = tag
permerror = tag
temperror = tempfail
check_helo = yes
headers = both

[greylist]
delay = 1

[state]
backend = $2
redis = 127.0.0.1:6379
CONF
    shift 2
    for _line in "$@"; do echo "$_line"; done
}

# redis_bench_start: redis-server on 127.0.0.1:6379 (the namespace's
# loopback), no persistence; sets REDIS_BENCH_PID. False, with the reason in
# MILTER_SKIP, when it cannot run.
redis_bench_start() {
    command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 ||
        { MILTER_SKIP="redis-server or redis-cli not installed"; return 1; }
    redis-server --port 6379 --bind 127.0.0.1 --save "" --appendonly no --dir "$T" --daemonize no \
        --logfile "$T/redis.log" &
    REDIS_BENCH_PID=$!
    wait_for "redis-server" 50 redis-cli -p 6379 PING || { MILTER_SKIP="redis-server did not start"; return 1; }
}

_start_null() {
    [ -x "$BUILD/t/null-milter" ] || { MILTER_SKIP="$BUILD/t/null-milter not built"; return 77; }
    "$BUILD/t/null-milter" --socket "unix:$MILTER_SOCK" --shape "$1" --max-seconds 7200 \
        > "$T/null-$1.log" 2>&1 &
    MILTER_PID=$!
}

# pyspf-milter (Debian package pyspf-milter): SPF on HELO and MAIL FROM,
# rejecting fail as regmilter does; a header on the rest.
_start_pyspf() {
    [ -x /usr/bin/pyspf-milter ] || { MILTER_SKIP="pyspf-milter is not installed"; return 77; }
    cat > "$T/pyspf-milter.conf" <<CONF
debugLevel = 1
TestOnly = 1
HELO_reject = Fail
Mail_From_reject = Fail
PermError_reject = False
TempError_Defer = False
skip_addresses = 127.0.0.0/8,::ffff:127.0.0.0/104,::1
Authserv_Id = mx.bench.test
Socket = local:$MILTER_SOCK
PidFile = $T/pyspf-milter.pid
UserID = root
CONF
    rm -f "$T/pyspf-milter.pid"
    /usr/bin/pyspf-milter "$T/pyspf-milter.conf" > "$T/pyspf-milter.log" 2>&1 &
    MILTER_PID=$!
}

# OpenDMARC (Debian package opendmarc) validating SPF itself (libspf2) and
# looking up DMARC records, rejecting nothing (its default).
_start_opendmarc() {
    [ -x /usr/sbin/opendmarc ] || { MILTER_SKIP="opendmarc is not installed"; return 77; }
    {
        echo "AuthservID mx.bench.test"
        echo "Background false"
        echo "PidFile $T/opendmarc.pid"
        echo "Socket local:$MILTER_SOCK"
        echo "SPFSelfValidate true"
        echo "SPFIgnoreResults true"
        echo "Syslog true"
        echo "UserID root"
        echo "FailureReports false"
        [ -r /usr/share/publicsuffix/public_suffix_list.dat ] &&
            echo "PublicSuffixList /usr/share/publicsuffix/public_suffix_list.dat"
    } > "$T/opendmarc.conf"
    rm -f "$T/opendmarc.pid"
    /usr/sbin/opendmarc -f -c "$T/opendmarc.conf" > "$T/opendmarc.log" 2>&1 &
    MILTER_PID=$!
}
