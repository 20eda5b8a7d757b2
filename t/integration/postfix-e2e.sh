#!/bin/sh
# postfix-e2e.sh: regmilter in front of a real Postfix, end to end.
# Starts on loopback ports chosen at run time: NSD with the zones of
# t/fixtures/e2e/, build/regmilter on a unix socket, a private Postfix
# instance (postfix -c DIR, its own queue and data directories) whose smtpd
# uses the milter and relays what it accepts to smtp-sink, which writes each
# delivery to a file. SMTP sessions present client addresses with XCLIENT;
# the test asserts the exact replies and who finally got each message.
# Sessions at the milter protocol level (a client without an address, an MTA
# dropping the connection, an MTA without SMFIF_DELRCPT) use miltertest(8).
# Needs root (Postfix's master runs as root), postfix, smtp-sink, nsd, drill;
# exits 77 (skipped) with the reason when one is missing.
# TAP: "ok - NAME" / "not ok - NAME: got X, want Y"; exit 1 when anything failed.
# Run alone: sudo BUILD=$PWD/build sh t/integration/postfix-e2e.sh   (E2E_KEEP=DIR: see below)
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
FIX=$top/t/fixtures/e2e
. "$here/lib/dns-server.sh"
. "$here/lib/smtp.sh"

[ "$(id -u)" = 0 ] || skip "needs root: postfix -c DIR start runs the master as root"
need_cmd postfix postconf /usr/sbin/smtp-sink
need_build regmilter t/smtp-client
id postfix >/dev/null 2>&1 || skip "no postfix user (install the postfix package)"
DAEMON_DIR=$(postconf -dh daemon_directory)
[ -x "$DAEMON_DIR/smtpd" ] || skip "postfix daemons not found in $DAEMON_DIR"

tmpdir_new T
# E2E_KEEP=DIR keeps a copy of everything (configs, logs, sessions, deliveries) for debugging.
at_exit '[ -n "${E2E_KEEP:-}" ] && rm -rf "$E2E_KEEP" && cp -a "$T" "$E2E_KEEP"'
chmod 755 "$T"
mkdir -p "$T/pf" "$T/queue" "$T/data" "$T/sink" "$T/s" "$T/milter"
# $T/milter belongs to the milter's user, as systemd's RuntimeDirectory does:
# after leaving root it can still remove its socket and pid file.
chown postfix "$T/data" "$T/sink" "$T/milter"

# ---------------------------------------------------------------- DNS
dns_server_start reg.e2e.test="$FIX/reg.e2e.test.zone" block.e2e.test="$FIX/block.e2e.test.zone" \
    spf.e2e.test="$FIX/spf.e2e.test.zone"

# ---------------------------------------------------------------- milter
cp "$FIX/bulk-table" "$T/bulk-table"
SOCK=$T/milter/regmilter.sock
MLOG=""          # the log of the milter running now: $T/milter-1.log, -2, ...
MLOG_N=0
MILTER_PID=""
at_exit 'kill_milter'
kill_milter() {
    [ -n "$MILTER_PID" ] || return 0
    kill "$MILTER_PID" 2>/dev/null
    _i=0
    while kill -0 "$MILTER_PID" 2>/dev/null && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
    kill -9 "$MILTER_PID" 2>/dev/null
    MILTER_PID=""
}

# write_config MODE UNREGISTERED ENFORCE_AFTER ON_ERROR
write_config() {
    sed -e "s|@SOCKET@|unix:$SOCK|" -e "s|@PIDFILE@|$T/milter/regmilter.pid|" \
        -e "s|@MODE@|$1|" -e "s|@UNREGISTERED@|$2|" -e "s|@ENFORCE_AFTER@|$3|" \
        -e "s|@ON_ERROR@|$4|" -e "s|@NAMESERVER@|$DNS_SERVER|" -e "s|@BULK_TABLE@|$T/bulk-table|" \
        "$FIX/regmilter.ini.in" > "$T/regmilter.ini.new"
    mv "$T/regmilter.ini.new" "$T/regmilter.ini"
}

start_milter() {
    MLOG_N=$((MLOG_N + 1))
    MLOG=$T/milter-$MLOG_N.log
    "$BUILD/regmilter" -c "$T/regmilter.ini" -f > "$MLOG" 2>&1 &
    MILTER_PID=$!
    # "starting:" is logged once the socket listens (a stale socket file may
    # exist before that, so its presence proves nothing).
    _i=0
    while ! grep -q 'starting: ' "$MLOG" && [ $_i -lt 100 ]; do
        kill -0 "$MILTER_PID" 2>/dev/null || break
        sleep 0.1
        _i=$((_i + 1))
    done
    if ! grep -q 'starting: ' "$MLOG" || [ ! -S "$SOCK" ]; then
        echo "# milter did not start; its log:"
        sed 's/^/#   /' "$MLOG"
        exit 1
    fi
    echo "# regmilter pid $MILTER_PID on unix:$SOCK"
}

GENERATION=1
# reload: SIGHUP, then wait for the log line of the next generation (or a refusal).
#   reload expect-refusal: wait for the next "keeping configuration generation" line instead.
# GENERATION becomes the generation the reload installed (a bulk table change
# noticed by the milter itself also counts a generation, without a signal).
reload() {
    _done=$(grep -c "reloaded .*configuration generation" "$MLOG")
    _refused=$(grep -c "keeping configuration generation" "$MLOG")
    kill -HUP "$MILTER_PID"
    _i=0
    while [ $_i -lt 100 ]; do
        if [ "${1:-}" = expect-refusal ]; then
            [ "$(grep -c "keeping configuration generation" "$MLOG")" -gt "$_refused" ] && return 0
        elif [ "$(grep -c "reloaded .*configuration generation" "$MLOG")" -gt "$_done" ]; then
            GENERATION=$(grep -o "reloaded .*configuration generation [0-9]*" "$MLOG" | tail -n 1 | grep -o '[0-9]*$')
            return 0
        fi
        sleep 0.05
        _i=$((_i + 1))
    done
    echo "# reload: no answer in the milter log"
    return 1
}

