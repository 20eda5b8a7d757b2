#!/bin/sh
# stats.sh: the statistics endpoint of the real build/regmilter ([stats]
# listen on a loopback port chosen at run time), with NSD on loopback serving
# the zones of t/fixtures/e2e/ and SMTP sessions driven over the milter
# protocol by build/t/milter-client from t/fixtures/stats/*.script.
#
#   counts     a known mix of sessions — accepted, refused by the registry,
#              SPF fail, a bulk opt-out — in enforce mode, then after a SIGHUP
#              reload to observe mode the refused kinds again (accepted, with
#              would-be refusals): every counter equals what was sent, and
#              the text passes `promtool check metrics`
#   query      regmilter-query --stats prints the same counters; exit 1 with
#              a clear error when [stats] listen is not set
#   bad-http   garbage, binary, oversized and wrong requests get 400, 431,
#              404, 405 (or are closed); a client that stops half-way gets
#              408 after 5 s; more clients than the endpoint takes are closed;
#              meanwhile mail is answered and counted as before
#   startup    -t warns about a listen address that is not loopback; a port
#              already taken stops a start with the reason; a reload that
#              moves listen says it takes effect at restart
#   stopped    regmilter-query --stats says the milter cannot be reached
#
# Run all:   BUILD=$PWD/build sh t/integration/stats.sh
# Run some:  BUILD=$PWD/build sh t/integration/stats.sh counts bad-http
# (counts runs first whenever query or bad-http is asked for: they build on it).
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
SCEN=$top/t/fixtures/stats
. "$here/lib/dns-server.sh"
. "$here/lib/milter.sh"

need_build regmilter regmilter-query t/milter-client t/http-probe
need_cmd promtool
tmpdir_new MILTER_DIR

ONLY="$*"
wanted() {
    [ -z "$ONLY" ] && return 0
    for _w in $ONLY; do [ "$_w" = "$1" ] && return 0; done
    return 1
}

dns_server_start reg.e2e.test="$FIX_E2E/reg.e2e.test.zone" block.e2e.test="$FIX_E2E/block.e2e.test.zone" \
    spf.e2e.test="$FIX_E2E/spf.e2e.test.zone"
STATS_PORT=$(free_port) || exit 1
STATS=127.0.0.1:$STATS_PORT

# stats_config MODE [PORT]: the end-to-end configuration (unregistered =
# reject, enforced) in MODE, with [stats] listen = 127.0.0.1:PORT.
stats_config() {
    milter_config "$1" reject 2020-01-01 tempfail
    printf '\n[stats]\nlisten = 127.0.0.1:%s\n' "${2:-$STATS_PORT}" >> "$MILTER_CONF"
}

# sessions NAME COUNT WANT: COUNT sessions of t/fixtures/stats/NAME.script,
# sent as an MTA would (nothing after a refused MAIL FROM); one TAP line, ok
# when every transcript has a line matching the grep pattern WANT.
SENT=0
sessions() {
    _i=0 _bad=""
    while [ "$_i" -lt "$2" ]; do
        SENT=$((SENT + 1))
        _out=$MILTER_DIR/session-$SENT-$1.out
        "$BUILD/t/milter-client" --socket "$MILTER_SOCKET" --timeout-ms 8000 --max-seconds 60 --as-mta \
            "$SCEN/$1.script" > "$_out" 2>&1
        grep -q -- "$3" "$_out" || _bad="$_out"
        _i=$((_i + 1))
    done
    if [ -z "$_bad" ]; then
        ok "$PHASE: $2 x $1: $3"
    else
        not_ok "$PHASE: $2 x $1" "no line matches '$3'"
        sed 's/^/#   /' "$_bad" | tail -n 20
    fi
}

# scrape FILE: GET /metrics with http-probe; the body into FILE, the status
# line printed.
scrape() {
    "$BUILD/t/http-probe" --connect "$STATS" --send 'GET /metrics HTTP/1.1\r\nHost: stats\r\n\r\n' \
        --timeout-ms 5000 --body > "$1.raw"
    head -n 1 "$1.raw" | sed 's/ elapsed_ms=.*//'
    tail -n +2 "$1.raw" > "$1"
}

