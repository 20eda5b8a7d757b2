#!/bin/sh
# master.sh: the master and worker processes of build/regmilter, on a unix
# socket, driven over the milter protocol by build/t/milter-burst (many
# sessions at once, each one timed and classified) against NSD on loopback
# serving the zones of t/fixtures/e2e/. Every session is the "registered"
# one: each step is answered continue, the message gets its headers.
#   (a) a packet libmilter misreads ("Cj\0" and four others), each followed
#       by a valid session, 100 times: every valid session answered, the
#       bad connection closed, no connection refused, the worker never dies;
#   (b) SIGKILL of the worker in the middle of sessions: those sessions get
#       451 4.3.0 from the master, none sees a refused connection or a
#       silent close, sessions begun during the restart and after it are
#       served by the new worker;
#   (c) 100 SIGHUPs under load: no session fails, the worker is never
#       restarted, the configuration is reloaded; then SIGTERM during load,
#       MASTER_TERM_ROUNDS times (default 100): sessions begun before it
#       end normally, later ones are refused at the socket, exit 0 within
#       drain_timeout + 5 s;
#   (d) SIGTERM with an idle session and one stuck in a transaction: exit
#       within drain_timeout + 5 s, both closed.
#
# Run: BUILD=$PWD/build sh t/integration/master.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/dns-server.sh"
. "$here/lib/milter.sh"

need_build regmilter t/milter-client t/milter-burst
tmpdir_new MILTER_DIR
dns_server_start reg.e2e.test="$FIX_E2E/reg.e2e.test.zone" block.e2e.test="$FIX_E2E/block.e2e.test.zone" \
    spf.e2e.test="$FIX_E2E/spf.e2e.test.zone"

DRAIN=2
config() {
    milter_config enforce reject 2020-01-01 tempfail
    sed -i "s/^\[milter\]\$/[milter]\ndrain_timeout = $DRAIN/" "$MILTER_CONF"
}
config
burst() {
    "$BUILD/t/milter-burst" --socket "$MILTER_SOCKET" --ip 198.51.100.7 --helo mx.spf.e2e.test \
        --from '<alice@pass.spf.e2e.test>' --rcpt '<bob@dest.test>' --timeout-ms 10000 --max-seconds 120 "$@"
}
# field NAME LINE: the value of NAME=... in a milter-burst line.
field() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
worker_pid() { grep -o 'worker pid [0-9]* up' "$MILTER_LOG" | tail -n 1 | grep -o '[0-9][0-9]*'; }
_worker_up_after() { [ "$(grep -c 'worker pid [0-9]* up' "$MILTER_LOG")" -gt "$1" ]; }
_worker_reaped() { grep -q "worker pid $1 was killed" "$MILTER_LOG"; }

milter_start -P ""
wait_until 10 _worker_up_after 0
first_worker=$(worker_pid)
check_match "a worker is up" "$first_worker" "[0-9]*"

# ------------------------------------------------------------------ (a)
# name|hex bytes after a good negotiation
while IFS='|' read -r name hex; do
    [ -n "$name" ] || continue
    n=100
    [ "$name" = "Cj" ] || n=20
    out=$(burst --sessions $n --concurrency 1 --bad-first "$hex")
    echo "# $name: $out"
    check "(a) $name then a valid session, $n times: every valid session complete, none refused" \
        "$(field complete "$out") $(field refused "$out")" "$n 0"
    check "(a) $name: the bad connection is closed each time" "$(field bad_closed "$out")" "$n"
done <<EOF
Cj|0000000444436a00
connect without its address|0000000943636c69656e740034
zero length|0000000043
unknown command|000000015a
length over the limit|8000000142
EOF
check "(a) the worker never died" "$(worker_pid)" "$first_worker"
check "(a) every refusal logged" "$(grep -c 'refused milter packet' "$MILTER_LOG")" 180
check "(a) the master is alive" "$(milter_running && echo alive)" alive