# ---------------------------------------------------------------- sink
SINK_PORT=$(free_port) || exit 1
/usr/sbin/smtp-sink -u postfix -d "$T/sink/%Y%m%d%H%M%S." 127.0.0.1:"$SINK_PORT" 64 > "$T/sink.log" 2>&1 &
SINK_PID=$!
at_exit "kill $SINK_PID"
wait_smtp "$SINK_PORT"

# ---------------------------------------------------------------- postfix
SMTP_PORT=$(free_port) || exit 1
# XCLIENT ADDR=IPV6:... needs Postfix's IPv6 support, which needs a host with IPv6.
if grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6 2>/dev/null; then
    INET_PROTOCOLS=all
else
    INET_PROTOCOLS=ipv4
fi
cat > "$T/pf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $T/queue
data_directory = $T/data
daemon_directory = $DAEMON_DIR
command_directory = $(postconf -dh command_directory)
meta_directory = $(postconf -dh meta_directory)
shlib_directory = $(postconf -dh shlib_directory)
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = $T
maillog_file = $T/maillog
myhostname = mx.e2e.test
mydomain = e2e.test
myorigin = e2e.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = $INET_PROTOCOLS
# Only the test script's own address: the milter's trust bypass is tested on purpose.
mynetworks = 127.0.0.1/32
relayhost = [127.0.0.1]:$SINK_PORT
relay_domains = static:ALL
smtpd_relay_restrictions = reject_unauth_destination
smtp_dns_support_level = disabled
smtpd_authorized_xclient_hosts = 127.0.0.1
smtpd_recipient_limit = 2000
alias_maps =
alias_database =
local_recipient_maps =
smtpd_milters = unix:$SOCK
milter_default_action = tempfail
# Should a delivery to the sink ever be deferred, retry at once, not in minutes.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
EOF
cat > "$T/pf/master.cf" <<EOF
127.0.0.1:$SMTP_PORT inet n - n - - smtpd
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
proxymap  unix - - n - - proxymap
smtp      unix - - n - - smtp
relay     unix - - n - - smtp
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
EOF

# ---------------------------------------------------------------- sessions
# session NAME ADDR HELO < commands
#   EHLO, XCLIENT ADDR=ADDR HELO=HELO, EHLO HELO, the commands, QUIT.
#   Output (commands and replies) in $T/s/NAME.out.
session() {
    {
        echo "EHLO client.e2e.test"
        echo "XCLIENT ADDR=$2 NAME=[UNAVAILABLE] HELO=$3"
        echo "EHLO $3"
        cat
        echo "QUIT"
    } > "$T/s/$1.smtp"
    timeout 120 "$BUILD/t/smtp-client" 127.0.0.1 "$SMTP_PORT" "$T/s/$1.smtp" > "$T/s/$1.out" 2>&1
}
# raw_session NAME < commands   (no XCLIENT, no QUIT added)
raw_session() {
    cat > "$T/s/$1.smtp"
    timeout 120 "$BUILD/t/smtp-client" 127.0.0.1 "$SMTP_PORT" "$T/s/$1.smtp" > "$T/s/$1.out" 2>&1
}

# ---------------------------------------------------------------- deliveries
wait_queue_empty() {
    _i=0
    while [ $_i -lt 300 ]; do
        if [ -z "$(find "$T/queue/incoming" "$T/queue/active" "$T/queue/deferred" "$T/queue/maildrop" \
            -type f 2>/dev/null | head -n 1)" ]; then
            return 0
        fi
        sleep 0.1
        _i=$((_i + 1))
    done
    echo "# queue not empty after 30 s:"
    find "$T/queue/deferred" -type f | head -n 3 | sed 's/^/#   /'
    return 1
}

# ================================================================ start
write_config enforce reject 2020-01-01 tempfail
"$BUILD/regmilter" -c "$T/regmilter.ini" -t > "$T/check.out" 2>&1
check "regmilter -t accepts the test configuration" "$?" 0
printf '[milter]\nmode = sometimes\n[spf]\nfail = maybe\n' > "$T/broken.ini"
"$BUILD/regmilter" -c "$T/broken.ini" -t > "$T/check-broken.out" 2>&1
check "regmilter -t on a broken file: exit 1" "$?" 1
check "regmilter -t prints every problem with file:line" \
    "$(grep -c "^$T/broken.ini:[0-9]*: " "$T/check-broken.out")" 2
start_milter
postfix -c "$T/pf" check > "$T/pf-check.log" 2>&1 || { cat "$T/pf-check.log"; tail "$T/maillog"; exit 1; }
postfix -c "$T/pf" start > "$T/pf-start.log" 2>&1 || { cat "$T/pf-start.log"; tail "$T/maillog"; exit 1; }
at_exit "postfix -c '$T/pf' stop"
wait_smtp "$SMTP_PORT"
echo "# postfix -c $T/pf on 127.0.0.1:$SMTP_PORT, smtp-sink on 127.0.0.1:$SINK_PORT"

check_match "socket mode 0660, owned by postfix" "$(stat -c '%a %U' "$SOCK")" "660 postfix"
check "milter dropped root to the configured user" \
    "$(awk '/^Uid:/ { print $2 "/" $3 }' "/proc/$MILTER_PID/status")" "$(id -u postfix)/$(id -u postfix)"
check "pid file holds the milter's pid" "$(cat "$T/milter/regmilter.pid" 2>/dev/null)" "$MILTER_PID"

