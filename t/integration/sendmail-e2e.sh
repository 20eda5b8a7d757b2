#!/bin/sh
# sendmail-e2e.sh: regmilter in front of the real Sendmail 8.17, end to end.
# Sendmail and Postfix conflict as Debian packages, so Sendmail is not
# installed: its packages are fetched with apt-get download (kept in
# $BUILD/t/sendmail-debs, or SENDMAIL_DEBS=DIR) and unpacked privately with
# dpkg-deb -x. A private sendmail.cf is built with m4 from
# t/fixtures/sendmail/e2e.mc.in, which includes contrib/sendmail.mc with only
# the socket path changed. Sendmail runs as root in its own mount and UTS
# namespaces (a private /etc/hosts and host name, so it never asks DNS about
# itself; where namespaces are not permitted it runs without them, and may
# then sleep 60 s at start over an unqualified host name), listens on a
# loopback port chosen at run time and relays to
# smtp-sink; NSD serves the zones of t/fixtures/e2e/; build/regmilter listens
# on a unix socket. Sendmail has no XCLIENT: sessions come from different
# loopback source addresses (smtp-client -s 127.0.0.17, ...), which the e2e
# zones register (or not).
# Needs root, network access to a Debian mirror the first time (else exits
# 77 with the reason), m4, unshare, smtp-sink, nsd, drill.
# TAP: "ok - NAME" / "not ok - NAME: got X, want Y"; exit 1 when anything failed.
# Run alone: sudo BUILD=$PWD/build sh t/integration/sendmail-e2e.sh   (E2E_KEEP=DIR keeps the files)
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
FIX=$top/t/fixtures/e2e
. "$here/lib/dns-server.sh"
. "$here/lib/smtp.sh"

[ "$(id -u)" = 0 ] || skip "needs root: Sendmail's daemon runs as root"
need_cmd m4 dpkg-deb apt-get unshare mount ldd /usr/sbin/smtp-sink
need_build regmilter t/smtp-client
id postfix >/dev/null 2>&1 || skip "no postfix user (the milter and smtp-sink run as postfix; install postfix)"

# Sendmail refuses (and will not even start with) a milter socket below a
# group- or world-writable directory, /tmp included: the files of this test
# live under $BUILD/t, whose directories must be neither.
mkdir -p "$BUILD/t"
_d=$BUILD/t
while [ "$_d" != / ]; do
    case $(stat -L -c '%A' "$_d") in
    ?????w????|????????w?) skip "$_d is group- or world-writable: Sendmail would refuse a milter socket below it" ;;
    esac
    _d=$(dirname "$_d")
done
TMPDIR=$BUILD/t
export TMPDIR
tmpdir_new T
at_exit '[ -n "${E2E_KEEP:-}" ] && rm -rf "$E2E_KEEP" && cp -a "$T" "$E2E_KEEP"'
chmod 755 "$T"
printf '127.0.0.1 mx.sendmail.e2e.test localhost\n::1 mx.sendmail.e2e.test localhost\n' > "$T/etc-hosts"
# in_sendmail_ns CMD...: exec CMD in Sendmail's own mount and UTS namespaces
# (a private /etc/hosts and host name), or as it is where those are not
# permitted. It replaces the shell: run it in the background or in ( ).
if unshare --mount --uts sh -c "mount --bind '$T/etc-hosts' /etc/hosts && hostname mx.sendmail.e2e.test" 2>/dev/null; then
    in_sendmail_ns() {
        exec unshare --mount --uts sh -c 'mount --bind "$0" /etc/hosts && hostname mx.sendmail.e2e.test && exec "$@"' \
            "$T/etc-hosts" "$@"
    }
    SM_START_WAIT=100        # tenths of a second
else
    echo "# unshare --mount --uts not permitted: Sendmail runs in the host's namespaces and may sleep 60 s at start"
    in_sendmail_ns() { exec "$@"; }
    SM_START_WAIT=900
fi

# ---------------------------------------------------------------- Sendmail, unpacked privately
DEBS=${SENDMAIL_DEBS:-$BUILD/t/sendmail-debs}
mkdir -p "$DEBS"
newest() { ls "$DEBS"/"$1"_*.deb 2>/dev/null | sort -V | tail -n 1; }
fetch() { (cd "$DEBS" && apt-get download sendmail-bin sendmail-cf) > "$DEBS/download.log" 2>&1; }
if [ -z "$(newest sendmail-bin)" ] || [ -z "$(newest sendmail-cf)" ]; then
    # A fresh machine may have no package lists yet: fetch them once and retry.
    fetch || { apt-get update -q > "$DEBS/update.log" 2>&1 && fetch; } ||
        skip "apt-get download sendmail-bin sendmail-cf failed: $(grep -E '^(E|W):' "$DEBS/download.log" | head -n 1)"
