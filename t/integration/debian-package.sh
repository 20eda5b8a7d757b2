#!/bin/sh
# debian-package.sh: the Debian package builds with dpkg-buildpackage -us -uc -b,
# is lintian-clean (no error, no warning; informational tags are listed),
# holds what it should, and its defaults agree with the docs. Its contents
# (dpkg-deb -c, "#|" lines) and lintian's output go to the test log. The
# package is built once per make check (t/integration/lib/package.sh: from
# the objects make already compiled) and reused by postfix-chroot.sh.
# Needs dpkg-buildpackage, debhelper, lintian (contrib/install-deps test); no root.
# TAP: "ok - NAME" / "not ok - NAME: got X, want Y"; exit 1 when anything failed.
# Run alone: BUILD=$PWD/build sh t/integration/debian-package.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$here/lib/common.sh"
. "$here/lib/package.sh"

need_build regmilter regmilter-query
package_build
echo "# package: $PACKAGE_HOW"
tmpdir_new T

version=$(sed -n 's/.*constexpr const char\* version = "\([^"]*\)".*/\1/p' "$top/lib/util/version.hpp")
check "debian/changelog's version is the program's (lib/util/version.hpp)" \
    "$(cd "$top" && dpkg-parsechangelog -S Version)" "$version"
check_match "dpkg-buildpackage -us -uc -b built regmilter_VERSION_ARCH.deb" \
    "$(basename "$DEB")" "regmilter_${version}_$(dpkg --print-architecture).deb"

# Build-Depends: the build list of contrib/debian-packages, less the
# build-essential packages (g++, make) that Debian policy leaves implied.
want=$(sed -e 's/#.*//' "$top/contrib/debian-packages" | awk '$2 == "build" || $3 == "build" { print $1 }' |
    grep -v -x -e g++ -e make | sort | tr '\n' ' ')
got=$(cd "$top" && grep-dctrl -n -s Build-Depends -S regmilter debian/control 2>/dev/null ||
    sed -n '/^Build-Depends:/,/^[A-Z]/p' debian/control)
got=$(printf '%s\n' "$got" | sed -e 's/^Build-Depends://' -e '/^[A-Z][A-Za-z-]*:/d' | tr ',' '\n' |
    sed -e 's/[[:space:]]//g' -e 's/(.*//' -e 's/<.*//' | grep -v -e '^$' -e '^debhelper-compat$' -e '^catch2$' | sort | tr '\n' ' ')
check "Build-Depends are contrib/debian-packages' build list" "$got" "$want"

# ---------------------------------------------------------------- lintian
t0=$(date +%s)
lintian --fail-on error,warning --display-info "$CHANGES" > "$T/lintian.out" 2>&1
rc=$?
echo "# lintian $(lintian --version | awk '{ print $2 }') on $(basename "$CHANGES"), $(($(date +%s) - t0)) s, exit $rc:"
sed 's/^/#   /' "$T/lintian.out"
check "lintian: no error, no warning (exit status)" "$rc" 0
check "lintian: no E: or W: tag" "$(grep -c '^[EW]: ' "$T/lintian.out")" 0

# ---------------------------------------------------------------- contents
dpkg-deb -c "$DEB" > "$T/contents"
# "#|" lines stay in the test log ($BUILD/t/debian-package.log); t/run-tests
# shows "# " lines only.
echo "# dpkg-deb -c $(basename "$DEB"): $(grep -c '^-' "$T/contents") files, $(grep -c '^d' "$T/contents") directories, in the test log"
sed 's/^/#|  /' "$T/contents"
has() { awk '{ print $6 }' "$T/contents" | grep -q -x -- "$1"; }
for f in ./usr/sbin/regmilter ./usr/bin/regmilter-query ./etc/regmilter/regmilter.ini \
    ./lib/systemd/system/regmilter.service ./usr/libexec/regmilter/socket-dir \
    ./usr/share/man/man8/regmilter.8.gz ./usr/share/man/man5/regmilter.ini.5.gz \
    ./usr/share/man/man1/regmilter-query.1.gz ./usr/share/doc/regmilter/README.Debian \
    ./usr/share/doc/regmilter/examples/sendmail.mc ./usr/share/doc/regmilter/examples/postfix-main.cf \
    ./usr/share/doc/regmilter/copyright; do
    if has "$f"; then ok "package holds $f"; else not_ok "package holds $f" "missing from dpkg-deb -c"; fi
done
if [ -x "$BUILD/regmilter-zone" ]; then
    if has ./usr/bin/regmilter-zone; then ok "regmilter-zone, built in this tree, is packaged"
    else not_ok "regmilter-zone, built in this tree, is packaged" "missing"; fi
else
    echo "# no $BUILD/regmilter-zone in this tree: not packaged, and the build did not need it"
