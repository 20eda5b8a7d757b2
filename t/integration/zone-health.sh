#!/bin/sh
# Registry zone health (RFC 5782 §5) with a real NSD and the real milter:
# an allow-list (dark.health.test, unregistered = reject) and a block-list
# (world.health.test, listed = reject), both checked every second
# (health_interval = 1). Healthy: the unregistered and the listed client
# are refused at MAIL FROM, no "broken" line. Then the allow-list goes dark
# (reloaded empty: no 127.0.0.2) and the block-list lists the world (a
# wildcard: 127.0.0.1 listed too): one "broken" line each, saying what
# failed, and no one is refused (on_error = accept); regmilter-query
# --trace says the same. Fixed again: one "healthy again" line each, and
# the refusals are back. Also: the milter started while a zone is dark
# logs it at once (the check at start).
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/dns-server.sh"
. "$(dirname "$0")/lib/milter.sh"

need_build regmilter regmilter-query t/milter-client
tmpdir_new work
serial=1

# zone NAME BODY: writes $work/NAME.zone (1 s TTLs: no answer outlives a phase
# in the milter's cache), its serial one higher than the last written.
zone() {
    serial=$((serial + 1))
    {
        printf '$ORIGIN %s.\n$TTL 1\n' "$1"
        printf '@ SOA ns.%s. hostmaster.%s. %s 3600 600 86400 1\n@ NS ns.%s.\nns A 127.0.0.1\n' "$1" "$1" "$serial" "$1"
        printf '%b' "$2"
    } > "$work/$1.zone.new"
    mv "$work/$1.zone.new" "$work/$1.zone"
}
TP6_DASHED=0000-0000-0000-0000-0000-ffff-7f00-0002
TP6_REV=2.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0
# Healthy: the test points, 198.51.100.7 and .9 registered, .9 block-listed.
healthy_dark="127-0-0-2 A 127.0.0.2\n$TP6_DASHED A 127.0.0.2\n198-51-100-7 A 127.0.0.2\n198-51-100-9 A 127.0.0.2\n"
healthy_world="2.0.0.127 A 127.0.0.2\n$TP6_REV A 127.0.0.2\n9.100.51.198 A 127.0.0.2\n"
zone dark.health.test "$healthy_dark"
zone world.health.test "$healthy_world"
zone spf.health.test "@ TXT \"v=spf1 ?all\"\n"
dns_server_start dark.health.test="$work/dark.health.test.zone" world.health.test="$work/world.health.test.zone" \
    spf.health.test="$work/spf.health.test.zone"

# nsd_reload: NSD reads the changed zone files (SIGHUP; it compares mtimes).
nsd_reload() {
    sleep 1.1  # a new mtime, to the second
    touch "$work"/*.zone
    kill -HUP "$DNS_PID"
}

MILTER_DIR=$work/milter
mkdir -p "$MILTER_DIR"
_milter_setup
cat > "$MILTER_CONF" <<CONF
[milter]
socket = $MILTER_SOCKET
user = $MILTER_USER
pid_file = $MILTER_DIR/regmilter.pid
authserv_id = mx.health.test
[resolver]
nameservers = $DNS_SERVER
timeout_ms = 500
retries = 1
stage_timeout_ms = 3000
[trust]
networks =
[registry dark]
zone = dark.health.test
meaning = registered
unregistered = reject
on_error = accept
health_interval = 1
[registry world]
zone = world.health.test
format = reversed
meaning = blocked
listed = reject
on_error = accept
health_interval = 1
[spf]
check_helo = no
CONF

# verdict IP: the milter's answer to MAIL FROM for a session from IP.
verdict() {
    printf 'negotiate\nmacro C j=mx.health.test\nconnect mx.example %s\nhelo mx.example\nmail <a@spf.health.test>\nquit\n' "$1" |
        "$BUILD/t/milter-client" --socket "$MILTER_SOCKET" --timeout-ms 8000 --max-seconds 20 |
        sed -n '/^> mail/{n;s/^< //;p;}' | cut -d' ' -f1-3
}
# verdicts: the answers for 198.51.100.7 (registered), .66 (unregistered), .9 (block-listed).
verdicts() {
    echo "$(verdict 198.51.100.7) / $(verdict 198.51.100.66) / $(verdict 198.51.100.9)"
}
lines() { grep -c "$1" "$MILTER_LOG"; }
has_lines() { [ "$(lines "$1")" -ge "$2" ]; }

milter_start
sleep 2  # two rounds of checks: healthy zones log nothing
check "healthy: verdicts (registered / unregistered / listed)" "$(verdicts)" \
    "continue / replycode 550 5.7.1 / replycode 550 5.7.1"
check "healthy: no broken line (IPv6 test points too)" "$(lines 'broken for')" 0
# The checks' thread (named regmilter-hlth, in the milter or its worker)
# blocks every signal: SigBlk has 1..31.
blocked=""
for _t in $(for _p in "$MILTER_PID" $(awk -v p="$MILTER_PID" '$4 == p { print $1 }' /proc/[0-9]*/stat 2>/dev/null); do echo /proc/"$_p"/task/*; done); do
    [ "$(cat "$_t/comm" 2>/dev/null)" = regmilter-hlth ] || continue
    _m=$(sed -n 's/^SigBlk:[[:space:]]*//p' "$_t/status")
    blocked=$(printf '%x' $((0x$_m & 0x7fffffff)))