fi
SM_ROOT=$T/sendmail-root
for p in sendmail-bin sendmail-cf; do
    dpkg-deb -x "$(newest $p)" "$SM_ROOT" || { echo "# dpkg-deb -x $(newest $p) failed"; exit 1; }
done
SENDMAIL=$SM_ROOT/usr/libexec/sendmail/sendmail
CFDIR=$SM_ROOT/usr/share/sendmail/cf
[ -x "$SENDMAIL" ] && [ -f "$CFDIR/m4/cf.m4" ] || { echo "# unexpected package layout in $SM_ROOT"; exit 1; }
missing=$(ldd "$SENDMAIL" | sed -n 's/^[[:space:]]*\([^ ]*\) => not found.*/\1/p' | tr '\n' ' ')
[ -z "$missing" ] || skip "Sendmail's libraries are missing: $missing(run contrib/install-deps test)"
# (Run outside its namespaces, Sendmail would sleep 60 s over an unqualified host name.)
echo "# Sendmail $(dpkg-deb -f "$(newest sendmail-bin)" Version), unpacked in $SM_ROOT"

# ---------------------------------------------------------------- DNS, sink, milter
dns_server_start reg.e2e.test="$FIX/reg.e2e.test.zone" block.e2e.test="$FIX/block.e2e.test.zone" \
    spf.e2e.test="$FIX/spf.e2e.test.zone"
sink_start

mkdir -p "$T/milter"
chown postfix "$T/milter"
cp "$FIX/bulk-table" "$T/bulk-table"
SOCK=$T/milter/regmilter.sock
sed -e "s|@SOCKET@|unix:$SOCK|" -e "s|@PIDFILE@|$T/milter/regmilter.pid|" -e "s|@MODE@|enforce|" \
    -e "s|@UNREGISTERED@|reject|" -e "s|@ENFORCE_AFTER@|2020-01-01|" -e "s|@ON_ERROR@|tempfail|" \
    -e "s|@NAMESERVER@|$DNS_SERVER|" -e "s|@BULK_TABLE@|$T/bulk-table|" "$FIX/regmilter.ini.in" > "$T/regmilter.ini"
MLOG=$T/milter.log
MILTER_PID=""
at_exit '[ -n "$MILTER_PID" ] && kill "$MILTER_PID"'
"$BUILD/regmilter" -c "$T/regmilter.ini" -f > "$MLOG" 2>&1 &
MILTER_PID=$!
_i=0
while ! grep -q 'starting: ' "$MLOG" && [ $_i -lt 100 ] && kill -0 "$MILTER_PID" 2>/dev/null; do
    sleep 0.1
    _i=$((_i + 1))
done
[ -S "$SOCK" ] || { echo "# the milter did not start:"; sed 's/^/#   /' "$MLOG"; exit 1; }
echo "# regmilter pid $MILTER_PID on unix:$SOCK"