fi
check "binaries 0755 root, the configuration 0644" \
    "$(awk '$6 == "./usr/sbin/regmilter" || $6 == "./etc/regmilter/regmilter.ini" { print $6 " " $1 " " $2 }' "$T/contents" |
        sort | tr '\n' ' ')" \
    "./etc/regmilter/regmilter.ini -rw-r--r-- root/root ./usr/sbin/regmilter -rwxr-xr-x root/root "
check "/etc/regmilter/regmilter.ini is a conffile" "$(dpkg-deb -f "$DEB" Package >/dev/null &&
    dpkg-deb --ctrl-tarfile "$DEB" | tar -xOf - ./conffiles 2>/dev/null)" "/etc/regmilter/regmilter.ini"
postinst=$(dpkg-deb --ctrl-tarfile "$DEB" | tar -xOf - ./postinst)
check_match "postinst creates the system user regmilter" "$postinst" "*adduser --system --group*regmilter*"
check_match "postinst enables regmilter.service" "$postinst" "*deb-systemd-helper*enable*regmilter.service*"
check_match "postinst starts regmilter.service" "$postinst" "*_dh_action=start*deb-systemd-invoke*regmilter.service*"

# ---------------------------------------------------------------- the unit and the defaults
R=$T/root
dpkg-deb -x "$DEB" "$R"
unit=$R/lib/systemd/system/regmilter.service
check "the unit runs the packaged binary" "$(sed -n 's/^ExecStart=//p' "$unit")" \
    "/usr/sbin/regmilter -c /etc/regmilter/regmilter.ini -f -P /run/regmilter/regmilter.pid"
check "the unit makes the socket directory, as root, before each start" "$(sed -n 's/^ExecStartPre=+//p' "$unit")" \
    "/usr/libexec/regmilter/socket-dir /var/spool/postfix/regmilter regmilter postfix"
check "the unit may write the socket directory and nothing else (besides RuntimeDirectory)" \
    "$(grep -E '^(ReadWritePaths|RuntimeDirectory|ProtectSystem|User)=' "$unit" | tr '\n' ' ')" \
    "User=regmilter RuntimeDirectory=regmilter ProtectSystem=strict ReadWritePaths=-/var/spool/postfix/regmilter "
if command -v systemd-analyze >/dev/null 2>&1; then
    # verify --root needs the targets and slices the unit refers to (sysinit.target, ...).
    for u in /lib/systemd/system/*.target /lib/systemd/system/*.slice; do
        [ -e "$R$u" ] || cp -a "$u" "$R/lib/systemd/system/"
    done
    out=$(systemd-analyze verify --man=no --root="$R" /lib/systemd/system/regmilter.service 2>&1)
    check "systemd-analyze verify: unit parses, every command exists in the package" "$?:$out" "0:"
fi
sock=/var/spool/postfix/regmilter/regmilter.sock
check "the packaged configuration's socket is the default one" \
    "$(sed -n 's/^socket *= *//p' "$R/etc/regmilter/regmilter.ini")" "unix:$sock"
check "the packaged configuration is conf/regmilter.ini" "$(cmp "$R/etc/regmilter/regmilter.ini" "$top/conf/regmilter.ini" && echo same)" same
# The docs give the same Postfix line and the same socket everywhere.
for f in README man/regmilter.8 contrib/postfix-main.cf debian/README.Debian; do
    check "$f gives smtpd_milters = unix:regmilter/regmilter.sock" \
        "$(grep -c '^ *smtpd_milters = unix:regmilter/regmilter.sock$' "$top/$f")" 1
done
for f in man/regmilter.ini.5 man/regmilter.8 debian/README.Debian contrib/regmilter.service.in; do
    check_match "$f names the default socket $sock" "$(grep -c "$sock" "$top/$f")" "[1-9]*"
done

# ---------------------------------------------------------------- socket-dir
# The unit's helper on a private directory: made with owner, group and mode;
# a missing parent (no Postfix) is no error and makes nothing.
if [ "$(id -u)" = 0 ] && getent group postfix >/dev/null; then
    mkdir -p "$T/spool"
    "$R/usr/libexec/regmilter/socket-dir" "$T/spool/regmilter" nobody postfix
    check "socket-dir: owner, group, set-group-ID mode 2750" "$(stat -c '%a %U %G' "$T/spool/regmilter")" "2750 nobody postfix"
    chmod 777 "$T/spool/regmilter"
    "$R/usr/libexec/regmilter/socket-dir" "$T/spool/regmilter" nobody postfix
    check "socket-dir repairs a directory changed meanwhile" "$(stat -c '%a' "$T/spool/regmilter")" 2750
    "$R/usr/libexec/regmilter/socket-dir" "$T/no-postfix/regmilter" nobody postfix 2> "$T/socket-dir.err"
    check "socket-dir without Postfix's queue directory: exit 0, nothing made" \
        "$?:$([ -e "$T/no-postfix" ] && echo made)" "0:"
    check_match "socket-dir says why it made nothing" "$(cat "$T/socket-dir.err")" "*does not exist*"
else
    echo "# socket-dir not tried: needs root and a group postfix"
fi

finish