# ------------------------------------------------------------------ (b)
ups=$(grep -c 'worker pid [0-9]* up' "$MILTER_LOG")
burst --sessions 20 --pause-ms 300 > "$MILTER_DIR/b-during.out" &
during=$!
sleep 1
kill -KILL "$first_worker"
# Sessions begun while the new worker starts: held, then served. They begin
# once the master has reaped the old worker (its death line; the new one
# starts 100 ms later): kill(2) returns before the process is gone, and a
# connection its listening socket still took in that window is one of the
# sessions open at the kill (answered 451 4.3.0), not one begun during the
# restart (under ASan the teardown of a killed worker takes tens of ms).
i=0
until _worker_reaped "$first_worker" || [ $i -ge 1000 ]; do
    sleep 0.01
    i=$((i + 1))
done
ups_at_restart_burst=$(grep -c 'worker pid [0-9]* up' "$MILTER_LOG")
burst --sessions 20 > "$MILTER_DIR/b-restart.out" &
restart=$!
wait $during
wait $restart
out=$(head -n 1 "$MILTER_DIR/b-during.out")
echo "# during: $out"
check "(b) sessions open at the kill: none refused, none closed silently, none timed out" \
    "$(field refused "$out") $(field eof "$out") $(field timeout "$out")" "0 0 0"
check "(b) sessions open at the kill: each complete or answered 451 4.3.0, some of them so" \
    "$(($(field complete "$out") + $(field internal "$out"))) $([ "$(field internal "$out")" -gt 0 ] && echo some)" \
    "20 some"
out=$(head -n 1 "$MILTER_DIR/b-restart.out")
echo "# begun during the restart: $out"
check "(b) sessions begun during the restart: all complete, none refused" \
    "$(field complete "$out") $(field refused "$out")" "20 0"
check "(b) they began after the old worker was reaped and before the new one was up" \
    "$(_worker_reaped "$first_worker" && echo reaped) $ups_at_restart_burst" "reaped $ups"
wait_until 10 _worker_up_after "$ups"
check_match "(b) the master logs the death" "$(grep "worker pid $first_worker " "$MILTER_LOG" | tail -n 1)" \
    "*worker pid $first_worker was killed by signal 9*"
second_worker=$(worker_pid)
check "(b) a new worker" "$([ "$second_worker" != "$first_worker" ] && echo new)" new
out=$(burst --sessions 20)
check "(b) after the restart: all complete" "$(field complete "$out") $(field refused "$out")" "20 0"

# ------------------------------------------------------------------ (c)
reloads=$(grep -c 'reloaded .*configuration generation' "$MILTER_LOG")
burst --sessions 300 --concurrency 10 --pause-ms 10 > "$MILTER_DIR/c-hup.out" &
load=$!
i=0
start=$(now_ms)
while [ $i -lt 100 ] && [ $(($(now_ms) - start)) -lt 30000 ]; do
    kill -HUP "$MILTER_PID"
    sleep 0.02
    i=$((i + 1))
done
wait $load
out=$(head -n 1 "$MILTER_DIR/c-hup.out")
echo "# SIGHUP storm ($i signals): $out"
check "(c) $i SIGHUPs under load: 300 of 300 sessions complete" "$(field complete "$out")" 300
milter_wait_log 'reloaded .*configuration generation' "$reloads"
check "(c) the configuration was reloaded" \
    "$([ "$(grep -c 'reloaded .*configuration generation' "$MILTER_LOG")" -gt "$reloads" ] && echo yes)" yes
check "(c) no worker restart, the master alive" "$(worker_pid) $(milter_running && echo alive)" \
    "$second_worker alive"
check "(c) no signal reached the worker" "$(grep -c 'ignored: signals go to the master' "$MILTER_LOG")" 0
milter_stop

