#!/bin/sh
# lifecycle.sh: the milter's process under a real Postfix: SIGTERM while a
# session is open (served to its end, new sessions get Postfix's tempfail,
# then a clean exit that removes the pid file and the socket), the milter
# killed (Postfix's milter_default_action), a restart over the stale socket
# file a killed milter leaves, and whole milter sessions over an
# inet:PORT@127.0.0.1 socket (miltertest(8), t/fixtures/e2e/unknown-client.lua)
# and an inet6:PORT@::1 socket (build/t/milter-bench). Every start waits
# until the milter answers on its socket.
# Needs root, postfix, smtp-sink, nsd, drill (t/integration/lib/postfix.sh);
# exits 77 (skipped) with the reason when one is missing; without miltertest,
# ::1 or build/t/milter-bench the inet or inet6 scenario says so and is not run.
# Run alone: sudo BUILD=$PWD/build sh t/integration/postfix/lifecycle.sh [SCENARIO...]
#   (--list: the scenarios; E2E_KEEP=DIR keeps everything for debugging)
set -u
TLIB=$(cd "$(dirname "$0")/../lib" && pwd)
. "$TLIB/postfix.sh"
e2e_phase lifecycle "drain killed stale-socket inet inet6" "$@"
if wanted drain || wanted killed || wanted stale-socket; then
    e2e_start
else
    e2e_start --no-postfix
fi
SOCK=${MILTER_SOCKET#unix:}

# SIGTERM while a session is in the middle of a transaction: it is served to
# its end (drain), then the process exits.
if wanted drain; then
    milter_running || milter_start
    rm -f "$E2E_DIR/ready" "$E2E_DIR/go"
    session draining 198.51.100.7 mx.spf.e2e.test <<EOF &
MAIL FROM:<alice@pass.spf.e2e.test>
RCPT TO:<bob@dest.test>
!touch $E2E_DIR/ready
!wait-file $E2E_DIR/go
$(message e2e-draining)
EOF
    drain_pid=$!
    wait_until 10 test -f "$E2E_DIR/ready"
    kill -TERM "$MILTER_PID"
    sleep 1
    check "SIGTERM: still running while a session is open" \
        "$(kill -0 "$MILTER_PID" 2>/dev/null && echo running || echo gone)" "running"
    session during-drain 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<alice@pass.spf.e2e.test>
EOF
    check "SIGTERM: a new session meanwhile gets Postfix's tempfail (socket removed)" \
        "$(code during-drain 'MAIL FROM:<alice@pass.spf.e2e.test>')" "451 4.7.1"
    touch "$E2E_DIR/go"
    wait $drain_pid
    check "SIGTERM: the open session is served to its end" "$(code draining '.')" "250 2.0.0"
    milter_wait_exit
    check "SIGTERM: the milter exits after the drain" \
        "$(kill -0 "$MILTER_PID" 2>/dev/null && echo running || echo gone)" "gone"
    wait "$MILTER_PID"
    check "SIGTERM: exit status 0" "$?" 0
    MILTER_PID=""
    check "SIGTERM: pid file and socket removed" \
        "$([ -e "$MILTER_DIR/regmilter.pid" ] || [ -e "$SOCK" ] && echo left || echo removed)" "removed"
    wait_delivered draining
    check "SIGTERM: the drained message was delivered" "$(delivered_to e2e-draining)" "bob@dest.test"
fi

if wanted killed; then
    milter_running || milter_start
    milter_kill
    session milter-dead 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<alice@pass.spf.e2e.test>
RCPT TO:<bob@dest.test>
EOF
    check_match "milter killed: Postfix's milter_default_action = tempfail" \
        "$(code milter-dead 'MAIL FROM:<alice@pass.spf.e2e.test>') $(code milter-dead 'RCPT TO:<bob@dest.test>')" \
        "*451 4.7.1*"
fi

# A killed milter leaves its socket file: the next one starts over it.
if wanted stale-socket; then
    milter_running || milter_start
    milter_kill
    check "killed milter left its socket file behind" "$([ -S "$SOCK" ] && echo stale)" "stale"
    milter_start
    session after-restart 198.51.100.7 mx.spf.e2e.test <<EOF
MAIL FROM:<alice@pass.spf.e2e.test>
EOF
    check "restart over a stale socket file: served again" \
        "$(code after-restart 'MAIL FROM:<alice@pass.spf.e2e.test>')" "250 2.1.0"
fi

# inet_milter SOCKET: the milter of the unix socket stopping (waited for at
# the end), a milter on SOCKET (-p, no pid file) once it answers there.
inet_milter() {
    milter_retire
    MILTER_SOCKET=$1
    milter_start -p "$MILTER_SOCKET" -P ""
    MILTER_SOCKET=unix:$SOCK
}

if wanted inet; then
    if command -v miltertest >/dev/null 2>&1; then
        INET_PORT=$(free_port) || exit 1
        inet_milter "inet:$INET_PORT@127.0.0.1"
        miltertest -s "$FIX_E2E/unknown-client.lua" -D "socket=inet:$INET_PORT@127.0.0.1" > "$E2E_DIR/s/inet.out" 2>&1
        check "inet:PORT@127.0.0.1 socket: a whole milter session" "$(sed -n 's/^eom=//p' "$E2E_DIR/s/inet.out")" \
            "continue"
        milter_retire
    else
        echo "# miltertest not installed: the inet socket is not tried"
    fi
fi

if wanted inet6; then
    if [ "$E2E_IPV6" = yes ] && [ -x "$BUILD/t/milter-bench" ]; then
        INET6_PORT=$(free_port) || exit 1
        inet_milter "inet6:$INET6_PORT@::1"
        # Five whole milter sessions over [::1] (registered client, SPF pass).
        "$BUILD/t/milter-bench" --socket "inet6:$INET6_PORT@::1" --pid "$MILTER_PID" --count 5 --concurrency 1 \
            --max-seconds 20 --ip-base 198.51.100. --ip-first 7 --ip-span 1 --from "<alice@pass.spf.e2e.test>" \
            --rcpt "<bob@dest.test>" --helo mx.spf.e2e.test --label inet6 > "$E2E_DIR/s/inet6.out" 2>&1
        check "inet6:PORT@::1 socket: five whole milter sessions" "$?" 0
        check_match "inet6:PORT@::1 socket: every message continues" "$(cat "$E2E_DIR/s/inet6.out")" "*answers=c:5*"
        milter_retire
    else
        echo "# no ::1 here (or no $BUILD/t/milter-bench): the inet6 socket is not tried"
    fi
fi

e2e_finish