# value SERIES FILE: the value of the sample SERIES ("absent" when there is none).
value() {
    awk -v s="$1" 'index($0, s " ") == 1 { print $2; found = 1 } END { if (!found) print "absent" }' "$2"
}

# check_values NAME FILE: every "SERIES VALUE" line of stdin against FILE.
check_values() {
    _bad=""
    while read -r _series _want; do
        case $_series in '' | \#*) continue ;; esac
        _got=$(value "$_series" "$2")
        [ "$_got" = "$_want" ] || _bad="$_bad $_series=$_got (want $_want);"
    done
    if [ -z "$_bad" ]; then ok "$1"; else not_ok "$1" "$_bad"; fi
}

# promtool_ok NAME FILE
promtool_ok() {
    if promtool check metrics < "$2" > "$2.promtool" 2>&1; then
        ok "$1"
    else
        not_ok "$1" "$(tr '\n' ' ' < "$2.promtool")"
    fi
}

# ---------------------------------------------------------------- counts
if wanted counts || wanted query || wanted bad-http; then
    PHASE=counts
    stats_config enforce
    milter_start -P ""
    check_match "the start-up log names the endpoint" "$(grep -c "statistics at http://$STATS/metrics" "$MILTER_LOG")" 1
    check "before any session: GET /metrics answers 200" "$(scrape "$MILTER_DIR/before")" "status=200"
    check "before any session: regmilter_sessions_total" "$(value regmilter_sessions_total "$MILTER_DIR/before")" 0

    PHASE=enforce
    sessions accepted 3 '^< insheader 0 Authentication-Results: mx.e2e.test; spf=pass'
    sessions registry-reject 2 '^< replycode 550 5.7.1 198.51.100.66 is not a registered mail server'
    sessions spf-fail 2 '^< replycode 550 5.7.23 '
    sessions bulk-optout 1 '^< replycode 550 5.7.1 optout@dest.test does not accept bulk mail'

    stats_config observe
    milter_reload || not_ok "reload to observe mode" "no reload line in the log"
    PHASE=observe
    sessions registry-reject 2 '^< insheader .* X-Regmilter: would reject: 550 5.7.1 198.51.100.66'
    sessions spf-fail 1 '^< insheader .* X-Regmilter: would reject: 550 5.7.23 '
    sessions bulk-optout 1 '^> rcpt <optout@dest.test>'

    PHASE=counts
    status=$(scrape "$MILTER_DIR/counts")
    check "GET /metrics answers 200" "$status" "status=200"
    # 12 sessions: enforce 3 accepted + 2 registry + 2 SPF fail + 1 bulk,
    # observe 2 registry + 1 SPF fail + 1 bulk. Every examined MAIL FROM asks
    # both registry zones: reg lists 198.51.100.7 and .8, not .66; block lists
    # none of them. SPF: pass.spf.e2e.test passes for all three clients,
    # fail.spf.e2e.test fails; the HELO names publish no SPF (none).
    check_values "every counter equals the sessions sent" "$MILTER_DIR/counts" <<'EOF'