rounds=${MASTER_TERM_ROUNDS:-100}
good=0
round=0
start=$(now_ms)
while [ $round -lt "$rounds" ] && [ $(($(now_ms) - start)) -lt 400000 ]; do
    round=$((round + 1))
    milter_start -P "" > /dev/null
    burst --sessions 20 --concurrency 5 --pause-ms 20 > "$MILTER_DIR/term.out" &
    load=$!
    sleep 0.2
    t0=$(now_ms)
    kill -TERM "$MILTER_PID"
    wait "$MILTER_PID"
    status=$?
    took=$(($(now_ms) - t0))
    wait $load
    out=$(head -n 1 "$MILTER_DIR/term.out")
    verdict="status=$status eof=$(field eof "$out") timeout=$(field timeout "$out") internal=$(field internal "$out") tempfail=$(field tempfail "$out") sum=$(($(field complete "$out") + $(field refused "$out")))"
    if [ "$verdict" = "status=0 eof=0 timeout=0 internal=0 tempfail=0 sum=20" ] && [ $took -lt $(((DRAIN + 5) * 1000)) ]; then
        good=$((good + 1))
    else
        echo "# round $round: $verdict took ${took}ms: $out"
        tail -n 15 "$MILTER_LOG" | sed 's/^/#   /'
    fi
    MILTER_PID=""
done
check "(c) SIGTERM during load: $round of $round rounds as documented (exit 0 in time, begun sessions end, later ones refused)" \
    "$good" "$round"
check "(c) every round ran" "$round" "$rounds"

# ------------------------------------------------------------------ (d)
milter_start -P ""
cat > "$MILTER_DIR/idle.script" <<EOF
negotiate
connect mx.spf.e2e.test 198.51.100.7
helo mx.spf.e2e.test
read
sleep 30000
EOF
cat > "$MILTER_DIR/stuck.script" <<EOF
negotiate
connect mx.spf.e2e.test 198.51.100.7
helo mx.spf.e2e.test
mail <alice@pass.spf.e2e.test>
sleep 30000
EOF
"$BUILD/t/milter-client" --socket "$MILTER_SOCKET" --timeout-ms 40000 --max-seconds 40 "$MILTER_DIR/idle.script" \
    > "$MILTER_DIR/idle.out" 2>&1 &
idle=$!
"$BUILD/t/milter-client" --socket "$MILTER_SOCKET" --timeout-ms 40000 --max-seconds 40 "$MILTER_DIR/stuck.script" \
    > "$MILTER_DIR/stuck.out" 2>&1 &
stuck=$!
sleep 1
t0=$(now_ms)
kill -TERM "$MILTER_PID"
wait "$MILTER_PID"
status=$?
took=$(($(now_ms) - t0))
MILTER_PID=""
echo "# SIGTERM with an idle and a stuck session: exit after ${took} ms (drain_timeout = $DRAIN s)"
check "(d) exit 0 within drain_timeout + 5 s" "$status $([ $took -lt $(((DRAIN + 5) * 1000)) ] && echo in-time)" \
    "0 in-time"
check "(d) not before drain_timeout" "$([ $took -ge $((DRAIN * 1000)) ] && echo waited)" waited
kill "$idle" "$stuck" 2>/dev/null
wait "$idle" "$stuck" 2>/dev/null
check_match "(d) the drain closed the idle session" "$(grep -c 'closing the session(s) between transactions' "$MILTER_LOG")" 1
check_match "(d) the session stuck in a transaction was closed at the end" \
    "$(grep -c 'exiting with 1 session(s) still open' "$MILTER_LOG")" 1
last_worker=$(worker_pid)
_gone() { ! kill -0 "$1" 2>/dev/null; }
wait_until 3 _gone "$last_worker"
check "(d) the worker is gone too" "$(kill -0 "$last_worker" 2>/dev/null && echo left || echo gone)" gone
check "no sanitizer report" "$(milter_sanitizer_reports)" 0
finish
