#!/bin/sh
# make-install.sh: "make install" for a system without the Debian package:
# with PREFIX=/opt/regmilter into a DESTDIR it installs the binaries, the man
# pages, the configuration, the socket directory helper and a systemd unit
# whose paths are PREFIX's (from contrib/regmilter.service.in) where UNITDIR
# says (/etc/systemd/system here: systemd does not search /opt), creates no
# user, and keeps an existing configuration. With the default PREFIX the
# unit goes to /usr/local/lib/systemd/system, which systemd searches.
# TAP: "ok - NAME" / "not ok - NAME: got X, want Y"; exit 1 when anything failed.
# Run alone: BUILD=$PWD/build sh t/integration/make-install.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$here/lib/common.sh"

need_cmd make
need_build regmilter regmilter-query
tmpdir_new T
D=$T/dest
P=/opt/regmilter
passwd_before=$(cksum < /etc/passwd)
U=/etc/systemd/system
make -C "$top" --no-print-directory BUILD="$BUILD" DESTDIR="$D" PREFIX="$P" UNITDIR="$U" DEPS_CHECK=no install \
    > "$T/install.log" 2>&1
rc=$?
[ $rc = 0 ] || sed 's/^/#   /' "$T/install.log"
check "make install PREFIX=$P DESTDIR=...: exit 0" "$rc" 0
for f in "$P/sbin/regmilter" "$P/bin/regmilter-query" "$P/libexec/regmilter/socket-dir"; do
    check "$f installed, executable" "$([ -x "$D$f" ] && echo yes)" yes
done
for f in "$P/share/man/man8/regmilter.8" "$P/share/man/man5/regmilter.ini.5" "$P/share/man/man1/regmilter-query.1" \
    /etc/regmilter/regmilter.ini "$U/regmilter.service"; do
    check "$f installed" "$([ -f "$D$f" ] && echo yes)" yes
done
unit=$D$U/regmilter.service
check "the unit runs $P/sbin/regmilter" "$(sed -n 's/^ExecStart=//p' "$unit")" \
    "$P/sbin/regmilter -c /etc/regmilter/regmilter.ini -f -P /run/regmilter/regmilter.pid"
check "the unit makes the socket directory with $P/libexec/regmilter/socket-dir" \
    "$(sed -n 's/^ExecStartPre=+//p' "$unit")" "$P/libexec/regmilter/socket-dir /var/spool/postfix/regmilter regmilter postfix"
check "no template placeholder left in the unit" "$(grep -c '@[A-Z]*@' "$unit")" 0
if command -v systemd-analyze >/dev/null 2>&1; then
    mkdir -p "$D/lib/systemd/system"
    cp -a /lib/systemd/system/*.target /lib/systemd/system/*.slice "$D/lib/systemd/system/"
    out=$(systemd-analyze verify --man=no --root="$D" "$U/regmilter.service" 2>&1)
    check "systemd-analyze verify: unit parses, every command exists under $P" "$?:$out" "0:"
fi
check "make install created no user" "$(cksum < /etc/passwd)" "$passwd_before"

echo "# my own configuration" > "$D/etc/regmilter/regmilter.ini"
make -C "$top" --no-print-directory BUILD="$BUILD" DESTDIR="$D" PREFIX="$P" UNITDIR="$U" DEPS_CHECK=no install \
    > "$T/install-2.log" 2>&1
check "a second make install keeps an existing configuration" "$(cat "$D/etc/regmilter/regmilter.ini")" "# my own configuration"

make -C "$top" --no-print-directory BUILD="$BUILD" DESTDIR="$T/dest2" DEPS_CHECK=no install > "$T/install-3.log" 2>&1
check "default PREFIX: the unit in /usr/local/lib/systemd/system, running /usr/local/sbin/regmilter" \
    "$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$T/dest2/usr/local/lib/systemd/system/regmilter.service" 2>&1)" \
    /usr/local/sbin/regmilter

finish