# ---------------------------------------------------------------- sendmail.cf
SM=$T/sm
mkdir -p "$SM/mqueue"
chmod 700 "$SM/mqueue"
printf 'hosts files\naliases files\n' > "$SM/service.switch"
printf '127.0.0.1 mx.sendmail.e2e.test localhost\n' > "$SM/hosts"
: > "$SM/local-host-names"
# contrib/sendmail.mc as shipped, with only its socket path replaced.
sed "s|S=local:/run/regmilter/regmilter.sock,|S=local:$SOCK,|" "$top/contrib/sendmail.mc" > "$SM/regmilter.mc"
check "contrib/sendmail.mc: its one INPUT_MAIL_FILTER line names the socket" \
    "$(grep -c "^INPUT_MAIL_FILTER(\`regmilter', \`S=local:$SOCK, F=T," "$SM/regmilter.mc")" 1
SM_PORT=$(free_port) || exit 1
sed -e "s|@DIR@|$SM|g" -e "s|@PORT@|$SM_PORT|g" -e "s|@SINK_PORT@|$SINK_PORT|g" \
    -e "s|@REGMILTER_MC@|$SM/regmilter.mc|g" "$top/t/fixtures/sendmail/e2e.mc.in" > "$SM/e2e.mc"
m4 -D_CF_DIR_="$CFDIR/" "$CFDIR/m4/cf.m4" "$SM/e2e.mc" > "$SM/sendmail.cf" 2> "$SM/m4.err"
check "sendmail.cf built with m4 without a warning" "$?:$(cat "$SM/m4.err")" "0:"
check "Sendmail's end-of-message macros keep {msg_id} and gain i" \
    "$(grep '^O Milter.macros.eom=' "$SM/sendmail.cf")" "O Milter.macros.eom={msg_id}, i"
check "no other milter macro list is changed" \
    "$(grep -c '^O Milter.macros.\(connect\|helo\|envfrom\|envrcpt\)=' "$SM/sendmail.cf"):$(grep '^O Milter.macros.envfrom=' "$SM/sendmail.cf")" \
    "4:O Milter.macros.envfrom=i, {auth_type}, {auth_authen}, {auth_ssf}, {auth_author}, {mail_mailer}, {mail_host}, {mail_addr}"

SM_PID=""
start_sendmail() {
    # Every step execs the next: $! is Sendmail's daemon; -bD keeps it in the foreground.
    in_sendmail_ns "$SENDMAIL" -C "$SM/sendmail.cf" -bD > "$SM/sendmail.out" 2>&1 &
    SM_PID=$!
    _i=0
    while ! printf 'QUIT\n' | timeout 2 "$BUILD/t/smtp-client" -t 1000 127.0.0.1 "$SM_PORT" 2>/dev/null | grep -q '^220 ' &&
        [ $_i -lt $SM_START_WAIT ] && kill -0 "$SM_PID" 2>/dev/null; do
        sleep 0.1
        _i=$((_i + 1))
    done
    if ! kill -0 "$SM_PID" 2>/dev/null; then
        echo "# sendmail exited at start:"
        sed 's/^/#   /' "$SM/sendmail.out"
        SM_PID=""
        return 1
    fi
}
at_exit '[ -n "$SM_PID" ] && kill "$SM_PID"'
start_sendmail || exit 1
smtp_session greeting "$SM_PORT" <<EOF
QUIT
EOF
check_match "Sendmail answers on 127.0.0.1:$SM_PORT" "$(sed -n 1p "$T/s/greeting.out")" "220 mx.sendmail.e2e.test ESMTP Sendmail 8.17*"
echo "# sendmail pid $SM_PID on 127.0.0.1:$SM_PORT, smtp-sink on 127.0.0.1:$SINK_PORT"

# ---------------------------------------------------------------- sessions
# sm_session NAME SOURCE_ADDR < commands: EHLO, the commands, QUIT, from SOURCE_ADDR.
sm_session() {
    { echo "EHLO mx.spf.e2e.test"; cat; echo "QUIT"; } | smtp_session "$1" "$SM_PORT" "$2"
}

sm_session accept 127.0.0.17 <<EOF
MAIL FROM:<alice@loopback.spf.e2e.test>
RCPT TO:<bob@dest.test>
$(message sm-accept "Authentication-Results: mx.e2e.test; spf=pass smtp.mailfrom=forged.example")
EOF
check "registered + SPF pass: MAIL" "$(code accept 'MAIL FROM:<alice@loopback.spf.e2e.test>')" "250 2.1.0"
check "registered + SPF pass: RCPT" "$(code accept 'RCPT TO:<bob@dest.test>')" "250 2.1.5"
check "registered + SPF pass: end of data" "$(code accept '.')" "250 2.0.0"

sm_session unregistered 127.0.0.19 <<EOF
MAIL FROM:<carol@loopback.spf.e2e.test>
EOF
check "unregistered client: MAIL refused" "$(code unregistered 'MAIL FROM:<carol@loopback.spf.e2e.test>')" "550 5.7.1"
check_match "unregistered: the reply says why" "$(reply unregistered 'MAIL FROM:<carol@loopback.spf.e2e.test>')" \
    "550 5.7.1 <carol@loopback.spf.e2e.test>... 127.0.0.19 is not a registered mail server (not in reg.e2e.test); see https://reg.e2e.test/register"

sm_session spf-fail 127.0.0.17 <<EOF
MAIL FROM:<carol@fail.spf.e2e.test>
EOF
check "SPF fail: MAIL refused" "$(code spf-fail 'MAIL FROM:<carol@fail.spf.e2e.test>')" "550 5.7.23"
check_match "SPF fail: the domain's explanation" "$(reply spf-fail 'MAIL FROM:<carol@fail.spf.e2e.test>')" \
    "550 5.7.23 *127.0.0.17 is not one of fail.spf.e2e.test's mail servers*"

sm_session bulk 127.0.0.18 <<EOF
MAIL FROM:<news@loopback.spf.e2e.test>
RCPT TO:<optout@dest.test>
RCPT TO:<optin@dest.test>
$(message sm-bulk)
EOF
check "registered bulk sender: MAIL" "$(code bulk 'MAIL FROM:<news@loopback.spf.e2e.test>')" "250 2.1.0"
check "bulk: the opted-out recipient is refused" "$(code bulk 'RCPT TO:<optout@dest.test>')" "550 5.7.1"
check "bulk: the opted-in recipient is accepted" "$(code bulk 'RCPT TO:<optin@dest.test>')" "250 2.1.5"
check "bulk: end of data" "$(code bulk '.')" "250 2.0.0"

wait_sink sm-accept 1
wait_sink sm-bulk 1
check "accepted message delivered" "$(delivered_to sm-accept)" "bob@dest.test"
ar=$(header_line sm-accept Authentication-Results)
check_match "Authentication-Results with spf=pass" "$ar" "Authentication-Results: mx.e2e.test;*spf=pass*"
check_match "Authentication-Results with dnswl=pass for the registry" "$ar" "*dnswl=pass*reg.e2e.test*"
check "forged Authentication-Results for our authserv_id removed" \
    "$(sink_files sm-accept | wc -l) copy, $(headers_of sm-accept | grep -c forged.example) forged" "1 copy, 0 forged"
ar_line=$(headers_of sm-accept | grep -n '^Authentication-Results:' | head -n 1 | cut -d: -f1)
rcv_line=$(headers_of sm-accept | grep -n '^Received: .* by mx.sendmail.e2e.test' | head -n 1 | cut -d: -f1)
check "Authentication-Results above Sendmail's Received" \
    "$([ -n "$ar_line" ] && [ -n "$rcv_line" ] && [ "$ar_line" -lt "$rcv_line" ] && echo above || echo "A-R line '$ar_line', Received line '$rcv_line'")" above
check "bulk: delivered only to the opted-in recipient" "$(delivered_to sm-bulk)" "optin@dest.test"
check_match "the milter logs Sendmail's queue id at end of message" \
    "$(grep 'stage=data' "$MLOG" | grep -v 'id=NOQUEUE' | grep -c 'from=<alice@loopback.spf.e2e.test>')" "[1-9]*"

# ---------------------------------------------------------------- the socket's directory
# Sendmail checks the path of a local socket: a group- or world-writable
# directory without the sticky bit makes it "unsafe" and the filter unusable
# (F=T: tempfail). Same socket, same Sendmail, only the directory's mode changes.
ww_session() {
    chmod "$2" "$T/milter"
    sm_session "$1" 127.0.0.17 <<EOF
MAIL FROM:<alice@loopback.spf.e2e.test>
EOF
    chmod 755 "$T/milter"
}
ww_session dir-0777 0777
ww_session dir-1777 1777
ww_session dir-0775 0775
ww_session dir-0755 0755
echo "# MAIL replies by the socket directory's mode: 0777 '$(reply dir-0777 'MAIL FROM:<alice@loopback.spf.e2e.test>')'," \
    "1777 '$(reply dir-1777 'MAIL FROM:<alice@loopback.spf.e2e.test>')'," \
    "0775 '$(reply dir-0775 'MAIL FROM:<alice@loopback.spf.e2e.test>')'," \
    "0755 '$(reply dir-0755 'MAIL FROM:<alice@loopback.spf.e2e.test>')'"
check_match "socket under a world-writable directory: Sendmail refuses it (tempfail)" \
    "$(code dir-0777 'MAIL FROM:<alice@loopback.spf.e2e.test>')" "4[0-9][0-9] 4.*"
check_match "socket under a group-writable directory: Sendmail refuses it (tempfail)" \
    "$(code dir-0775 'MAIL FROM:<alice@loopback.spf.e2e.test>')" "4[0-9][0-9] 4.*"
check "the same socket once the directory is 0755: served" "$(code dir-0755 'MAIL FROM:<alice@loopback.spf.e2e.test>')" "250 2.1.0"

# Reading sendmail.cf at start Sendmail checks it too, and then refuses to
# start at all: a second daemon (own port, same socket) shows its words.
chmod 1777 "$T/milter"
PORT2=$(free_port) || exit 1
sed "s/Port=$SM_PORT,/Port=$PORT2,/" "$SM/sendmail.cf" > "$SM/sendmail-2.cf"
(in_sendmail_ns timeout $((SM_START_WAIT / 10 + 20)) "$SENDMAIL" -C "$SM/sendmail-2.cf" -bD) > "$SM/sendmail-2.out" 2>&1
rc=$?
chmod 755 "$T/milter"
echo "# sendmail with the socket directory 1777: exit $rc, $(grep -m 1 unsafe "$SM/sendmail-2.out")"
check_match "a sticky world-writable directory: Sendmail will not start" \
    "$rc $(cat "$SM/sendmail-2.out")" "[1-9]* *Xregmilter: local socket name $SOCK unsafe: World writable directory*"

# ---------------------------------------------------------------- milter down
kill -KILL "$MILTER_PID"
wait "$MILTER_PID" 2>/dev/null
MILTER_PID=""
sm_session milter-down 127.0.0.17 <<EOF
MAIL FROM:<alice@loopback.spf.e2e.test>
RCPT TO:<bob@dest.test>
EOF
echo "# milter down: MAIL '$(reply milter-down 'MAIL FROM:<alice@loopback.spf.e2e.test>')'"
check_match "milter down: F=T tempfails the mail" \
    "$(code milter-down 'MAIL FROM:<alice@loopback.spf.e2e.test>')" "4[0-9][0-9] 4.*"

finish