# ---------------------------------------------------------------- policy scenarios
session registered 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<alice@pass.spf.e2e.test>
RCPT TO:<bob@dest.test>
$(message e2e-registered "Authentication-Results: mx.e2e.test; spf=pass smtp.mailfrom=forged.example")
EOF
check "registered + SPF pass: MAIL" "$(code registered 'MAIL FROM:<alice@pass.spf.e2e.test>')" "250 2.1.0"
check "registered + SPF pass: RCPT" "$(code registered 'RCPT TO:<bob@dest.test>')" "250 2.1.5"
check "registered + SPF pass: DATA" "$(code registered '.')" "250 2.0.0"

session unregistered 198.51.100.66 mx.spf.e2e.test <<EOF
MAIL FROM:<carol@pass.spf.e2e.test>
EOF
check "unregistered, unregistered = reject: MAIL" "$(code unregistered 'MAIL FROM:<carol@pass.spf.e2e.test>')" "550 5.7.1"
check_match "unregistered reject text names the address and where to register" \
    "$(reply unregistered 'MAIL FROM:<carol@pass.spf.e2e.test>')" \
    "550 5.7.1 198.51.100.66 is not a registered mail server (not in reg.e2e.test); see https://reg.e2e.test/register"

session blocked 198.51.100.9 mx.spf.e2e.test <<EOF
MAIL FROM:<dave@pass.spf.e2e.test>
EOF
check "block-listed: MAIL" "$(code blocked 'MAIL FROM:<dave@pass.spf.e2e.test>')" "550 5.7.1"

if [ "$INET_PROTOCOLS" = all ]; then
session ipv6 IPV6:2001:db8::7 mx.spf.e2e.test <<EOF
MAIL FROM:<v6@pass6.spf.e2e.test>
RCPT TO:<bob@dest.test>
$(message e2e-ipv6)
EOF
check "IPv6 client, registered (dashed IPv6 name) + SPF ip6 pass: MAIL" \
    "$(code ipv6 'MAIL FROM:<v6@pass6.spf.e2e.test>')" "250 2.1.0"
check "IPv6 client: DATA" "$(code ipv6 '.')" "250 2.0.0"
session ipv6-unregistered IPV6:2001:db8::66 mx.spf.e2e.test <<EOF
MAIL FROM:<v6@pass6.spf.e2e.test>
EOF
check_match "IPv6 client, unregistered: refused with its address in the text" \
    "$(reply ipv6-unregistered 'MAIL FROM:<v6@pass6.spf.e2e.test>')" "550 5.7.1 2001:db8::66 is not a registered mail server*"
session ipv4-mapped IPV6:::ffff:198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<alice@pass.spf.e2e.test>
EOF
check "IPv4-mapped IPv6 client is the IPv4 client (registered): MAIL" \
    "$(code ipv4-mapped 'MAIL FROM:<alice@pass.spf.e2e.test>')" "250 2.1.0"
else
    echo "# no IPv6 on this host: the IPv6 client sessions are not run"
fi

session spf-fail 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<eve@fail.spf.e2e.test>
EOF
check "SPF fail: MAIL" "$(code spf-fail 'MAIL FROM:<eve@fail.spf.e2e.test>')" "550 5.7.23"
check_match "SPF fail reply carries the exp= explanation" "$(reply spf-fail 'MAIL FROM:<eve@fail.spf.e2e.test>')" \
    "550 5.7.23 *198.51.100.7 is not one of fail.spf.e2e.test's mail servers*"

session spf-fail-percent 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<eve@pct.spf.e2e.test>
EOF
check "a % in the reply text reaches the client as one % (escaped for smfi_setreply)" \
    "$(reply spf-fail-percent 'MAIL FROM:<eve@pct.spf.e2e.test>')" \
    "550 5.7.23 100% of pct.spf.e2e.test's mail comes from elsewhere"

session softfail 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<frank@soft.spf.e2e.test>
RCPT TO:<bob@dest.test>
$(message e2e-softfail)
EOF
check "SPF softfail: MAIL accepted" "$(code softfail 'MAIL FROM:<frank@soft.spf.e2e.test>')" "250 2.1.0"
check "SPF softfail: DATA accepted" "$(code softfail '.')" "250 2.0.0"

session temperror 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<gina@temp.spf.e2e.test>
EOF
check "SPF temperror: MAIL" "$(code temperror 'MAIL FROM:<gina@temp.spf.e2e.test>')" "451 4.7.24"

session permerror 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<hank@perm.spf.e2e.test>
EOF
check "SPF permerror, permerror = reject: MAIL" "$(code permerror 'MAIL FROM:<hank@perm.spf.e2e.test>')" "550 5.7.24"

session bulk-sender 198.51.100.8 bulk-mx.spf.e2e.test <<EOF
MAIL FROM:<news@pass.spf.e2e.test>
RCPT TO:<optout@dest.test>
RCPT TO:<optin@dest.test>
$(message e2e-bulk-sender)
EOF
check "registry bulk sender: MAIL" "$(code bulk-sender 'MAIL FROM:<news@pass.spf.e2e.test>')" "250 2.1.0"
check "registry bulk sender: opted-out RCPT refused" "$(code bulk-sender 'RCPT TO:<optout@dest.test>')" "550 5.7.1"
check "registry bulk sender: opted-in RCPT accepted" "$(code bulk-sender 'RCPT TO:<optin@dest.test>')" "250 2.1.5"
check "registry bulk sender: DATA" "$(code bulk-sender '.')" "250 2.0.0"

session precedence 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<list@pass.spf.e2e.test>
RCPT TO:<optin@dest.test>
RCPT TO:<optout@dest.test>
RCPT TO:<bob@dest.test>
$(message e2e-precedence "Precedence: bulk")
EOF
check "Precedence: bulk: RCPT optout accepted at envelope time" "$(code precedence 'RCPT TO:<optout@dest.test>')" "250 2.1.5"
check "Precedence: bulk: DATA accepted" "$(code precedence '.')" "250 2.0.0"

