# common.sh: shared helpers for t/integration/*.sh (POSIX sh, sourced).
#   . "$(dirname "$0")/lib/common.sh"
#
# at_exit CMD...        run CMD (one shell command string) when the script ends,
#                       however it ends (exit, failure, INT/TERM); last in, first run
# skip REASON           print "# skip: REASON" and exit 77 (t/run-tests counts a skip)
# need_cmd CMD...       skip unless every CMD is on PATH (or is an executable path)
# need_build FILE...    skip unless each $BUILD/FILE is executable
# tmpdir_new VAR        a fresh directory, removed at exit; its path goes into VAR
#                       (not "$(tmpdir_new)": at_exit in a subshell is lost)
# ok NAME               print "ok - NAME"
# not_ok NAME WHY       print "not ok - NAME: WHY" and remember the failure
# check NAME GOT WANT   ok when GOT = WANT, else "not ok - NAME: got 'GOT', want 'WANT'"
# check_match NAME GOT PATTERN   the same with a shell case pattern (glob)
# finish                print a summary line, exit 1 if anything failed, else 0
# now_ms                milliseconds since the epoch (GNU date)
# wait_until SECONDS CMD...   run CMD every 0.1 s until it succeeds; false after SECONDS
# free_port             a TCP+UDP port on 127.0.0.1 that nothing listens on now
#
# Needs $BUILD (absolute build directory) in the environment; t/run-tests exports it.
# Sourced once per script: the other libraries skip it when _th_loaded is set.

_th_loaded=1
_th_failed=0
_th_passed=0
_th_exit_cmds=""

_th_run_exit() {
    _th_rc=$?
    trap - EXIT INT TERM HUP
    # Run in reverse order of registration; never let one failing step stop the rest.
    eval "$_th_exit_cmds"
    exit "$_th_rc"
}
trap _th_run_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

at_exit() {
    _th_exit_cmds="{ $*; } >/dev/null 2>&1 || true
$_th_exit_cmds"
}

skip() {
    echo "# skip: $*"
    exit 77
}

need_cmd() {
    for _c in "$@"; do
        command -v "$_c" >/dev/null 2>&1 || [ -x "$_c" ] || skip "$_c not found (install it: contrib/install-deps)"
    done
}

need_build() {
    [ -n "${BUILD:-}" ] || skip "BUILD is not set (run through t/run-tests or set BUILD=/abs/build)"
    for _f in "$@"; do
        [ -x "$BUILD/$_f" ] || skip "$BUILD/$_f not built (make BUILD=$BUILD $BUILD/$_f)"
    done
}

tmpdir_new() {
    _d=$(mktemp -d "${TMPDIR:-/tmp}/regmilter-test.XXXXXX") || exit 1
    at_exit "rm -rf '$_d'"
    eval "$1=\$_d"
}

ok() {
    _th_passed=$((_th_passed + 1))
    echo "ok - $1"
}

not_ok() {
    _th_failed=$((_th_failed + 1))
    echo "not ok - $1: $2"
}

check() {
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "got '$2', want '$3'"; fi
}

check_match() {
    # shellcheck disable=SC2254
    case $2 in
    $3) ok "$1" ;;
    *) not_ok "$1" "got '$2', want a match for '$3'" ;;
    esac
}

finish() {
    echo "# $_th_passed passed, $_th_failed failed"
    [ "$_th_failed" = 0 ] && [ "$_th_passed" -gt 0 ] && exit 0
    exit 1
}

now_ms() {
    date +%s%3N
}

wait_until() {
    _wu_left=$(($1 * 10))
    shift
    until "$@"; do
        [ "$_wu_left" -le 0 ] && return 1
        sleep 0.1
        _wu_left=$((_wu_left - 1))
    done
    return 0
}

_th_port_busy() {
    command -v ss >/dev/null 2>&1 || return 1
    [ -n "$(ss -Hlntu "( sport = :$1 )" 2>/dev/null)" ]
}

free_port() {
    _n=0
    while [ $_n -lt 50 ]; do
        # 20000..59999 from /dev/urandom: below the kernel's ephemeral range
        _p=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
        _p=$((20000 + _p % 40000))
        if ! _th_port_busy "$_p"; then
            echo "$_p"
            return 0
        fi
        _n=$((_n + 1))
    done
    echo "free_port: no free port found" >&2
    return 1
}
