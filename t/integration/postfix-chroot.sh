#!/bin/sh
# postfix-chroot.sh: the Debian package's defaults with Postfix as Debian ships
# it. The package (built once per make check, lib/package.sh) is unpacked
# into a private root with dpkg-deb -x, never installed. Its regmilter runs
# with its configuration, only these swapped for the test: the socket path
# (Postfix's private queue directory instead of /var/spool/postfix), the pid
# file, and the nameserver (NSD on loopback with the zones of t/fixtures/e2e).
# It runs as nobody from the start, as the unit runs it as regmilter (no user
# is created here), in the directory the package's socket-dir makes.
# A private Postfix instance uses Debian's own master.cf
# (/usr/share/postfix/master.cf.dist: smtpd chrooted), its chroot prepared
# by Debian's configure-instance.sh as at every Postfix start, only the smtpd
# service moved to a loopback port, and the documented main.cf line
#   smtpd_milters = unix:regmilter/regmilter.sock
# It relays to smtp-sink. Shown: the message accepted with the milter's
# Authentication-Results through a chrooted smtpd; the same line with an
# unchrooted smtpd; the absolute path refused by the chrooted one.
# Needs root (Postfix's master), postfix, smtp-sink, setpriv, nsd, drill,
# dpkg-buildpackage; exits 77 (skipped) with the reason when one is missing.
# TAP: "ok - NAME" / "not ok - NAME: got X, want Y"; exit 1 when anything failed.
# Run alone: sudo BUILD=$PWD/build sh t/integration/postfix-chroot.sh   (E2E_KEEP=DIR keeps the files)
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
FIX=$top/t/fixtures/e2e
. "$here/lib/dns-server.sh"
. "$here/lib/smtp.sh"
. "$here/lib/package.sh"

[ "$(id -u)" = 0 ] || skip "needs root: Postfix's master runs as root"
need_cmd postfix postconf setpriv /usr/sbin/smtp-sink
need_build regmilter regmilter-query t/smtp-client
id postfix >/dev/null 2>&1 || skip "no postfix user (install the postfix package)"
DAEMON_DIR=$(postconf -dh daemon_directory)
MASTER_DIST=/usr/share/postfix/master.cf.dist
CONFIGURE_INSTANCE=/usr/lib/postfix/configure-instance.sh
[ -f "$MASTER_DIST" ] && [ -x "$CONFIGURE_INSTANCE" ] || skip "not Debian's postfix ($MASTER_DIST, $CONFIGURE_INSTANCE)"

package_build
echo "# package: $PACKAGE_HOW"

tmpdir_new T
at_exit '[ -n "${E2E_KEEP:-}" ] && rm -rf "$E2E_KEEP" && cp -a "$T" "$E2E_KEEP"'
chmod 755 "$T"
R=$T/root
dpkg-deb -x "$DEB" "$R"
Q=$T/queue
mkdir -p "$T/pf" "$Q" "$T/data" "$T/run"
chown postfix "$T/data"
chown nobody "$T/run"

# ---------------------------------------------------------------- the socket directory
"$R/usr/libexec/regmilter/socket-dir" "$Q/regmilter" nobody postfix
check "the package's socket-dir makes the directory: 2750, owner, group postfix" \
    "$(stat -c '%a %U %G' "$Q/regmilter")" "2750 nobody postfix"

# ---------------------------------------------------------------- DNS, sink
dns_server_start reg.e2e.test="$FIX/reg.e2e.test.zone" block.e2e.test="$FIX/block.e2e.test.zone" \
    spf.e2e.test="$FIX/spf.e2e.test.zone"
sink_start

# ---------------------------------------------------------------- the packaged regmilter
pkg_ini=$R/etc/regmilter/regmilter.ini
default_sock=$(sed -n 's/^socket *= *unix://p' "$pkg_ini")
check "the packaged configuration's socket is in Postfix's queue directory" \
    "$default_sock" "/var/spool/postfix/regmilter/regmilter.sock"