session precedence-all 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<list@pass.spf.e2e.test>
RCPT TO:<optout@dest.test>
RCPT TO:<optout2@dest.test>
$(message e2e-precedence-all "Precedence: bulk")
EOF
check "Precedence: bulk, every recipient opted out: DATA" "$(code precedence-all '.')" "550 5.7.1"

session trusted 192.0.2.10 mx.spf.e2e.test <<EOF
MAIL FROM:<ivan@fail.spf.e2e.test>
RCPT TO:<bob@dest.test>
$(message e2e-trusted)
EOF
check "trusted network bypass (unregistered, SPF fail): MAIL" "$(code trusted 'MAIL FROM:<ivan@fail.spf.e2e.test>')" "250 2.1.0"
check "trusted network bypass: DATA" "$(code trusted '.')" "250 2.0.0"

# SMTP AUTH, presented with XCLIENT LOGIN: Postfix hands it to the milter as
# {auth_authen} (asked for with smfi_setsymlist at MAIL FROM).
raw_session authenticated <<'EOF'
EHLO client.e2e.test
XCLIENT ADDR=198.51.100.66 NAME=[UNAVAILABLE] HELO=mx.spf.e2e.test LOGIN=alice
EHLO mx.spf.e2e.test
MAIL FROM:<alice@fail.spf.e2e.test>
QUIT
EOF
check "SMTP-authenticated client (unregistered, SPF fail) is trusted: MAIL" \
    "$(code authenticated 'MAIL FROM:<alice@fail.spf.e2e.test>')" "250 2.1.0"
check_match "authenticated trust logged" "$(grep 'from=<alice@fail.spf.e2e.test>' "$MLOG" | head -n 1)" \
    "*trust=authenticated*"

# XCLIENT ADDR=[UNAVAILABLE]: Postfix 3.7 then sends the milter family "4"
# with the address text "unknown", which libmilter itself refuses (it drops
# the milter connection before any callback runs): Postfix answers with
# milter_default_action. regmilter's own unknown-client path (family
# SMFIA_UNKNOWN, as for local submissions) is driven with miltertest below.
session unknown-client '[UNAVAILABLE]' mx.spf.e2e.test <<EOF
MAIL FROM:<judy@fail.spf.e2e.test>
EOF
check "XCLIENT ADDR=[UNAVAILABLE]: Postfix's milter_default_action (libmilter refuses the address)" \
    "$(code unknown-client 'MAIL FROM:<judy@fail.spf.e2e.test>')" "451 4.7.1"
if command -v miltertest >/dev/null 2>&1; then
    miltertest -s "$FIX/unknown-client.lua" -D "socket=unix:$SOCK" > "$T/s/miltertest.out" 2>&1
    check "miltertest, client without an address: script ran" "$?" 0
    check "client without an address (unknown_client = trust): MAIL continues" \
        "$(sed -n 's/^mail=//p' "$T/s/miltertest.out")" "continue"
    check "client without an address: end of message accepted" "$(sed -n 's/^eom=//p' "$T/s/miltertest.out")" "continue"
    check "client without an address: Authentication-Results added" \
        "$(sed -n 's/^ar-header=//p' "$T/s/miltertest.out")" "yes"
    miltertest -s "$FIX/internal-error.lua" -D "socket=unix:$SOCK" > "$T/s/internal-error.out" 2>&1
    check "internal error (MTA without SMFIF_DELRCPT): on_internal_error answer" \
        "$(sed -n 's/^eom=//p;s/^reply=//p' "$T/s/internal-error.out" | tr '\n' ' ')" "replycode 451 4.3.0 "
    check_match "internal error logged with the queue id" \
        "$(grep 'error="internal' "$MLOG" | head -n 1)" "*regmilter\[[0-9]*\]: id=MTINTERNAL1 stage=data error=\"internal: *"
    miltertest -s "$FIX/abrupt-close.lua" -D "socket=unix:$SOCK" > "$T/s/abrupt.out" 2>&1
    check "MTA drops the milter connection after each stage: all rounds ran" \
        "$(grep -c '^dropped-after=' "$T/s/abrupt.out")" 6
    check "MTA drops the milter connection: the milter still answers" \
        "$(sed -n 's/^alive=//p' "$T/s/abrupt.out")" "yes"
else
    echo "# miltertest not installed: the unknown-client milter session is not run"
fi

session transactions 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<eve@fail.spf.e2e.test>
MAIL FROM:<alice@pass.spf.e2e.test>
RCPT TO:<optout@dest.test>
RSET
MAIL FROM:<alice@pass.spf.e2e.test>
RCPT TO:<bob@dest.test>
$(message e2e-transaction-1)
MAIL FROM:<>
RCPT TO:<bob@dest.test>
$(message e2e-transaction-2)
EOF
check "several transactions: SPF fail refused" "$(code transactions 'MAIL FROM:<eve@fail.spf.e2e.test>')" "550 5.7.23"
check "several transactions: next MAIL FROM judged afresh" "$(code transactions 'MAIL FROM:<alice@pass.spf.e2e.test>')" "250 2.1.0"
check "several transactions: after RSET" "$(code transactions 'MAIL FROM:<alice@pass.spf.e2e.test>' 2)" "250 2.1.0"
check "several transactions: first message" "$(code transactions '.' 1)" "250 2.0.0"
check "several transactions: null sender, second message" "$(code transactions '.' 2)" "250 2.0.0"

