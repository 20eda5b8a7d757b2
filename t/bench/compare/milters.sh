# milters.sh: how make bench's comparison starts each milter (POSIX sh, sourced
# by t/bench/compare.sh). One function per milter, milter_start_NAME, each
# configured by the bench and listening on a unix socket in $T; every one
# asks the bench's Unbound (127.0.0.1:53 in the private network namespace):
# regmilter through its nameservers key, the others through the resolv.conf
# that compare.sh bind-mounts over /etc/resolv.conf in its mount namespace.
#
# milter_start NAME    starts it; sets MILTER_PID and MILTER_SOCK. Returns 77
#                      with the reason in MILTER_SKIP when it cannot run here.
# milter_stop          stops the running one
# MILTERS              every name, in the order the comparison prints them
# VARIANTS             more names compare.sh takes, outside the comparison:
#                      regmilter-stats, regmilter with [stats] listen set and
#                      scraped once a second (t/bench/stats.sh); with
#                      SCRAPE_LOG set, milter_stop appends the scrape count there
#
# Needs $T, $BUILD and $WORKLOAD.

MILTERS="regmilter null-all null-floor pyspf-milter opendmarc"
VARIANTS="regmilter-stats"
MILTER_PID="" MILTER_SOCK="" MILTER_SKIP="" SCRAPER_PID=""

milter_start() {
    MILTER_PID="" MILTER_SKIP=""
    MILTER_SOCK=$T/$1.sock
    rm -f "$MILTER_SOCK"
    case $1 in
    regmilter) _start_regmilter ;;
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
    MILTER_PID=""
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
# _start_regmilter stats: also [stats] listen, and a scraper that fetches
# /metrics with regmilter-query --stats once a second while it runs (a
# Prometheus scrapes every 15 s or so: this is the heavier case).
_start_regmilter() {
    [ -x "$BUILD/regmilter" ] || { MILTER_SKIP="$BUILD/regmilter not built"; return 77; }
    cat > "$T/regmilter.ini" <<CONF
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
unregistered = tag
bulk_codes = 127.0.0.3

[spf]
fail = reject
softfail = tag
permerror = tag
temperror = tempfail
check_helo = yes
headers = both
CONF
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