regmilter_sessions_total 12
regmilter_config_generation 2
regmilter_verdicts_total{stage="connect",policy="none",result="none",action="continue"} 12
regmilter_verdicts_total{stage="helo",policy="none",result="none",action="continue"} 12
regmilter_verdicts_total{stage="mail",policy="spf",result="pass",action="continue"} 5
regmilter_verdicts_total{stage="mail",policy="registry",result="unregistered",action="reject"} 2
regmilter_verdicts_total{stage="mail",policy="spf",result="fail",action="reject"} 2
regmilter_verdicts_total{stage="mail",policy="registry",result="unregistered",action="continue"} 2
regmilter_verdicts_total{stage="mail",policy="spf",result="fail",action="continue"} 1
regmilter_verdicts_total{stage="rcpt",policy="bulk",result="opted-out",action="reject"} 1
regmilter_verdicts_total{stage="rcpt",policy="bulk",result="opted-out",action="continue"} 1
regmilter_verdicts_total{stage="rcpt",policy="none",result="none",action="continue"} 8
regmilter_would_reject_total{stage="mail",policy="registry",result="unregistered",action="reject"} 2
regmilter_would_reject_total{stage="mail",policy="spf",result="fail",action="reject"} 1
regmilter_would_reject_total{stage="rcpt",policy="bulk",result="opted-out",action="reject"} 1
regmilter_policy_results_total{policy="registry",result="listed"} 8
regmilter_policy_results_total{policy="registry",result="unlisted"} 16
regmilter_policy_results_total{policy="spf",result="pass"} 9
regmilter_policy_results_total{policy="spf",result="fail"} 3
regmilter_policy_results_total{policy="spf_helo",result="none"} 12
regmilter_stage_duration_seconds_count{stage="connect"} 12
regmilter_stage_duration_seconds_count{stage="helo"} 12
regmilter_stage_duration_seconds_count{stage="mail"} 12
regmilter_stage_duration_seconds_count{stage="rcpt"} 10
regmilter_stage_duration_seconds_count{stage="data"} 8
regmilter_stage_duration_seconds_bucket{stage="data",le="+Inf"} 8
regmilter_connections_open 0
EOF
    check "data answers: 8 messages (3 accepted, 1 bulk in enforce; 4 in observe)" \
        "$(grep -c '^regmilter_verdicts_total{stage="data"' "$MILTER_DIR/counts") $(awk '/^regmilter_verdicts_total\{stage="data"/ { n += $2 } END { print n }' "$MILTER_DIR/counts")" \
        "$(grep -c '^regmilter_verdicts_total{stage="data"' "$MILTER_DIR/counts") 8"
    check "no would-be refusal at end of message (the bulk one was counted at RCPT)" \
        "$(grep -c '^regmilter_would_reject_total{stage="data"' "$MILTER_DIR/counts")" 0
    # Every upstream lookup is a cache miss. A miss need not go upstream: the
    # worker's prefetch at MAIL FROM asks the registry when its answer is not
    # yet in the cache and joins the session's own lookup in flight (one
    # upstream query, two misses): at most one join per session (12) and zone.
    misses=$(value regmilter_dns_cache_misses_total "$MILTER_DIR/counts")
    upstream=$(awk '/^regmilter_dns_upstream_queries_total\{/ { n += $2 } END { print n + 0 }' "$MILTER_DIR/counts")
    zones=$(grep -c '^\[registry ' "$MILTER_CONF")
    check "DNS: every upstream lookup was a cache miss, the other misses joined one in flight ($upstream upstream, $misses misses)" \
        "$(awk -v u="$upstream" -v m="$misses" -v z="$zones" 'BEGIN { print (u > 0 && u <= m && m - u <= 12 * z) ? "yes" : "no" }')" yes
    check_match "DNS: misses and hits were counted" \
        "$misses $(value regmilter_dns_cache_hits_total "$MILTER_DIR/counts")" '[1-9]* [1-9]*'
    check "DNS: no upstream lookup failed" \
        "$(value 'regmilter_dns_upstream_queries_total{result="timeout"}' "$MILTER_DIR/counts")$(value 'regmilter_dns_upstream_queries_total{result="servfail"}' "$MILTER_DIR/counts")" 00
    promtool_ok "promtool check metrics accepts the text" "$MILTER_DIR/counts"
fi

# ---------------------------------------------------------------- query
if wanted query; then
    PHASE=query
    "$BUILD/regmilter-query" -c "$MILTER_CONF" --stats > "$MILTER_DIR/query.out" 2> "$MILTER_DIR/query.err"
    check "regmilter-query --stats: exit 0, nothing on stderr" "$? $(cat "$MILTER_DIR/query.err")" "0 "
    check "regmilter-query --stats: the same session count" \
        "$(value regmilter_sessions_total "$MILTER_DIR/query.out")" 12
    check "regmilter-query --stats: the same verdicts" \
        "$(grep '^regmilter_verdicts_total' "$MILTER_DIR/query.out")" "$(grep '^regmilter_verdicts_total' "$MILTER_DIR/counts")"
    promtool_ok "regmilter-query --stats | promtool check metrics" "$MILTER_DIR/query.out"
    printf '[milter]\nsocket = %s\n' "$MILTER_SOCKET" > "$MILTER_DIR/nostats.ini"
    "$BUILD/regmilter-query" -c "$MILTER_DIR/nostats.ini" --stats > "$MILTER_DIR/nostats.out" 2>&1
    check "without [stats] listen: exit 1 and why" "$? $(cat "$MILTER_DIR/nostats.out")" \
        "1 regmilter-query: [stats] listen is not set in $MILTER_DIR/nostats.ini: the milter serves no statistics"
    "$BUILD/regmilter-query" -c "$MILTER_CONF" --stats --ip 192.0.2.1 > /dev/null 2>&1
    check "--stats with --ip is bad usage" "$?" 2