# ---------------------------------------------------------------- bad input
long_local=$(head -c 10240 /dev/zero | tr '\0' 'a')
session bad-long 198.51.100.30 mx.spf.e2e.test <<EOF
MAIL FROM:<$long_local@pass.spf.e2e.test>
MAIL FROM:<alice@pass.spf.e2e.test>
RCPT TO:<bob@dest.test>
$(message e2e-after-long)
EOF
check_match "10 kB MAIL FROM: a defined refusal" "$(code bad-long "MAIL FROM:<$long_local@pass.spf.e2e.test>")" "5[0-9][0-9] *"
check "10 kB MAIL FROM: the session goes on" "$(code bad-long '.')" "250 2.0.0"

{
    echo "MAIL FROM:<alice@pass.spf.e2e.test>"
    echo "RCPT TO:<bob@dest.test>"
    echo "DATA"
    echo "Subject: e2e-long-header"
    printf 'X-Long: start'
    i=0
    while [ $i -lt 100 ]; do printf '\n\t%s' "$(head -c 98 /dev/zero | tr '\0' 'x')"; i=$((i + 1)); done
    echo ""
    echo "References: <$long_local@example>"
    echo ""
    echo "body"
    echo "."
} | session bad-long-header 198.51.100.30 mx.spf.e2e.test
check "10 kB header and a 10 kB header line: DATA" "$(code bad-long-header '.')" "250 2.0.0"

session bad-nul 198.51.100.30 mx.spf.e2e.test <<'EOF'
MAIL FROM:<nul\x00byte@pass.spf.e2e.test>
MAIL FROM:<alice@pass.spf.e2e.test>
RCPT TO:<bob\x00@dest.test>
RCPT TO:<bob@dest.test>
DATA
Subject: e2e-nul
X-Nul: a\x00b

body with a NUL \x00 here
.
EOF
check_match "NUL in MAIL FROM: a defined reply" "$(code bad-nul 'MAIL FROM:<nul\x00byte@pass.spf.e2e.test>')" "[245][0-9][0-9] *"
check_match "NUL in a header and the body: a defined reply" "$(code bad-nul '.')" "[245][0-9][0-9] *"

# smtp-sink does not offer SMTPUTF8, so the UTF-8 envelope is only checked
# for its replies; the 8-bit message goes to an ASCII recipient.
session bad-8bit 198.51.100.30 mx.spf.e2e.test <<'EOF'
MAIL FROM:<j\xc3\xb6rg@pass.spf.e2e.test> SMTPUTF8
RCPT TO:<m\xc3\xbcller@dest.test>
RSET
MAIL FROM:<alice@pass.spf.e2e.test>
RCPT TO:<bob@dest.test>
DATA
Subject: e2e-8bit
X-Eight: caf\xc3\xa9 \xff\xfe
Precedence: bulk \xe9

8-bit body \xe9\xff
.
EOF
check "8-bit MAIL FROM (SMTPUTF8)" "$(code bad-8bit 'MAIL FROM:<j\xc3\xb6rg@pass.spf.e2e.test> SMTPUTF8')" "250 2.1.0"
check "8-bit RCPT TO (SMTPUTF8)" "$(code bad-8bit 'RCPT TO:<m\xc3\xbcller@dest.test>')" "250 2.1.5"
check "8-bit headers and body: DATA" "$(code bad-8bit '.')" "250 2.0.0"

raw_session bad-helo <<'EOF'
HELO
EHLO
EHLO mx.spf.e2e.test
QUIT
EOF
check_match "empty HELO refused by Postfix" "$(reply bad-helo 'HELO')" "501 *"
check_match "empty EHLO refused by Postfix" "$(reply bad-helo 'EHLO')" "501 *"
check "EHLO after the empty ones" "$(reply bad-helo 'EHLO mx.spf.e2e.test')" "250 CHUNKING"

{
    echo "MAIL FROM:<many@pass.spf.e2e.test>"
    i=1
    while [ $i -le 1000 ]; do echo "RCPT TO:<r$i@dest.test>"; i=$((i + 1)); done
    message e2e-1000-rcpts
} | session many-rcpts 198.51.100.30 mx.spf.e2e.test
check "1,000 RCPTs: every one accepted" "$(grep -c '^250 2.1.5' "$T/s/many-rcpts.out")" 1000
check "1,000 RCPTs: DATA" "$(code many-rcpts '.')" "250 2.0.0"

session disconnect-data 198.51.100.30 mx.spf.e2e.test <<'EOF'
MAIL FROM:<alice@pass.spf.e2e.test>
RCPT TO:<bob@dest.test>
DATA
!close
Subject: e2e-disconnect
.
EOF
session disconnect-rcpt 198.51.100.30 mx.spf.e2e.test <<'EOF'
MAIL FROM:<alice@pass.spf.e2e.test>
RCPT TO:<bob@dest.test>
!close
EOF
session after-disconnect 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<alice@pass.spf.e2e.test>
RCPT TO:<bob@dest.test>
$(message e2e-after-disconnect)
EOF
check "after clients disconnected mid-transaction the milter still answers" "$(code after-disconnect '.')" "250 2.0.0"
check_match "milter alive after the bad input" "$(kill -0 "$MILTER_PID" 2>&1 && echo alive)" "alive"

# ---------------------------------------------------------------- deliveries so far
wait_queue_empty
check "registered + SPF pass: delivered" "$(delivered_to e2e-registered)" "bob@dest.test"
ar=$(header_line e2e-registered Authentication-Results)
check_match "registered + SPF pass: Authentication-Results" "$ar" "Authentication-Results: mx.e2e.test;*spf=pass*"
check_match "registered: dnswl=pass for the registry zone (RFC 8904)" "$ar" "*dnswl=pass*reg.e2e.test*"
check "forged Authentication-Results for our authserv_id removed" \
    "$(headers_of e2e-registered | grep -c 'forged.example')" 0
