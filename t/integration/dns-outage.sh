#!/bin/sh
# DNS outage, end to end: the real milter, its resolver first answering
# SERVFAIL to everything, then dead (a port that drops every packet), then
# back (NSD on the same port). dns-resolver.sh bounds one query of the
# resolver and dns-garbage.sh its broken answers; here whole SMTP sessions,
# many at once, must each get the verdict the configuration defines within
# the bound it defines, and mail must flow again as soon as DNS is back:
#   verdict at MAIL FROM: the registry zone's on_error = tempfail gives
#     451 4.4.3; with on_error = accept, SPF's temperror action (tempfail)
#     gives 451 4.7.24; never a 5xx, never an accept
#   bound: MAIL FROM answered within [resolver] stage_timeout_ms (+1 s for
#     this loaded test machine); one query gives up after
#     timeout_ms x (retries + 1)
#   recovery: the first session after NSD answers again gets its normal
#     verdict (timeouts are never cached; SERVFAIL for failure_ttl, 5 s)
#   health: an outage says nothing about a zone's content: no zone is
#     called broken.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/dns-server.sh"
. "$(dirname "$0")/lib/milter.sh"

need_build regmilter t/milter-client t/dns-blackhole
tmpdir_new work
SESSIONS=${OUTAGE_SESSIONS:-20}

PORT=$(free_port) || exit 1
DNS_SERVER=127.0.0.1:$PORT
# resolver_start [--servfail]: the broken resolver on PORT (drops every packet without).
resolver_start() {
    "$BUILD/t/dns-blackhole" --port "$PORT" --max-seconds 120 "$@" > "$work/bh.port" 2> "$work/bh.err" &
    BH_PID=$!
    at_exit "kill $BH_PID"
    wait_until 5 test -s "$work/bh.port" || { echo "# dns-blackhole: $(cat "$work/bh.err")"; exit 1; }
}
resolver_stop() {
    kill "$BH_PID" 2>/dev/null
    wait "$BH_PID" 2>/dev/null
    : > "$work/bh.port"
}

milter_config enforce reject 2020-01-01 tempfail
# The expectations, from the configuration the milter runs with.
conf() { sed -n "s/^$1 *= *//p" "$MILTER_CONF" | head -n 1; }
TIMEOUT_MS=$(conf timeout_ms)
RETRIES=$(conf retries)
STAGE_MS=$(conf stage_timeout_ms)
QUERY_MS=$((TIMEOUT_MS * (RETRIES + 1)))
BOUND_MS=$((STAGE_MS + 1000))
SPF_TEMPERROR=$(conf temperror)
echo "# timeout_ms=$TIMEOUT_MS retries=$RETRIES: one query gives up after $QUERY_MS ms;" \
    "stage_timeout_ms=$STAGE_MS: MAIL FROM answered within $BOUND_MS ms"
# expected ON_ERROR: the MAIL FROM reply for a registered client with a passing SPF record.
expected() {
    if [ "$1" = tempfail ]; then
        echo "replycode 451 4.4.3"
    elif [ "$SPF_TEMPERROR" = tempfail ]; then
        echo "replycode 451 4.7.24"
    else
        echo "continue"
    fi
}

# sessions PHASE IP: SESSIONS sessions at once, each "MS MAIL-REPLY" in $work/PHASE.N.
sessions() {
    _i=1
    _pids=""
    while [ "$_i" -le "$SESSIONS" ]; do
        (
            _t0=$(now_ms)
            _r=$(printf 'negotiate\nmacro C j=mx.e2e.test\nconnect mx.spf.e2e.test %s\nhelo mx.spf.e2e.test\nmail <user@pass.spf.e2e.test>\nquit\n' "$2" |
                "$BUILD/t/milter-client" --socket "$MILTER_SOCKET" --timeout-ms 30000 --max-seconds 40 |
                sed -n '/^> mail/{n;s/^< //;p;}' | cut -d' ' -f1-3)
            echo "$(($(now_ms) - _t0)) ${_r:-none}" > "$work/$1.$_i"
        ) &
        _pids="$_pids $!"
        _i=$((_i + 1))
    done
    wait $_pids  # these only: the milter and the resolver are children too
}
# judge PHASE WANT: every session's verdict, and the slowest against the bound.
judge() {
    _bad=$(cat "$work/$1".* | cut -d' ' -f2- | grep -cvx "$2")
    check "$1: all $SESSIONS sessions answered '$2'" "$_bad" 0
    [ "$_bad" = 0 ] || cat "$work/$1".* | cut -d' ' -f2- | sort | uniq -c | sed 's/^/#   /'
    _max=$(cat "$work/$1".* | cut -d' ' -f1 | sort -n | tail -n 1)
    _min=$(cat "$work/$1".* | cut -d' ' -f1 | sort -n | head -n 1)
    echo "# $1: session times ${_min}..${_max} ms (bound $BOUND_MS ms)"
    [ "$_max" -le "$BOUND_MS" ] && ok "$1: every MAIL FROM within stage_timeout_ms + 1 s ($_max <= $BOUND_MS ms)" ||
        not_ok "$1: every MAIL FROM within stage_timeout_ms + 1 s" "slowest $_max ms, bound $BOUND_MS ms"
}

# ---------------------------------------------------------------- SERVFAIL
resolver_start --servfail
milter_start
sessions servfail 198.51.100.20
judge servfail "$(expected tempfail)"
servfail_end=$(now_ms)

# ---------------------------------------------------------------- dead
resolver_stop
resolver_start
sessions dead 198.51.100.21
judge dead "$(expected tempfail)"

# on_error = accept for the registry: SPF's temperror decides.
milter_config enforce reject 2020-01-01 accept
milter_reload || not_ok "reload" "no answer"
sessions dead-accept 198.51.100.30
judge dead-accept "$(expected accept)"

# ---------------------------------------------------------------- back
# SERVFAIL answers stay failure_ttl (5 s) in the cache, timeouts never: past
# that, mail must flow at the first session after the resolver answers again.
while [ $(($(now_ms) - servfail_end)) -lt 5500 ]; do sleep 0.2; done
resolver_stop
DNS_PORT_WANTED=$PORT dns_server_start reg.e2e.test="$FIX_E2E/reg.e2e.test.zone" \
    block.e2e.test="$FIX_E2E/block.e2e.test.zone" spf.e2e.test="$FIX_E2E/spf.e2e.test.zone"
back=$(now_ms)
first=""
tries=0
while [ $tries -lt 50 ]; do
    tries=$((tries + 1))
    SESSIONS=1 sessions back 198.51.100.7
    v=$(cut -d' ' -f2- "$work/back.1")
    [ -z "$first" ] && first=$v
    [ "$v" = continue ] && break
    sleep 0.1
done
recovered=$(($(now_ms) - back))
echo "# back: mail flows $recovered ms after NSD answered ($tries session(s); the first got '$first')"
check "back: the first session after the resolver returns gets its normal verdict" "$first" continue
[ "$recovered" -le 1000 ] && ok "back: recovery within 1 s ($recovered ms)" ||
    not_ok "back: recovery within 1 s" "$recovered ms"
sessions back-all 198.51.100.7
judge back-all continue

check "no zone called broken during the outage" "$(cat "$MILTER_DIR"/milter-*.log | grep -c 'broken for')" 0
milter_running && ok "the milter still runs" || not_ok "the milter still runs" "it died"
finish
