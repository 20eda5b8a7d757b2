#!/bin/sh
# postfix-e2e.sh: regmilter in front of a real Postfix, end to end. Runs the
# phases of t/integration/postfix/ (each starts on loopback ports chosen at
# run time its own NSD with the zones of t/fixtures/e2e/, build/regmilter on
# a unix socket, a private Postfix instance whose smtpd uses the milter and
# relays what it accepts to smtp-sink, which writes each delivery to a file;
# see t/integration/lib/postfix.sh), a few at a time, and prints their TAP
# lines phase by phase:
#   start-checks  regmilter -t; the milter leaves root, socket 0660, pid file
#   policy        registry, block list, IPv6, every SPF result, added headers
#   bulk          opt-outs at RCPT and for Precedence: bulk, who got what
#   trust         trusted network, SMTP AUTH, clients without an address
#   transactions  several transactions in one session
#   bad-input     long, NUL, 8-bit, empty, 1,000 recipients, dropped connections
#   reload        SIGHUP: snapshots, tag, enforce_after, observe, broken file
#   bulk-table    the opt-out table reloaded on SIGHUP and by itself
#   dns-trouble   DNS stopped, DNS that never answers
#   lifecycle     SIGTERM drain, killed milter, stale socket, inet/inet6 sockets
#   greylist      451 at RCPT then delivery after the delay, registered never
#                 delayed, the memory state across a milter restart
#   registry      regmilter-zone's registry and opt-out zones on NSD and rbldnsd
# Sessions at the milter protocol level use miltertest(8) (the .lua files of
# t/fixtures/e2e/). Needs root (Postfix's master runs as root), postfix,
# smtp-sink, nsd, drill; exits 77 (skipped) with the reason when one is
# missing. TAP: "ok - NAME" / "not ok - NAME: got X, want Y"; exit 1 when
# anything failed (or a phase ended without saying why).
# Run all:   sudo BUILD=$PWD/build sh t/integration/postfix-e2e.sh
# Run some:  sudo BUILD=$PWD/build sh t/integration/postfix-e2e.sh policy reload/tag lifecycle/inet6
# One phase directly: sudo BUILD=$PWD/build sh t/integration/postfix/policy.sh [SCENARIO...]
# E2E_JOBS=N phases at a time (default 4); E2E_KEEP=DIR keeps everything of
# each phase in DIR/PHASE for debugging.
set -u
here=$(cd "$(dirname "$0")" && pwd)
TLIB=$here/lib
. "$TLIB/postfix.sh"
postfix_need

# Printed in this order; any other phase file found comes after them.
PHASES="start-checks policy bulk trust transactions bad-input reload bulk-table dns-trouble lifecycle registry"
for _f in "$here"/postfix/*.sh; do
    _p=$(basename "$_f" .sh)
    case " $PHASES " in *" $_p "*) ;; *) PHASES="$PHASES $_p" ;; esac
done
for _p in $PHASES; do
    [ -f "$here/postfix/$_p.sh" ] || { echo "postfix-e2e: no phase script $here/postfix/$_p.sh" >&2; exit 2; }
done

# The arguments: PHASE (all of it) or PHASE/SCENARIO. args_PHASE (a dash
# in PHASE as _) holds "all" or the scenarios asked for; PHASES becomes the
# phases asked for.
if [ $# -gt 0 ]; then
    _picked=""
    for _a in "$@"; do
        _p=${_a%%/*}
        case " $PHASES " in
        *" $_p "*) ;;
        *) echo "postfix-e2e: no phase '$_p'; there are: $PHASES" >&2; exit 2 ;;
        esac
        _v=$(echo "args_$_p" | tr - _)
        if [ "$_a" = "$_p" ]; then
            eval "$_v=all"
        else
            eval "_cur=\${$_v:-}"
            # shellcheck disable=SC2154
            [ "$_cur" = all ] || eval "$_v=\"\$_cur \${_a#*/}\""
        fi
        case " $_picked " in *" $_p "*) ;; *) _picked="$_picked $_p" ;; esac
    done
    _order=""
    for _p in $PHASES; do
        case " $_picked " in *" $_p "*) _order="$_order $_p" ;; esac
    done
    PHASES=$_order
fi