fi

# ---------------------------------------------------------------- bad-http
# probe NAME WANT ARGS...: one http-probe to the endpoint; WANT is its status,
# or several separated by "|".
probe() {
    _name=$1 _want=$2
    shift 2
    _got=$("$BUILD/t/http-probe" --connect "$STATS" --timeout-ms 8000 "$@" | sed 's/ elapsed_ms=.*//')
    case "|$_want|" in
    *"|$_got|"*) ok "$PHASE: $_name" ;;
    *) not_ok "$PHASE: $_name" "got '$_got', want $_want" ;;
    esac
}

if wanted bad-http; then
    PHASE=bad-http
    probe "garbage: 400" "status=400" --send 'garbage\r\n'
    probe "binary (a TLS ClientHello): 400" "status=400" --send '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03'
    probe "oversized head: 431, or closed" "status=431|status=closed|status=reset" --send 'GET /' --pad 100000
    probe "header without end, oversized: 431, or closed" "status=431|status=closed|status=reset" \
        --send 'GET /metrics HTTP/1.1\r\nX-Long: ' --pad 9000
    probe "another path: 404" "status=404" --send 'GET /secrets HTTP/1.1\r\n\r\n'
    probe "another method: 405" "status=405" --send 'POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n'
    probe "HTTP/2 preface: 505 or 400" "status=505|status=400" --send 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'
    probe "HEAD /metrics: 200" "status=200" --send 'HEAD /metrics HTTP/1.0\r\n\r\n'
    probe "HTTP/1.0 without headers: 200" "status=200" --send 'GET /metrics HTTP/1.0\r\n\r\n'

    # A client that stops half-way (slowloris): answered 408 (or closed) after
    # the endpoint's 5 s, while mail goes on and /metrics still answers.
    "$BUILD/t/http-probe" --connect "$STATS" --send 'GET /metrics HTTP/1.1\r\nHost: sl' --timeout-ms 9000 \
        > "$MILTER_DIR/slow.out" 2>&1 &
    slow=$!
    at_exit "kill $slow"
    sleep 0.5
    sessions accepted 1 '^< insheader 0 Authentication-Results: mx.e2e.test; spf=pass'
    probe "/metrics while a client hangs: 200" "status=200" --send 'GET /metrics HTTP/1.1\r\n\r\n'
    wait "$slow"
    check_match "a client that stops half-way: 408 after 5 s" \
        "$(cat "$MILTER_DIR/slow.out")" "status=408 elapsed_ms=[5-6][0-9][0-9][0-9] *"

    # More idle clients than the endpoint takes (16): the others are closed at
    # once; mail is not held up.
    pids=""
    i=0
    while [ $i -lt 20 ]; do
        "$BUILD/t/http-probe" --connect "$STATS" --send 'GET /met' --timeout-ms 9000 \
            > "$MILTER_DIR/idle-$i.out" 2>&1 &
        pids="$pids $!"
        i=$((i + 1))
    done
    at_exit "kill $pids"
    sleep 1
    sessions accepted 1 '^< insheader 0 Authentication-Results: mx.e2e.test; spf=pass'
    for p in $pids; do wait "$p"; done
    # (Closed with the request unread: the client may see a reset instead.)
    check "20 idle clients at once: 16 get 408, the other 4 are closed unanswered" \
        "$(cat "$MILTER_DIR"/idle-*.out | sed 's/ .*//; s/=reset/=closed/' | sort | uniq -c | tr -s ' ' | tr '\n' ';')" \
        " 16 status=408; 4 status=closed;"

    status=$(scrape "$MILTER_DIR/after-bad")
    check "after the bad requests: 200" "$status" "status=200"
    check "after the bad requests: the 2 sessions meanwhile are counted" \
        "$(value regmilter_sessions_total "$MILTER_DIR/after-bad")" 14
    check "the milter is alive" "$(milter_running && echo alive)" alive