SOCK=$Q/${default_sock#/var/spool/postfix/}
sed -e "s|^socket *=.*|socket = unix:$SOCK|" -e "s|^pid_file *=.*|pid_file = $T/run/regmilter.pid|" \
    -e "s|^nameservers *=.*|nameservers = $DNS_SERVER|" "$pkg_ini" > "$T/regmilter.ini"
check "only the socket, the pid file and the nameserver differ from the packaged file" \
    "$(diff "$pkg_ini" "$T/regmilter.ini" | grep -c '^>')" 3
MLOG=$T/milter.log
setpriv --reuid=nobody --regid=nogroup --clear-groups "$R/usr/sbin/regmilter" -c "$T/regmilter.ini" -f \
    > "$MLOG" 2>&1 &
MILTER_PID=$!
at_exit "kill $MILTER_PID"
_i=0
while ! grep -q 'starting: ' "$MLOG" && [ $_i -lt 100 ] && kill -0 "$MILTER_PID" 2>/dev/null; do
    sleep 0.1
    _i=$((_i + 1))
done
[ -S "$SOCK" ] || { echo "# the packaged regmilter did not start:"; sed 's/^/#   /' "$MLOG"; exit 1; }
echo "# packaged regmilter pid $MILTER_PID on unix:$SOCK"
check "the socket gets the directory's group postfix, mode 0660" "$(stat -c '%a %U %G' "$SOCK")" "660 nobody postfix"

# ---------------------------------------------------------------- Postfix as Debian ships it
SMTP_PORT=$(free_port) || exit 1
cat > "$T/pf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $Q
data_directory = $T/data
daemon_directory = $DAEMON_DIR
command_directory = $(postconf -dh command_directory)
meta_directory = $(postconf -dh meta_directory)
shlib_directory = $(postconf -dh shlib_directory)
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = $T
maillog_file = $T/maillog
myhostname = mx.chroot.e2e.test
mydomain = e2e.test
myorigin = e2e.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
relayhost = [127.0.0.1]:$SINK_PORT
relay_domains = static:ALL
smtpd_relay_restrictions = reject_unauth_destination
smtp_dns_support_level = disabled
smtpd_authorized_xclient_hosts = 127.0.0.1
alias_maps =
alias_database =
local_recipient_maps =
# The documented line, as in debian/README.Debian:
smtpd_milters = unix:regmilter/regmilter.sock
milter_default_action = tempfail
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
EOF
# Debian's master.cf, only its smtpd moved from port 25 to our loopback port.
sed "s/^smtp\( *\)inet\( .*\)$/127.0.0.1:$SMTP_PORT inet\2/" "$MASTER_DIST" > "$T/pf/master.cf"
check "Debian's master.cf runs smtpd chrooted (column 5 = y)" \
    "$(awk -v s="127.0.0.1:$SMTP_PORT" '$1 == s && $2 == "inet" { print $5 " " $8 }' "$T/pf/master.cf")" "y smtpd"
# What Debian runs at every Postfix start: copies resolv.conf, hosts,
# services, libraries and so on into the chroot.
MAIL_CONFIG=$T/pf "$CONFIGURE_INSTANCE" - > "$T/configure-instance.log" 2>&1 ||
    { echo "# configure-instance.sh failed:"; sed 's/^/#   /' "$T/configure-instance.log"; exit 1; }
postfix -c "$T/pf" start > "$T/pf-start.log" 2>&1 || { cat "$T/pf-start.log"; tail "$T/maillog"; exit 1; }
at_exit "postfix -c '$T/pf' stop"
wait_smtp "$SMTP_PORT"
echo "# postfix -c $T/pf on 127.0.0.1:$SMTP_PORT (smtpd chrooted in $Q), smtp-sink on 127.0.0.1:$SINK_PORT"

# session NAME ADDR < commands: EHLO, XCLIENT ADDR HELO, EHLO, the commands, QUIT
session() {
    {
        echo "EHLO client.e2e.test"
        echo "XCLIENT ADDR=$2 NAME=[UNAVAILABLE] HELO=mx.spf.e2e.test"
        echo "EHLO mx.spf.e2e.test"
        cat
        echo "QUIT"
    } | smtp_session "$1" "$SMTP_PORT"
}
# chrooted_smtpds: how many smtpd processes have the private queue directory as root
chrooted_smtpds() {
    _n=0
    for _p in $(ps -eo pid=,comm= | awk '$2 == "smtpd" { print $1 }'); do
        [ "$(readlink "/proc/$_p/root" 2>/dev/null)" = "$Q" ] && _n=$((_n + 1))
    done
    echo "$_n"
}

session chrooted 198.51.100.7 <<EOF
MAIL FROM:<alice@pass.spf.e2e.test>
RCPT TO:<bob@dest.test>
$(message chroot-accepted)
EOF
check_match "smtpd runs chrooted in the private queue directory" "$(chrooted_smtpds)" "[1-9]*"
check "chrooted smtpd, relative socket path: MAIL" "$(code chrooted 'MAIL FROM:<alice@pass.spf.e2e.test>')" "250 2.1.0"
check "chrooted smtpd: end of data" "$(code chrooted '.')" "250 2.0.0"
wait_sink chroot-accepted 1
check "delivered through the chrooted smtpd" "$(delivered_to chroot-accepted)" "bob@dest.test"
host=$(hostname)
check_match "the packaged milter's Authentication-Results (authserv_id: the host name)" \
    "$(header_line chroot-accepted Authentication-Results)" "Authentication-Results: $host; spf=pass smtp.mailfrom=alice@pass.spf.e2e.test*"
check_match "the milter logged the decision with Postfix's queue id" \
    "$(grep 'stage=data' "$MLOG" | grep -c 'from=<alice@pass.spf.e2e.test>')" "[1-9]*"

session unregistered-spf-fail 198.51.100.66 <<EOF
MAIL FROM:<carol@fail.spf.e2e.test>
EOF
check "chrooted smtpd: the packaged defaults refuse an SPF fail" \
    "$(code unregistered-spf-fail 'MAIL FROM:<carol@fail.spf.e2e.test>')" "550 5.7.23"

# ---------------------------------------------------------------- the absolute path, chrooted
postconf -c "$T/pf" -e "smtpd_milters = unix:$SOCK"
postfix -c "$T/pf" reload > /dev/null 2>&1
sleep 1
session absolute 198.51.100.7 <<EOF
MAIL FROM:<alice@pass.spf.e2e.test>
EOF
check "chrooted smtpd, absolute socket path: Postfix cannot reach it (451 4.7.1)" \
    "$(code absolute 'MAIL FROM:<alice@pass.spf.e2e.test>')" "451 4.7.1"

# ---------------------------------------------------------------- the same line, unchrooted
postconf -c "$T/pf" -e "smtpd_milters = unix:regmilter/regmilter.sock"
sed -i "s/^\(127.0.0.1:$SMTP_PORT *inet *[^ ]* *[^ ]* *\)y/\1n/" "$T/pf/master.cf"
check "smtpd unchrooted now (column 5 = n)" \
    "$(awk -v s="127.0.0.1:$SMTP_PORT" '$1 == s { print $5 }' "$T/pf/master.cf")" "n"
postfix -c "$T/pf" reload > /dev/null 2>&1
sleep 1
session unchrooted 198.51.100.7 <<EOF
MAIL FROM:<alice@pass.spf.e2e.test>
RCPT TO:<bob@dest.test>
$(message unchroot-accepted)
EOF
check "unchrooted smtpd, the same relative line: MAIL" "$(code unchrooted 'MAIL FROM:<alice@pass.spf.e2e.test>')" "250 2.1.0"
wait_sink unchroot-accepted 1
check_match "unchrooted smtpd: Authentication-Results" \
    "$(header_line unchroot-accepted Authentication-Results)" "Authentication-Results: $host;*spf=pass*"

finish