check_match "Received-SPF present" "$(header_line e2e-registered Received-SPF)" "Received-SPF: [Pp]ass*"
ar_line=$(headers_of e2e-registered | grep -n '^Authentication-Results:' | head -n 1 | cut -d: -f1)
rcv_line=$(headers_of e2e-registered | grep -n '^Received: from mx.spf.e2e.test' | head -n 1 | cut -d: -f1)
check "Authentication-Results above Postfix's Received" "$([ -n "$ar_line" ] && [ -n "$rcv_line" ] && [ "$ar_line" -lt "$rcv_line" ] && echo above)" "above"
if [ "$INET_PROTOCOLS" = all ]; then
    check "IPv6 client: delivered" "$(delivered_to e2e-ipv6)" "bob@dest.test"
    check_match "IPv6 client: dnswl=pass policy.ip in Authentication-Results" \
        "$(header_line e2e-ipv6 Authentication-Results)" "*spf=pass*dnswl=pass dns.zone=reg.e2e.test*"
fi
check "softfail: delivered" "$(delivered_to e2e-softfail)" "bob@dest.test"
check_match "softfail: tagged" "$(header_line e2e-softfail X-Regmilter)" "X-Regmilter: *softfail*"
check "registry bulk sender: delivered only to the opted-in recipient" "$(delivered_to e2e-bulk-sender)" "optin@dest.test"
check "Precedence: bulk: delivered only to those who accept bulk" "$(delivered_to e2e-precedence)" "bob@dest.test optin@dest.test"
check "Precedence: bulk, all opted out: delivered to nobody" "$(delivered_to e2e-precedence-all)" ""
check "trusted network: delivered" "$(delivered_to e2e-trusted)" "bob@dest.test"
check "several transactions: both messages delivered" \
    "$(delivered_to e2e-transaction-1) / $(delivered_to e2e-transaction-2)" "bob@dest.test / bob@dest.test"
check "1,000 RCPTs: delivered to all" "$(delivered_to e2e-1000-rcpts | wc -w)" 1000
check "disconnect during DATA: nothing delivered" "$(delivered_to e2e-disconnect)" ""
check "10 kB header: delivered" "$(delivered_to e2e-long-header)" "bob@dest.test"
check "NUL bytes: delivered" "$(delivered_to e2e-nul)" "bob@dest.test"
check "8-bit headers and body: delivered" "$(delivered_to e2e-8bit)" "bob@dest.test"

# ---------------------------------------------------------------- reload while a session is open
rm -f "$T/ready" "$T/go"
session open-across-reload 198.51.100.66 mx.spf.e2e.test <<EOF &
!touch $T/ready
!wait-file $T/go
MAIL FROM:<carol@pass.spf.e2e.test>
EOF
open_pid=$!
_i=0
while [ ! -f "$T/ready" ] && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
write_config enforce tag 2020-01-01 tempfail
reload
check "SIGHUP reload: new configuration generation" "$GENERATION" 2
session tag 198.51.100.66 mx.spf.e2e.test <<EOF
MAIL FROM:<carol@pass.spf.e2e.test>
RCPT TO:<bob@dest.test>
$(message e2e-unregistered-tag)
EOF
touch "$T/go"
wait $open_pid
check "session opened before the reload keeps its snapshot (reject)" \
    "$(code open-across-reload 'MAIL FROM:<carol@pass.spf.e2e.test>')" "550 5.7.1"
check "unregistered, unregistered = tag (after reload): MAIL" "$(code tag 'MAIL FROM:<carol@pass.spf.e2e.test>')" "250 2.1.0"
check "unregistered = tag: DATA" "$(code tag '.')" "250 2.0.0"
check_match "milter process survived SIGHUP" "$(kill -0 "$MILTER_PID" 2>&1 && echo alive)" "alive"

write_config enforce reject 2099-01-01 tempfail
reload
session before-enforce 198.51.100.66 mx.spf.e2e.test <<EOF
MAIL FROM:<carol@pass.spf.e2e.test>
RCPT TO:<bob@dest.test>
$(message e2e-before-enforce)
EOF
check "unregistered before enforce_after: MAIL accepted" "$(code before-enforce 'MAIL FROM:<carol@pass.spf.e2e.test>')" "250 2.1.0"
check "before enforce_after: DATA" "$(code before-enforce '.')" "250 2.0.0"

write_config observe reject 2020-01-01 tempfail
reload
session observe 198.51.100.66 mx.spf.e2e.test <<EOF
MAIL FROM:<carol@fail.spf.e2e.test>
RCPT TO:<bob@dest.test>
$(message e2e-observe)
EOF
check "observe mode: unregistered + SPF fail accepted: MAIL" "$(code observe 'MAIL FROM:<carol@fail.spf.e2e.test>')" "250 2.1.0"
check "observe mode: DATA" "$(code observe '.')" "250 2.0.0"

printf '[milter]\nmode = sometimes\n[nonsense\n' > "$T/regmilter.ini"
reload expect-refusal
check_match "broken configuration refused on reload" "$(grep -c 'reload refused' "$MLOG")" "[1-9]*"
session after-broken 198.51.100.66 mx.spf.e2e.test <<EOF
MAIL FROM:<carol@fail.spf.e2e.test>
EOF
check "after a refused reload the old configuration (observe) stays" \
    "$(code after-broken 'MAIL FROM:<carol@fail.spf.e2e.test>')" "250 2.1.0"

wait_queue_empty
check "unregistered = tag: delivered" "$(delivered_to e2e-unregistered-tag)" "bob@dest.test"
check_match "unregistered = tag: X-Regmilter header" "$(header_line e2e-unregistered-tag X-Regmilter)" \
    "X-Regmilter: *unregistered*198.51.100.66*"
check_match "before enforce_after: tagged instead" "$(header_line e2e-before-enforce X-Regmilter)" \
    "X-Regmilter: *198.51.100.66*"
check "observe mode: delivered" "$(delivered_to e2e-observe)" "bob@dest.test"
check_match "observe mode: would-reject header" "$(header_line e2e-observe X-Regmilter)" "X-Regmilter: would reject*"