done
check "the health thread blocks every signal" "$blocked" 7fffffff

# ---------------------------------------------------------------- broken
zone dark.health.test ""                          # gone dark: not even 127.0.0.2
zone world.health.test "* A 127.0.0.2\n"          # lists the world: 127.0.0.1 too
nsd_reload
wait_until 10 has_lines "broken for IPv4 clients" 2 || not_ok "broken: log lines" "none within 10 s"
check_match "dark: one line saying what failed" \
    "$(grep 'registry dark (zone dark.health.test): broken for IPv4' "$MILTER_LOG")" \
    "*test point 127.0.0.2 is not listed (nxdomain); on_error = accept applies to its lookups until it passes again*"
check_match "world: one line saying what failed" \
    "$(grep 'registry world (zone world.health.test): broken for IPv4' "$MILTER_LOG")" \
    "*test point 127.0.0.1 is listed (127.0.0.2): the zone lists every address*"
check "broken: verdicts (on_error = accept: no one refused)" "$(verdicts)" "continue / continue / continue"
check_match "broken: the decision line names the error" "$(grep 'ip=198.51.100.66 ' "$MILTER_LOG" | tail -n 1)" \
    "*registry=dark:error*"
sleep 2  # two more rounds of checks
check "broken: still one line per zone and family" "$(lines 'broken for IPv4')" 2
"$BUILD/regmilter-query" -c "$MILTER_CONF" --ip 198.51.100.66 --from a@spf.health.test --trace \
    > "$work/query.out" 2> "$work/query.err"
check_match "regmilter-query --trace reports the broken zone" \
    "$(grep 'health: registry dark' "$work/query.err" | head -n 1)" \
    "trace: health: registry dark (zone dark.health.test) for IPv4 clients: broken: test point 127.0.0.2 is not listed*"
check_match "regmilter-query: the same verdict as the milter" "$(grep '^verdict mail' "$work/query.out")" \
    "verdict mail: continue*"

# ---------------------------------------------------------------- fixed
zone dark.health.test "$healthy_dark"
zone world.health.test "$healthy_world"
nsd_reload
wait_until 10 has_lines "healthy again for IPv4 clients" 2 || not_ok "fixed: log lines" "none within 10 s"
check "fixed: one line per zone" "$(lines 'healthy again for IPv4')" 2
sleep 1.5  # answers of the broken zones (TTL 1 s) leave the cache
check "fixed: verdicts as before" "$(verdicts)" "continue / replycode 550 5.7.1 / replycode 550 5.7.1"

# ---------------------------------------------------------------- dark at start
milter_stop
zone dark.health.test ""
nsd_reload
sleep 0.5
milter_start
wait_until 10 has_lines "broken for IPv4 clients" 1 || true
check "start: a dark zone is found at once" "$(lines 'registry dark (zone dark.health.test): broken for IPv4')" 1
check "start: the unregistered client is not refused" "$(verdict 198.51.100.66)" "continue"
finish
