#!/bin/sh
# greylist-mx.sh: greylisting and rate limits of the real build/regmilter,
# driven over the milter protocol by build/t/milter-client, against NSD on
# loopback serving t/fixtures/e2e/'s zones (198.51.100.66 unregistered,
# 198.51.100.7 registered). No Postfix, no root needed.
#
# Phase "redis": two milters (host A over TCP, host B over the unix socket,
# as two MX hosts) share one redis-server started here:
#   - a triplet greylisted on A is early on B before the 2 s delay and
#     passes on B after it (and on A); a registered client is never delayed
#   - A remembers a pass (pass_cache, 60 s): its repeats do not ask Redis;
#     B (pass_cache = 0) asks every time
#   - a rate limit counts across both hosts
#   - regmilter-query --state-peek reads the shared state and writes nothing
#   - killing Redis mid-run: mail is accepted (on_error = accept), each host
#     logs exactly one outage line, decision lines never name the store; after
#     Redis returns both recover by themselves (one line each) and greylist again
#   - a key of the wrong type, a full Redis (OOM) and a silent one (SIGSTOP:
#     timeouts): accepted, with a line
# Phase "memory": one milter with the memory backend and a snapshot:
#   - a SIGHUP reload keeps the state; one that changes [state] says so
#   - the state survives a restart (SIGTERM saves the snapshot, start reads it)
#   - a malformed snapshot is logged as FILE:LINE and mail flows
#
# Run all:  BUILD=$PWD/build sh t/integration/greylist-mx.sh
# Run one:  BUILD=$PWD/build sh t/integration/greylist-mx.sh memory
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/dns-server.sh"
. "$here/lib/redis-server.sh"
FIX_E2E=$(cd "$here/../fixtures/e2e" && pwd)

need_build regmilter regmilter-query t/milter-client t/state-probe t/json-get
ONLY="${*:-redis memory}"
wanted() { case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }
tmpdir_new T
# GREYLIST_KEEP=DIR keeps a copy of everything (configs, logs, transcripts).
at_exit '[ -n "${GREYLIST_KEEP:-}" ] && rm -rf "$GREYLIST_KEEP" && cp -a "$T" "$GREYLIST_KEEP"'
USER_NAME=$(id -un)

dns_server_start reg.e2e.test="$FIX_E2E/reg.e2e.test.zone" block.e2e.test="$FIX_E2E/block.e2e.test.zone" \
    spf.e2e.test="$FIX_E2E/spf.e2e.test.zone"

# host_config NAME EXTRA: $T/NAME.ini, the end-to-end configuration with
# unregistered = greylist and EXTRA (ini text) appended.
host_config() {
    sed -e "s|@SOCKET@|unix:$T/$1.sock|" -e "s|@PIDFILE@||" -e "s|@MODE@|enforce|" \
        -e "s|@UNREGISTERED@|greylist|" -e "s|@ENFORCE_AFTER@|2020-01-01|" -e "s|@ON_ERROR@|accept|" \
        -e "s|@NAMESERVER@|$DNS_SERVER|" -e "s|^table = .*|table =|" -e "s|^user = .*|user = $USER_NAME|" \
        "$FIX_E2E/regmilter.ini.in" > "$T/$1.ini.new"
    printf '%s\n' "$2" >> "$T/$1.ini.new"
    mv "$T/$1.ini.new" "$T/$1.ini"
}

# host_start NAME: build/regmilter -f with $T/NAME.ini, its log in
# $T/NAME.log (appended over restarts); waits for a protocol answer. Sets
# PID_NAME. Stopped at exit.
host_start() {
    "$BUILD/regmilter" -c "$T/$1.ini" -f -P "" >> "$T/$1.log" 2>&1 &
    eval "PID_$1=$!"
    at_exit "kill -9 \$PID_$1"
    if ! wait_until 10 host_answers "$1"; then
        echo "# milter $1 did not start; its log:"
        sed 's/^/#   /' "$T/$1.log"
        exit 1
    fi
}
host_answers() {
    printf 'negotiate\n' | "$BUILD/t/milter-client" --socket "unix:$T/$1.sock" --timeout-ms 1000 2>/dev/null |
        grep -q '^< negotiated '
}
# host_stop NAME: SIGTERM and wait (10 s at most) until it is gone.
host_stop() {
    eval "_pid=\$PID_$1"
    kill "$_pid" 2>/dev/null
    wait_until 10 host_gone "$_pid" || kill -9 "$_pid"
    wait "$_pid" 2>/dev/null
}
host_gone() { ! kill -0 "$1" 2>/dev/null; }
# host_reload NAME: SIGHUP, then wait for one more "reloaded" line in its log.
host_reload() {
    _before=$(count_log "$1" "reloaded ")
    eval "kill -HUP \$PID_$1"
    wait_until 10 host_reloaded "$1" "$_before"
}
host_reloaded() { [ "$(count_log "$1" "reloaded ")" -gt "$2" ]; }

