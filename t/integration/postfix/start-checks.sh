#!/bin/sh
# start-checks.sh: regmilter -t on the end-to-end configuration and on a
# broken one, and the milter started by root: it leaves root for the
# configured user (postfix), its socket is 0660 and owned by that user (so
# that Postfix's smtpd can connect), its pid file holds its pid.
# No Postfix here: NSD and the milter only.
# Needs root, nsd, drill (and what t/integration/lib/postfix.sh checks);
# exits 77 (skipped) with the reason when one is missing.
# Run alone: sudo BUILD=$PWD/build sh t/integration/postfix/start-checks.sh [SCENARIO...]
#   (--list: the scenarios; E2E_KEEP=DIR keeps everything for debugging)
set -u
TLIB=$(cd "$(dirname "$0")/../lib" && pwd)
. "$TLIB/postfix.sh"
e2e_phase start-checks "config-check socket" "$@"
dns_server_start reg.e2e.test="$FIX_E2E/reg.e2e.test.zone" block.e2e.test="$FIX_E2E/block.e2e.test.zone" \
    spf.e2e.test="$FIX_E2E/spf.e2e.test.zone"
e2e_config enforce reject 2020-01-01 tempfail

if wanted config-check; then
    "$BUILD/regmilter" -c "$MILTER_CONF" -t > "$E2E_DIR/check.out" 2>&1
    check "regmilter -t accepts the test configuration" "$?" 0
    printf '[milter]\nmode = sometimes\n[spf]\nfail = maybe\n' > "$E2E_DIR/broken.ini"
    "$BUILD/regmilter" -c "$E2E_DIR/broken.ini" -t > "$E2E_DIR/check-broken.out" 2>&1
    check "regmilter -t on a broken file: exit 1" "$?" 1
    check "regmilter -t prints every problem with file:line" \
        "$(grep -c "^$E2E_DIR/broken.ini:[0-9]*: " "$E2E_DIR/check-broken.out")" 2
fi

if wanted socket; then
    milter_start
    check_match "socket mode 0660, owned by postfix" "$(stat -c '%a %U' "${MILTER_SOCKET#unix:}")" "660 postfix"
    check "milter dropped root to the configured user" \
        "$(awk '/^Uid:/ { print $2 "/" $3 }' "/proc/$MILTER_PID/status")" "$(id -u postfix)/$(id -u postfix)"
    check "pid file holds the milter's pid" "$(cat "$MILTER_DIR/regmilter.pid" 2>/dev/null)" "$MILTER_PID"
fi

e2e_finish
