#!/bin/sh
# state-redis: greylisting and rate-limit state shared through one real
# redis-server (started here on a loopback port and a unix socket, with a
# password) by separate state-probe processes acting as two MX hosts:
# host A over TCP, host B over the unix socket.
#   - the shared scenario table (the same one the unit tests run on
#     MemoryStore) passes on the Lua scripts, over TCP and over the socket
#   - a triplet first seen on A is early on B before the 2 s delay and
#     passes on both after it; a rate limit counts across both
#   - a wrong-type key, OOM (maxmemory 1mb + noeviction), a stopped server
#     (timeout), a wrong or missing password: error outcomes with a reason
#   - killing Redis under two watching hosts: one outage-began and one
#     outage-ended event each, and both recover by themselves after a restart
# Run alone: BUILD=$PWD/build sh t/integration/state-redis.sh
. "$(dirname "$0")/lib/redis-server.sh"

need_build t/state-probe
redis_start s3cret-pass
tmpdir_new T
A() { "$BUILD/t/state-probe" --redis "$REDIS_TCP" --password "$REDIS_PASSWORD" "$@"; }
B() { "$BUILD/t/state-probe" --redis "$REDIS_UNIX" --password "$REDIS_PASSWORD" "$@"; }

# --- one rule, two implementations: the scenario table on Redis ---------------
for via in A B; do
    $via conformance > "$T/conformance.$via" 2>&1
    rc=$?
    n=0
    while IFS= read -r line; do
        case $line in
        "ok - "*) ok "conformance $via: ${line#ok - }"; n=$((n + 1)) ;;
        "not ok - "*) not_ok "conformance $via" "${line#not ok - }" ;;
        *) not_ok "conformance $via" "unexpected output: $line" ;;
        esac
    done < "$T/conformance.$via"
    check "conformance $via exit status" "$rc" 0
    check_match "conformance $via ran the scenarios" "$n" "1[0-9]"
done

# --- two MX hosts, one triplet ------------------------------------------------
G="greylist --delay 2 --from sender@example.com --rcpt rcpt@example.net"
check_match "host A: first attempt is new" "$(A $G --ip 198.51.100.7)" \
    "greylist=new wait=2 network=198.51.100.0/24 passes=0"
check_match "host B (another address of the /24): early before the delay" "$(B $G --ip 198.51.100.8)" \
    "greylist=early wait=[12] network=198.51.100.0/24 passes=0"
sleep 2.2
check "host B: passes after the delay" "$(B $G --ip 198.51.100.8)" \
    "greylist=passed network=198.51.100.0/24 passes=1"
check "host A: passed too" "$(A $G --ip 198.51.100.7)" "greylist=passed network=198.51.100.0/24 passes=1"
check "IPv4-mapped client on host B: the same triplet" "$(B $G --ip ::ffff:198.51.100.9)" \
    "greylist=passed network=198.51.100.0/24 passes=1"
check "another /24: new" "$(A $G --ip 198.51.101.7)" "greylist=new wait=2 network=198.51.101.0/24 passes=0"

# --- a rate limit counted across both hosts (a fixed clock: one window) -------
R="rate --kind messages --limit 3 --window 3600 --now 1700000000 --ip 203.0.113.5"
check "rate 1 on A" "$(A $R)" "ratelimit=pass count=1 limit=3 network=203.0.113.0/24"
check "rate 2 on B" "$(B $R)" "ratelimit=pass count=2 limit=3 network=203.0.113.0/24"
check "rate 3 on A" "$(A $R)" "ratelimit=pass count=3 limit=3 network=203.0.113.0/24"
check "rate 4 on B is refused, naming the limit" "$(B $R)" \
    'ratelimit=limited count=4 limit=3 network=203.0.113.0/24 text="rate limit: 3 messages per 3600 s for 203.0.113.0/24"'
check "the next window passes" "$(A rate --kind messages --limit 3 --window 3600 --now 1700003600 --ip 203.0.113.5)" \
    "ratelimit=pass count=1 limit=3 network=203.0.113.0/24"

# --- keys: bounded, never an address ------------------------------------------
long=$(head -c 10000 /dev/zero | tr '\0' 'x')
keys=$(A key --ip 198.51.100.7 --from "$long@example.com" --rcpt rcpt@example.net)
check_match "a 10 kB sender gives a short key" "$keys" "triplet regmilter:t:[0-9a-f]*
client regmilter:c:[0-9a-f]*"
check "every key is the prefix, a kind and 32 hex digits" \
    "$(redis_cli --scan --pattern '*' | grep -c -v -E '^regmilter:[tcr]:[0-9a-f]{32}$')" 0
longest=$(redis_cli --scan --pattern '*' | awk '{ if (length($0) > m) m = length($0) } END { print m }')
check "the longest key is 44 bytes" "$longest" 44

# --- wrong type ---------------------------------------------------------------
key=$(A key --ip 192.0.2.1 --from a@example.com --rcpt b@example.net | sed -n 's/^triplet //p')
redis_cli SET "$key" "not a hash" > /dev/null
out=$(A greylist --ip 192.0.2.1 --from a@example.com --rcpt b@example.net)
check_match "a string where a hash should be: error, wrong-type" "$out" \
    'greylist=error network=192.0.2.0/24 passes=0 status=wrong-type reason="redis 127.0.0.1:*WRONGTYPE*"'
check_match "... a problem with one key, not an outage" "$out" "greylist=*"
check "other keys still work" "$(A greylist --ip 192.0.2.1 --from a@example.com --rcpt c@example.net)" \
    "greylist=new wait=300 network=192.0.2.0/24 passes=0"