# send HOST IP FROM RCPT...: one transaction as an MTA sends it; prints the
# response to each RCPT (one line each, "continue" or "451 4.7.1 text") and
# "data: continue|..." for the end of message, or "mail: ..." when MAIL FROM
# was refused.
N=0
send() {
    _host=$1 _ip=$2 _from=$3
    shift 3
    N=$((N + 1))
    {
        echo "negotiate"
        echo "macro C j=mx.e2e.test"
        echo "connect mx.spf.e2e.test $_ip"
        echo "helo mx.spf.e2e.test"
        echo "macro M i=Q$N"
        echo "mail <$_from>"
        for _r in "$@"; do echo "rcpt <$_r>"; done
        printf 'header Subject test\neoh\neom\nquit\n'
    } > "$T/tx$N.script"
    "$BUILD/t/milter-client" --socket "unix:$T/$_host.sock" --timeout-ms 8000 --max-seconds 30 --as-mta \
        "$T/tx$N.script" > "$T/tx$N.out" 2>&1
    awk '
        /^> mail / { st = "mail" } /^> rcpt / { st = "rcpt" } /^> eom/ { st = "data" } /^> eoh/ { st = "eoh" }
        /^< (continue|accept|reject|tempfail|discard|replycode)/ {
            v = $2; if (v == "replycode") { v = $3; for (i = 4; i <= NF; i++) v = v " " $i }
            if (st == "rcpt") print v
            else if (st == "mail" && v != "continue") print "mail: " v
            else if (st == "data" || (st == "eoh" && v != "continue")) print "data: " v
        }' "$T/tx$N.out"
}
# The log lines of HOST that match a fixed string.
count_log() { grep -c -F -- "$2" "$T/$1.log"; }
# greylists_again HOST TAG: new triplets (TAG1@, TAG2@ ...) on HOST until one
# is greylisted (a host reconnects by itself after its backoff, at most 2 s);
# prints the last answer.
greylists_again() {
    _i=0 _got=""
    while [ $_i -lt 30 ]; do
        _i=$((_i + 1))
        _got=$(send "$1" 198.51.100.66 carol@pass.spf.e2e.test "$2$_i-$1@dest.test")
        [ "$_got" = "451 4.7.1 greylisted, please retry in 2 seconds" ] && break
        sleep 0.2
    done
    echo "$_got"
}

# ------------------------------------------------------------------ redis
if wanted redis; then
    redis_start
    case $(($(date +%s) % 86400)) in 864[0-9][0-9]) sleep 60 ;; esac  # not across a rate window's end
    grey="[greylist]
delay = 2
retry_window = 3600
auto_allow = 0
[ratelimit]
window = 86400
registered_messages = 3"
    host_config A "$grey
[state]
backend = redis
redis = $REDIS_TCP
timeout_ms = 300"
    host_config B "$grey
[state]
backend = redis
redis = $REDIS_UNIX
timeout_ms = 300
pass_cache = 0"
    host_start A
    host_start B

    check "A: an unregistered client's first attempt is greylisted at RCPT" \
        "$(send A 198.51.100.66 carol@pass.spf.e2e.test dave@dest.test)" \
        "451 4.7.1 greylisted, please retry in 2 seconds"
    check_match "B: the same triplet is early on the other host" \
        "$(send B 198.51.100.66 carol@pass.spf.e2e.test dave@dest.test)" \
        "451 4.7.1 greylisted, please retry in [12] second*"
    sleep 2.2
    check "B: after the delay the retry passes on the other host, and is delivered" \
        "$(send B 198.51.100.66 carol@pass.spf.e2e.test dave@dest.test)" "continue
data: continue"
    check "A: passed there too" "$(send A 198.51.100.66 carol@pass.spf.e2e.test dave@dest.test)" "continue