# ---------------------------------------------------------------- bulk table reload
write_config enforce reject 2020-01-01 tempfail
echo "late-optout@dest.test reject" >> "$T/bulk-table"
reload
session bulk-reload 198.51.100.8 bulk-mx.spf.e2e.test <<EOF
MAIL FROM:<news@pass.spf.e2e.test>
RCPT TO:<late-optout@dest.test>
EOF
check "SIGHUP reloads the bulk table: a new opt-out is refused at RCPT" \
    "$(code bulk-reload 'RCPT TO:<late-optout@dest.test>')" "550 5.7.1"
echo "late-optout@dest.test accept" >> "$T/bulk-table"
reload expect-refusal
check "a bulk table with a repeated key is refused on reload" \
    "$(grep 'reload refused' "$MLOG" | grep -v 'bulk table reload refused' | grep -c 'bulk-table:[0-9]*: duplicate key')" 1
sed -i '$d' "$T/bulk-table"

# The table file changing is enough: the milter looks at it every 2 s.
# wait_log PATTERN COUNT: until the milter log has more than COUNT lines matching PATTERN (10 s at most)
wait_log() {
    _i=0
    while [ "$(grep -c "$1" "$MLOG")" -le "$2" ] && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
    [ "$(grep -c "$1" "$MLOG")" -gt "$2" ]
}
# entries: the number of entries in the table file now
entries() { grep -cv '^[[:space:]]*\(#.*\)\{0,1\}$' "$T/bulk-table"; }
sleep 1.1   # a new mtime even on file systems with 1 s stamps
echo "auto-optout@dest.test reject" >> "$T/bulk-table"
_want="bulk table .* changed: $(entries) entries"
if wait_log "$_want" "$(grep -c "$_want" "$MLOG")"; then ok "a changed bulk table file is reloaded without a signal"
else not_ok "a changed bulk table file is reloaded without a signal" "no '$_want' line in 10 s"; fi
session bulk-auto 198.51.100.8 bulk-mx.spf.e2e.test <<EOF
MAIL FROM:<news@pass.spf.e2e.test>
RCPT TO:<auto-optout@dest.test>
EOF
check "automatic table reload: the new opt-out is refused at RCPT" \
    "$(code bulk-auto 'RCPT TO:<auto-optout@dest.test>')" "550 5.7.1"
_refused=$(grep -c "bulk table reload refused: .*bulk-table:[0-9]*:" "$MLOG")
echo "this line has no verdict" >> "$T/bulk-table"
if wait_log "bulk table reload refused: .*bulk-table:[0-9]*:" "$_refused"; then
    ok "a broken table file is refused with FILE:LINE in the log"
else
    not_ok "a broken table file is refused with FILE:LINE in the log" "no refusal line in 10 s"
fi
session bulk-auto-kept 198.51.100.8 bulk-mx.spf.e2e.test <<EOF
MAIL FROM:<news@pass.spf.e2e.test>
RCPT TO:<auto-optout@dest.test>
RCPT TO:<bob@dest.test>
EOF
check "broken table file: the old table stays in force (opt-out refused)" \
    "$(code bulk-auto-kept 'RCPT TO:<auto-optout@dest.test>')" "550 5.7.1"
check "broken table file: the old table stays in force (others accepted)" \
    "$(code bulk-auto-kept 'RCPT TO:<bob@dest.test>')" "250 2.1.5"
sed -i '$d' "$T/bulk-table"
sed -i '$d' "$T/bulk-table"
_want="bulk table .* changed: $(entries) entries"
wait_log "$_want" "$(grep -c "$_want" "$MLOG")" || echo "# the repaired bulk table was not reloaded in 10 s"

# ---------------------------------------------------------------- DNS server stopped
write_config enforce reject 2020-01-01 tempfail
reload
dns_server_stop
session dns-down-registry 198.51.100.20 mx.spf.e2e.test <<EOF
MAIL FROM:<kim@pass2.spf.e2e.test>
EOF
check "DNS down, registry on_error = tempfail: MAIL" "$(code dns-down-registry 'MAIL FROM:<kim@pass2.spf.e2e.test>')" "451 4.4.3"
write_config enforce reject 2020-01-01 accept
reload
session dns-down-spf 198.51.100.21 mx.spf.e2e.test <<EOF
MAIL FROM:<kim@pass3.spf.e2e.test>
EOF
check "DNS down, registry on_error = accept: SPF temperror" "$(code dns-down-spf 'MAIL FROM:<kim@pass3.spf.e2e.test>')" "451 4.7.24"

# ---------------------------------------------------------------- DNS that never answers
# Every query times out: the per-stage deadlines ([resolver] stage_timeout_ms
# = 3000 here) bound the whole session far below Postfix's 30 s milter timeout.
if [ -x "$BUILD/t/dns-blackhole" ]; then
    dns_blackhole_start 120
    real_dns=$DNS_SERVER
    DNS_SERVER=$BLACKHOLE_SERVER
    write_config enforce reject 2020-01-01 tempfail
    reload
    t0=$(now_ms)
    session dns-blackhole 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<alice@pass.spf.e2e.test>
EOF
    t1=$(now_ms)
    check "DNS never answers: MAIL tempfailed (registry on_error = tempfail)" \
        "$(code dns-blackhole 'MAIL FROM:<alice@pass.spf.e2e.test>')" "451 4.4.3"
    check_match "DNS never answers: the session is over in under 10 s (deadlines, not the MTA's timeout)" \
        "$(((t1 - t0) / 1000))" "[0-9]"
    echo "# DNS black hole session took $((t1 - t0)) ms"
    DNS_SERVER=$real_dns
else
    echo "# $BUILD/t/dns-blackhole not built: the unanswered-DNS session is not run"
fi