# --- a full Redis: maxmemory 1mb, noeviction ----------------------------------
redis_cli EVAL "for i = 1, 3000 do redis.call('SET', 'junk' .. i, string.rep('x', 1000)) end return 1" 0 > /dev/null
redis_cli CONFIG SET maxmemory-policy noeviction > /dev/null
redis_cli CONFIG SET maxmemory 1mb > /dev/null
out=$(B greylist --ip 192.0.2.1 --from full@example.com --rcpt b@example.net)
check_match "OOM: greylist error, full, with Redis's reason" "$out" \
    'event=outage-began status=full reason=*
greylist=error network=192.0.2.0/24 passes=0 status=full reason="redis unix:*OOM command not allowed*"'
check_match "OOM: rate limit error, full" "$(B rate --ip 192.0.2.1 --limit 5 --kind recipients)" \
    "*ratelimit=error count=0 limit=5 network=192.0.2.0/24 status=full reason=*OOM*"
redis_cli CONFIG SET maxmemory 0 > /dev/null
check "memory back: the same check is new" "$(B greylist --ip 192.0.2.1 --from full@example.com --rcpt b@example.net)" \
    "greylist=new wait=300 network=192.0.2.0/24 passes=0"

# --- a stopped Redis: a timeout, within the timeout ---------------------------
kill -STOP "$REDIS_PID"
t0=$(now_ms)
out=$(A --timeout-ms 300 greylist --ip 192.0.2.1 --from slow@example.com --rcpt b@example.net)
t1=$(now_ms)
kill -CONT "$REDIS_PID"
check_match "stopped server: error, timeout" "$out" \
    "event=outage-began status=timeout reason=*
greylist=error network=192.0.2.0/24 passes=0 status=timeout reason=*"
elapsed=$((t1 - t0))
if [ "$elapsed" -lt 2000 ]; then ok "stopped server: the probe returned in $elapsed ms (timeout 300 ms)"
else not_ok "stopped server: bounded by the timeout" "took $elapsed ms"; fi

# --- passwords ----------------------------------------------------------------
check_match "wrong password: error with Redis's reason" \
    "$("$BUILD/t/state-probe" --redis "$REDIS_TCP" --password wrong greylist --ip 192.0.2.1 --from a@b --rcpt c@d)" \
    "*greylist=error * status=failed reason=\"AUTH at redis 127.0.0.1:$REDIS_PORT refused: WRONGPASS*"
check_match "no password: error saying the server wants one" \
    "$("$BUILD/t/state-probe" --redis "$REDIS_UNIX" greylist --ip 192.0.2.1 --from a@b --rcpt c@d)" \
    "*greylist=error * status=failed reason=*(the server wants a password)\""

# --- an outage under two hosts: one event each way, recovery by itself --------
A watch --ip 198.51.100.20 --interval-ms 20 --max-seconds 30 --after-recovery 5 > "$T/watch.A" 2>&1 &
WA=$!
B watch --ip 198.51.100.21 --interval-ms 20 --max-seconds 30 --after-recovery 5 > "$T/watch.B" 2>&1 &
WB=$!
at_exit "kill $WA $WB"
sleep 0.5
redis_kill
i=0
while [ $i -lt 100 ] && ! { grep -q outage-began "$T/watch.A" && grep -q outage-began "$T/watch.B"; }; do
    sleep 0.1
    i=$((i + 1))
done
sleep 1  # the hosts keep calling (and failing) during the outage
redis_restart || not_ok "redis restart" "did not start"
wait $WA; ra=$?
wait $WB; rb=$?
for h in A B; do
    sed "s/^/# host $h: /" "$T/watch.$h"
    eval "rc=\$r$(echo $h | tr AB ab)"
    check "host $h recovered by itself (watch exit status)" "$rc" 0
    check "host $h: one outage-began event" "$(grep -c '^event=outage-began' "$T/watch.$h")" 1
    check "host $h: one outage-ended event" "$(grep -c '^event=outage-ended' "$T/watch.$h")" 1
    check_match "host $h: the began event says why" "$(grep '^event=outage-began' "$T/watch.$h")" \
        "event=outage-began status=unreachable reason=*"
    check_match "host $h: errors during the outage, then calls that succeed" "$(tail -n 1 "$T/watch.$h")" \
        "calls=* ok=* errors=[1-9]* began=1 ended=1"
done
check "after the restart: the store works (and is empty)" "$(A $G --ip 198.51.100.7)" \
    "greylist=new wait=2 network=198.51.100.0/24 passes=0"

# --- contrib/redis-example.conf is a configuration Redis accepts --------------
# (its address, socket and directory replaced by this test's own)
EX_PORT=$(free_port)
mkdir "$T/example"
redis-server contrib/redis-example.conf --bind 127.0.0.1 --port "$EX_PORT" --unixsocket "$T/example/redis.sock" \
    --dir "$T/example" --daemonize no --logfile "$T/example/redis.log" --save "" &
EX_PID=$!
at_exit "kill -9 $EX_PID"
pw=$(sed -n 's/^requirepass //p' contrib/redis-example.conf)
i=0
while [ $i -lt 50 ] && [ "$(redis-cli -p "$EX_PORT" -a "$pw" --no-auth-warning PING 2>/dev/null)" != PONG ]; do
    sleep 0.1
    i=$((i + 1))
done
check "contrib/redis-example.conf: Redis starts with it, maxmemory-policy noeviction" \
    "$(redis-cli -p "$EX_PORT" -a "$pw" --no-auth-warning CONFIG GET maxmemory-policy | tail -n 1)" noeviction
check "contrib/redis-example.conf: the state store works with its password" \
    "$("$BUILD/t/state-probe" --redis "127.0.0.1:$EX_PORT" --password "$pw" $G --ip 198.51.100.7)" \
    "greylist=new wait=2 network=198.51.100.0/24 passes=0"
finish