data: continue"
    # [state] pass_cache (default 60 s): A remembers the pass it just got from
    # Redis; the next three sends of the triplet do not ask Redis.
    evalsha() { redis_cli INFO commandstats | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),.*/\1/p'; }
    _before=$(evalsha)
    for i in 1 2 3; do send A 198.51.100.66 carol@pass.spf.e2e.test dave@dest.test > /dev/null; done
    check "pass_cache: three more sends of the passed triplet on A, no Redis call" "$(($(evalsha) - _before))" 0
    _before=$(evalsha)
    for i in 1 2 3; do send B 198.51.100.66 carol@pass.spf.e2e.test dave@dest.test > /dev/null; done
    check "pass_cache = 0: the same on B asks Redis each time" "$(($(evalsha) - _before))" 3
    check "A: another recipient is a new triplet" \
        "$(send A 198.51.100.66 carol@pass.spf.e2e.test erin@dest.test)" \
        "451 4.7.1 greylisted, please retry in 2 seconds"
    check "B: a registered client is never delayed" \
        "$(send B 198.51.100.7 carol@pass.spf.e2e.test frank@dest.test)" "continue
data: continue"
    check_match "the decision lines carry greylist=" "$(grep -c 'greylist=new ' "$T/A.log") $(grep -c 'greylist=passed ' "$T/B.log")" \
        "[1-9]* [1-9]*"

    # regmilter-query --state-peek reads the shared state and changes nothing.
    q() {
        "$BUILD/regmilter-query" -c "$T/A.ini" --ip 198.51.100.66 --helo mx.spf.e2e.test \
            --from carol@pass.spf.e2e.test --rcpt "$1" --json ${2:-} > "$T/q.json" 2> "$T/q.err"
        "$BUILD/t/json-get" greylist.recipients.0.outcome < "$T/q.json"
    }
    check "query --state-peek: the passed triplet is passed" "$(q dave@dest.test --state-peek)" passed
    check "query --state-peek: the store it read" "$("$BUILD/t/json-get" state.store < "$T/q.json")" \
        "redis $REDIS_TCP"
    check "query --state-peek: a new triplet is new" "$(q peek@dest.test --state-peek)" new
    check "query --state-peek: ... and still new (nothing was written)" "$(q peek@dest.test --state-peek)" new
    check "query without --state-peek: its own empty store" "$(q dave@dest.test)" new
    check "... which the milters never see: the triplet is new on A" \
        "$(send A 198.51.100.66 carol@pass.spf.e2e.test peek@dest.test)" \
        "451 4.7.1 greylisted, please retry in 2 seconds"

    # The registered client above sent 1 message (limit 3 per window, per /24).
    check "rate limit: message 2 on A" "$(send A 198.51.100.7 carol@pass.spf.e2e.test r1@dest.test)" "continue
data: continue"
    check "rate limit: message 3 on B" "$(send B 198.51.100.7 carol@pass.spf.e2e.test r2@dest.test)" "continue
data: continue"
    check "rate limit: message 4 on A is refused at MAIL FROM, naming the limit" \
        "$(send A 198.51.100.7 carol@pass.spf.e2e.test r3@dest.test)" \
        "mail: 451 4.7.1 rate limit: 3 messages per 86400 s for 198.51.100.0/24"
    check_match "... and the decision line says ratelimit=messages:limited" \
        "$(grep 'ratelimit=messages:limited' "$T/A.log" | tail -n 1)" "*reason=ratelimit:registered:messages*"

    # An outage: Redis killed mid-run.
    redis_kill
    for i in 1 2 3; do
        for h in A B; do
            check "Redis down, $h, message $i: accepted ungreylisted (on_error = accept)" \
                "$(send $h 198.51.100.66 carol@pass.spf.e2e.test "down$i-$h@dest.test")" "continue