# ---------------------------------------------------------------- logs
decisions=$(grep -c ' stage=' "$MLOG")
check_match "decision lines logged" "$decisions" "[1-9]*"
check "every decision line starts with the queue id field" \
    "$(grep ' stage=' "$MLOG" | grep -vc 'regmilter\[[0-9]*\]: id=')" 0

# With SANITIZE builds: AddressSanitizer, LeakSanitizer (at exit) and UBSan report here.
sanitizer_reports() {
    cat "$T"/milter-*.log 2>/dev/null | grep -c -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:'
}

# ---------------------------------------------------------------- SIGTERM, then the milter killed
# SIGTERM while a session is in the middle of a transaction: it is served to
# its end (drain), then the process exits.
dns_server_start reg.e2e.test="$FIX/reg.e2e.test.zone" block.e2e.test="$FIX/block.e2e.test.zone" \
    spf.e2e.test="$FIX/spf.e2e.test.zone"
write_config enforce reject 2020-01-01 tempfail
reload
rm -f "$T/ready" "$T/go"
session draining 198.51.100.7 mx.spf.e2e.test <<EOF &
MAIL FROM:<alice@pass.spf.e2e.test>
RCPT TO:<bob@dest.test>
!touch $T/ready
!wait-file $T/go
$(message e2e-draining)
EOF
drain_pid=$!
_i=0
while [ ! -f "$T/ready" ] && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
kill -TERM "$MILTER_PID"
sleep 1
check "SIGTERM: still running while a session is open" \
    "$(kill -0 "$MILTER_PID" 2>/dev/null && echo running || echo gone)" "running"
session during-drain 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<alice@pass.spf.e2e.test>
EOF
check "SIGTERM: a new session meanwhile gets Postfix's tempfail (socket removed)" \
    "$(code during-drain 'MAIL FROM:<alice@pass.spf.e2e.test>')" "451 4.7.1"
touch "$T/go"
wait $drain_pid
check "SIGTERM: the open session is served to its end" "$(code draining '.')" "250 2.0.0"
_i=0
while kill -0 "$MILTER_PID" 2>/dev/null && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
check "SIGTERM: the milter exits after the drain" "$(kill -0 "$MILTER_PID" 2>/dev/null && echo running || echo gone)" "gone"
wait "$MILTER_PID"
check "SIGTERM: exit status 0" "$?" 0
MILTER_PID=""
check "no sanitizer report from the milter (SANITIZE builds)" "$(sanitizer_reports)" 0
check "SIGTERM: pid file and socket removed" \
    "$([ -e "$T/milter/regmilter.pid" ] || [ -e "$SOCK" ] && echo left || echo removed)" "removed"
wait_queue_empty
check "SIGTERM: the drained message was delivered" "$(delivered_to e2e-draining)" "bob@dest.test"
write_config enforce reject 2020-01-01 tempfail
start_milter
kill -KILL "$MILTER_PID"
wait "$MILTER_PID" 2>/dev/null
MILTER_PID=""
session milter-dead 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<alice@pass.spf.e2e.test>
RCPT TO:<bob@dest.test>
EOF
check_match "milter killed: Postfix's milter_default_action = tempfail" \
    "$(code milter-dead 'MAIL FROM:<alice@pass.spf.e2e.test>') $(code milter-dead 'RCPT TO:<bob@dest.test>')" "*451 4.7.1*"

# ---------------------------------------------------------------- stale socket file
check "killed milter left its socket file behind" "$([ -S "$SOCK" ] && echo stale)" "stale"
start_milter
session after-restart 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<alice@pass.spf.e2e.test>
EOF
check "restart over a stale socket file: served again" "$(code after-restart 'MAIL FROM:<alice@pass.spf.e2e.test>')" "250 2.1.0"
kill_milter

# ---------------------------------------------------------------- an inet socket
if command -v miltertest >/dev/null 2>&1; then
    INET_PORT=$(free_port) || exit 1
    "$BUILD/regmilter" -c "$T/regmilter.ini" -f -p "inet:$INET_PORT@127.0.0.1" -P "" > "$T/milter-inet.log" 2>&1 &
    MILTER_PID=$!
    miltertest -s "$FIX/unknown-client.lua" -D "socket=inet:$INET_PORT@127.0.0.1" > "$T/s/inet.out" 2>&1
    check "inet:PORT@127.0.0.1 socket: a whole milter session" "$(sed -n 's/^eom=//p' "$T/s/inet.out")" "continue"
    kill_milter
fi

# ---------------------------------------------------------------- an inet6 socket
if grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6 2>/dev/null && [ -x "$BUILD/t/milter-bench" ]; then
    INET6_PORT=$(free_port) || exit 1
    "$BUILD/regmilter" -c "$T/regmilter.ini" -f -p "inet6:$INET6_PORT@::1" -P "" > "$T/milter-inet6.log" 2>&1 &
    MILTER_PID=$!
    _i=0
    while ! grep -q 'starting: ' "$T/milter-inet6.log" && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
    # Five whole milter sessions over [::1] (registered client, SPF pass).
    "$BUILD/t/milter-bench" --socket "inet6:$INET6_PORT@::1" --pid "$MILTER_PID" --count 5 --concurrency 1 \
        --max-seconds 20 --ip-base 198.51.100. --ip-first 7 --ip-span 1 --from "<alice@pass.spf.e2e.test>" \
        --rcpt "<bob@dest.test>" --helo mx.spf.e2e.test --label inet6 > "$T/s/inet6.out" 2>&1
    check "inet6:PORT@::1 socket: five whole milter sessions" "$?" 0
    check_match "inet6:PORT@::1 socket: every message continues" "$(cat "$T/s/inet6.out")" "*answers=c:5*"
    kill_milter
else
    echo "# no ::1 here: the inet6 socket is not tried"
fi

finish