fi

# ---------------------------------------------------------------- startup
if wanted startup; then
    PHASE=startup
    [ -n "${MILTER_PID:-}" ] || { stats_config enforce; milter_start -P ""; }
    # A second milter on another socket but the same statistics port.
    sed -e "s|^socket = .*|socket = unix:$MILTER_DIR/second.sock|" "$MILTER_CONF" > "$MILTER_DIR/second.ini"
    timeout 10 "$BUILD/regmilter" -c "$MILTER_DIR/second.ini" -f -P "" > "$MILTER_DIR/second.log" 2>&1
    rc=$?
    check "a taken port: exit 1" "$rc" 1
    check_match "a taken port: the reason" "$(cat "$MILTER_DIR/second.log")" \
        "*[[]stats[]] listen $STATS: cannot bind: Address already in use*"
    check "a taken port: the new milter socket is not left behind" \
        "$([ -e "$MILTER_DIR/second.sock" ] && echo left || echo gone)" gone

    printf '[milter]\nsocket = unix:%s/wide.sock\nuser = %s\n[stats]\nlisten = 0.0.0.0:%s\n' \
        "$MILTER_DIR" "$(id -un)" "$STATS_PORT" > "$MILTER_DIR/wide.ini"
    wide=$("$BUILD/regmilter" -c "$MILTER_DIR/wide.ini" -t)
    check "-t passes a listen address that is not loopback" "$(printf '%s\n' "$wide" | tail -n 1)" \
        "$MILTER_DIR/wide.ini: OK"
    check_match "-t warns about a listen address that is not loopback" "$wide" \
        "*$MILTER_DIR/wide.ini: warning: [[]stats[]] listen = 0.0.0.0:$STATS_PORT is not a loopback address: anyone who can reach it reads the counters (use 127.0.0.1:PORT, or a firewall)*"
    printf '[stats]\nlisten = localhost:9100\n' > "$MILTER_DIR/name.ini"
    check "-t refuses a host name" "$("$BUILD/regmilter" -c "$MILTER_DIR/name.ini" -t; echo "rc=$?")" \
        "$MILTER_DIR/name.ini:2: [stats] listen: address \"localhost:9100\": not an IP address (use 192.0.2.1:5353 or [2001:db8::1]:5353), allowed: IP:PORT or [IPv6]:PORT; empty: off
rc=1"

    other=$(free_port) || exit 1
    stats_config enforce "$other"
    milter_reload || not_ok "reload with another listen" "no reload line in the log"
    check "a reload that moves listen: logged as taking effect at restart" \
        "$(grep -c 'reload: \[stats\] listen takes effect at restart' "$MILTER_LOG")" 1
    probe "the old port still serves" "status=200" --send 'GET /metrics HTTP/1.0\r\n\r\n'
    check "the new one is not opened" \
        "$("$BUILD/t/http-probe" --connect "127.0.0.1:$other" --send 'GET /metrics HTTP/1.0\r\n\r\n')" \
        "status=refused"
    stats_config enforce
fi

# ---------------------------------------------------------------- stopped
if wanted stopped; then
    PHASE=stopped
    [ -f "${MILTER_CONF:-}" ] || stats_config enforce
    milter_stop
    "$BUILD/regmilter-query" -c "$MILTER_CONF" --stats > "$MILTER_DIR/stopped.out" 2>&1
    check "regmilter-query --stats with the milter stopped: exit 1 and why" "$? $(cat "$MILTER_DIR/stopped.out")" \
        "1 regmilter-query: cannot read the milter's statistics: cannot connect to $STATS: Connection refused (is regmilter running with [stats] listen = $STATS of $MILTER_CONF?)"
fi

# Leak reports come at exit: stop first.
milter_stop
check "no sanitizer report from the milter (SANITIZE builds)" "$(milter_sanitizer_reports)" 0

finish