data: continue"
        done
    done
    for h in A B; do
        check "Redis down: $h logged exactly one outage line" "$(count_log $h "unavailable (")" 1
        check_match "... naming the store and why" "$(grep -F "unavailable (" "$T/$h.log")" \
            "*state store redis * unavailable (unreachable): *until it answers, greylisting and rate limits let mail through*"
        check_match "... and the decision lines say greylist=error" "$(grep 'stage=data' "$T/$h.log" | tail -n 1)" \
            "*greylist=error *action=continue*"
        check "... which never name the store" \
            "$(grep 'stage=' "$T/$h.log" | grep -c -e "$REDIS_PORT" -e "redis.sock" -e 'redis ')" 0
    done
    redis_restart || not_ok "redis restart" "redis-server did not start again"
    # The hosts reconnect by themselves (after their backoff, at most 2 s):
    # greylisting works again when a new triplet is greylisted.
    for h in A B; do
        check "Redis back: $h greylists again by itself" "$(greylists_again $h back)" \
            "451 4.7.1 greylisted, please retry in 2 seconds"
        check "Redis back: $h logged exactly one recovery line" "$(count_log $h "answers again, after")" 1
        check "... and still one outage line" "$(count_log $h "unavailable (")" 1
    done
    # A key of the wrong type: that call follows on_error, with a line each
    # time; it is no outage.
    key=$("$BUILD/t/state-probe" --redis "$REDIS_TCP" key --ip 198.51.100.66 --from carol@pass.spf.e2e.test \
        --rcpt wrongtype@dest.test | sed -n 's/^triplet //p')
    redis_cli SET "$key" "not a hash" > /dev/null
    check "wrong type: accepted (on_error = accept)" \
        "$(send A 198.51.100.66 carol@pass.spf.e2e.test wrongtype@dest.test)" "continue
data: continue"
    check_match "wrong type: one line naming Redis's answer" "$(grep -F WRONGTYPE "$T/A.log")" "*state store redis *WRONGTYPE*"
    check "wrong type: no outage" "$(count_log A "unavailable (")" 1
    # A full Redis (maxmemory, noeviction): accept, one line for the outage, one when it ends.
    redis_cli EVAL "for i = 1, 3000 do redis.call('SET', 'junk' .. i, string.rep('x', 1000)) end return 1" 0 > /dev/null
    redis_cli CONFIG SET maxmemory-policy noeviction > /dev/null
    redis_cli CONFIG SET maxmemory 1mb > /dev/null
    for i in 1 2 3; do
        check "Redis full, message $i: accepted" "$(send B 198.51.100.66 carol@pass.spf.e2e.test "full$i@dest.test")" \
            "continue
data: continue"
    done
    check_match "Redis full: one more outage line on B, saying it is full" \
        "$(grep -F "unavailable (" "$T/B.log" | tail -n 1)" "*unavailable (full): *OOM*"
    check "Redis full: ... only one" "$(count_log B "unavailable (")" 2
    redis_cli CONFIG SET maxmemory 0 > /dev/null
    check "Redis with room again: greylisting again" \
        "$(send B 198.51.100.66 carol@pass.spf.e2e.test full1@dest.test)" "451 4.7.1 greylisted, please retry in 2 seconds"
    check "... and its recovery line" "$(count_log B "answers again, after")" 2
    # A Redis that stops answering (SIGSTOP): each call gives up after
    # timeout_ms (300 ms), then fails at once during the backoff.
    kill -STOP "$REDIS_PID"
    _start=$(date +%s)
    for i in 1 2 3; do
        check "Redis silent, message $i: accepted" "$(send A 198.51.100.66 carol@pass.spf.e2e.test "slow$i@dest.test")" \
            "continue
data: continue"
    done
    _took=$(($(date +%s) - _start))
    if [ "$_took" -le 6 ]; then ok "Redis silent: 3 messages answered in $_took s (timeout_ms = 300)"
    else not_ok "Redis silent: answers bounded by timeout_ms" "got $_took s for 3 messages, want at most 6"; fi
    check_match "Redis silent: one more outage line on A, saying timeout" \
        "$(grep -F "unavailable (" "$T/A.log" | tail -n 1)" "*unavailable (timeout): *"
    check "Redis silent: ... only one" "$(count_log A "unavailable (")" 2
    kill -CONT "$REDIS_PID"
    check "Redis answering again: A greylists again by itself" "$(greylists_again A cont)" \
        "451 4.7.1 greylisted, please retry in 2 seconds"
    check "... and its recovery line" "$(count_log A "answers again, after")" 2
    host_stop A
    host_stop B
fi

# ------------------------------------------------------------------ memory
if wanted memory; then
    # mem_config EXTRA: delay 5 s, EXTRA in [greylist], the memory backend with a snapshot.
    mem_config() {
        host_config M "[greylist]
delay = 5
$1
[state]
backend = memory
snapshot = $T/state
snapshot_interval = 10
$2"
    }
    mem_config "" ""
    host_start M
    first=$(date +%s)
    check "memory: first attempt greylisted" "$(send M 198.51.100.66 carol@pass.spf.e2e.test grace@dest.test)" \
        "451 4.7.1 greylisted, please retry in 5 seconds"
    # A reload that changes [greylist] keeps the store (and what it knows).
    mem_config "auto_allow = 0" ""
    host_reload M || not_ok "memory: reload" "no reload line in the log"
    check "memory: after a reload the triplet is still known (early, not new)" \
        "$(send M 198.51.100.66 carol@pass.spf.e2e.test grace@dest.test | sed 's/retry in [1-5] second.*/retry in N/')" \
        "451 4.7.1 greylisted, please retry in N"
    check "memory: ... and no [state] change was logged" "$(count_log M "[state] changed")" 0
    # A restart: SIGTERM saves the snapshot, the next start reads it.
    host_stop M
    check_match "memory: SIGTERM saved the snapshot" "$(grep -F 'state: saved' "$T/M.log" | tail -n 1)" \
        "*state: saved [1-9]* entries to $T/state in *"
    check "memory: the snapshot holds no address" "$(grep -c -e 198.51 -e dest.test "$T/state")" 0
    while [ "$(date +%s)" -le $((first + 5)) ]; do sleep 0.2; done
    host_start M
    check_match "memory: the start read the snapshot" "$(grep -F 'state: read' "$T/M.log" | tail -n 1)" \
        "*state: read [1-9]* entries from $T/state*"
    check "memory: after the restart the retry passes (not greylisted again)" \
        "$(send M 198.51.100.66 carol@pass.spf.e2e.test grace@dest.test)" "continue
data: continue"
    # A reload that changes [state]: a new store, said in the log, entries carried over.
    mem_config "auto_allow = 0" "max_entries = 5000"
    host_reload M || not_ok "memory: reload that changes [state]" "no reload line in the log"
    check_match "memory: a reload that changes [state] says so" "$(grep -F '[state] changed' "$T/M.log")" \
        "*reload: [[]state] changed: greylisting and rate limits now in memory (at most 5000 entries*; [1-9]* entries kept from the previous memory store"
    check "memory: ... and the passed triplet is still known" \
        "$(send M 198.51.100.66 carol@pass.spf.e2e.test grace@dest.test)" "continue
data: continue"
    host_stop M
    # A malformed snapshot: FILE:LINE in the log, empty state, mail flows.
    printf 'regmilter-state 1\nt 0123 1 2 3\nend 1\n' > "$T/state"
    host_start M
    check_match "memory: a malformed snapshot is refused with FILE:LINE" \
        "$(grep -F 'state snapshot refused' "$T/M.log")" "*$T/state:2: bad key \"0123\"*starting with empty state"
    first=$(date +%s)
    check "memory: ... and mail flows (the triplet is new again)" \
        "$(send M 198.51.100.66 carol@pass.spf.e2e.test grace@dest.test)" \
        "451 4.7.1 greylisted, please retry in 5 seconds"
    check "memory: ... a registered client passes" "$(send M 198.51.100.7 carol@pass.spf.e2e.test h@dest.test)" "continue
data: continue"
    # auto_allow = 1: once the triplet passed, its network is allowed, known
    # at MAIL FROM, so a recipient never seen passes at once.
    mem_config "auto_allow = 1" ""
    host_reload M || not_ok "memory: reload for auto_allow = 1" "no reload line in the log"
    while [ "$(date +%s)" -le $((first + 5)) ]; do sleep 0.2; done
    check "memory: the retry passes, and allows its network" \
        "$(send M 198.51.100.66 carol@pass.spf.e2e.test grace@dest.test)" "continue
data: continue"
    check "memory: a new recipient from the allowed network passes at once" \
        "$(send M 198.51.100.66 carol@pass.spf.e2e.test ivan@dest.test)" "continue
data: continue"
    host_stop M
    # The registered client's and the allowed network's RCPT TO can only
    # continue: the worker said so after their MAIL FROM and the master
    # answered them at once; the greylisted client's were the worker's to answer.
    check_match "memory: two RCPT TO (the registered client's, the allowed network's) answered by the master" \
        "$(grep -F 'RCPT TO answered at once' "$T/M.log" | tail -n 1)" "*, 2 RCPT TO answered at once on the worker's hint"
fi
finish