tmpdir_new RUN
JOBS=${E2E_JOBS:-4}
case $JOBS in '' | *[!0-9]* | 0) echo "postfix-e2e: E2E_JOBS must be a number > 0, got '$JOBS'" >&2; exit 2 ;; esac
start=$(now_ms)
total_ok=0
total_not_ok=0
skipped=""
ran=0

# launch PHASE: its script in the background, output in $RUN/PHASE.out
launch() {
    _v=$(echo "args_$1" | tr - _)
    eval "_args=\${$_v:-all}"
    [ "$_args" = all ] && _args=""
    # shellcheck disable=SC2086
    E2E_KEEP=${E2E_KEEP:+$E2E_KEEP/$1} sh "$here/postfix/$1.sh" $_args > "$RUN/$1.out" 2>&1 &
    echo $! > "$RUN/$1.pid"
    now_ms > "$RUN/$1.start"
    at_exit "kill $! 2>/dev/null && wait $!"
}

# done_yet PHASE: true once PHASE has ended; its status then is in $RUN/PHASE.rc
done_yet() {
    [ -f "$RUN/$1.rc" ] && return 0
    [ -f "$RUN/$1.pid" ] || return 1
    _pid=$(cat "$RUN/$1.pid")
    kill -0 "$_pid" 2>/dev/null && return 1
    wait "$_pid"
    echo $? > "$RUN/$1.rc"
    echo $(($(now_ms) - $(cat "$RUN/$1.start"))) > "$RUN/$1.ms"
    return 0
}

# count_running: RUNNING = the phases launched and not ended (not in a
# subshell: wait only knows the shell's own children)
count_running() {
    RUNNING=0
    for _p in $PHASES; do
        [ -f "$RUN/$_p.pid" ] && ! done_yet "$_p" && RUNNING=$((RUNNING + 1))
    done
}

# report PHASE: its lines, a "not ok" when it failed without one, the tally.
report() {
    _rc=$(cat "$RUN/$1.rc")
    _ok=$(grep -c '^ok ' "$RUN/$1.out")
    _nok=$(grep -c '^not ok ' "$RUN/$1.out")
    echo "# ---- phase $1: exit $_rc, $(($(cat "$RUN/$1.ms") / 1000)) s"
    if [ "$_rc" = 77 ]; then
        echo "# skip $1: $(tail -n 1 "$RUN/$1.out")"
        skipped="$skipped $1"
        return
    fi
    cat "$RUN/$1.out"
    ran=$((ran + 1))
    total_ok=$((total_ok + _ok))
    total_not_ok=$((total_not_ok + _nok))
    if [ "$_rc" != 0 ] && [ "$_nok" = 0 ]; then
        echo "not ok - phase $1 ended with exit status $_rc: $(grep -v '^ok ' "$RUN/$1.out" | tail -n 1)"
        total_not_ok=$((total_not_ok + 1))
    elif [ "$_rc" = 0 ] && [ "$_ok" = 0 ]; then
        echo "not ok - phase $1 checked nothing"
        total_not_ok=$((total_not_ok + 1))
    fi
}

# Print the phases that have ended, in order, up to the first still running.
printed=""
report_ready() {
    for _p in $PHASES; do
        case " $printed " in *" $_p "*) continue ;; esac
        done_yet "$_p" || return 0
        report "$_p"
        printed="$printed $_p"
    done
}

# The longest phases first, so that the others fill the time beside them.
launch_order=""
for p in bulk-table lifecycle dns-trouble $PHASES; do
    case " $PHASES " in *" $p "*) ;; *) continue ;; esac
    case " $launch_order " in *" $p "*) ;; *) launch_order="$launch_order $p" ;; esac
done
for p in $launch_order; do
    count_running
    while [ "$RUNNING" -ge "$JOBS" ]; do
        report_ready
        sleep 0.2
        count_running
    done
    launch "$p"
done
count_running
while [ "$RUNNING" -gt 0 ]; do
    report_ready
    sleep 0.2
    count_running
done
report_ready

echo "# postfix-e2e: $ran phase(s) in $((($(now_ms) - start) / 1000)) s, $JOBS at a time:" \
    "$total_ok passed, $total_not_ok failed${skipped:+, skipped:$skipped}"
[ "$ran" = 0 ] && [ -n "$skipped" ] && skip "every phase skipped:$skipped"
[ "$total_not_ok" = 0 ] && [ "$total_ok" -gt 0 ] && exit 0
exit 1
