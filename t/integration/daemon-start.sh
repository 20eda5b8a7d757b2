#!/bin/sh
# daemon-start.sh: starting and stopping build/regmilter the way an
# administrator does, without an MTA: the command-line conventions (--help,
# --version, --opt=value), a second copy refused while the first serves (its
# socket untouched), a stale socket taken over, every start-up failure said on
# stderr with its reason, what -t checks (the user, the socket directory), and
# where log lines go ([milter] syslog_facility; stderr only in the foreground,
# never twice into the systemd journal). The syslog checks run as root in a
# private mount namespace whose /dev/log is build/t/syslog-sink; elsewhere
# they are skipped with the reason.
#
# Run alone: BUILD=$PWD/build sh t/integration/daemon-start.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/common.sh"
. "$here/lib/milter.sh"

need_build regmilter regmilter-query regmilter-zone t/milter-client t/syslog-sink
tmpdir_new MILTER_DIR
chmod 755 "$MILTER_DIR"
if [ "$(id -u)" = 0 ]; then
    MILTER_USER=nobody
    chown nobody "$MILTER_DIR"
fi
DNS_SERVER=127.0.0.1:9   # no DNS is asked in this test
milter_config enforce reject 2020-01-01 tempfail
R=$BUILD/regmilter
work=$MILTER_DIR/work
mkdir -p "$work"
SOCK_PATH=${MILTER_SOCKET#unix:}

# ---------------------------------------------------------------- the command line
for prog in regmilter regmilter-query regmilter-zone; do
    "$BUILD/$prog" --help > "$work/help.out" 2> "$work/help.err"
    check "$prog --help: exit status 0" "$?" 0
    check_match "$prog --help: usage on stdout" "$(head -n 1 "$work/help.out")" "usage: $prog *"
    check "$prog --help: nothing on stderr" "$(wc -c < "$work/help.err")" 0
    "$BUILD/$prog" --version > "$work/version.out" 2>&1
    check "$prog --version: exit status 0" "$?" 0
    check_match "$prog --version: the version" "$(cat "$work/version.out")" "$prog [0-9]*.[0-9]*"
    "$BUILD/$prog" --no-such-option > "$work/bad.out" 2> "$work/bad.err"
    check "$prog --no-such-option: exit status 2" "$?" 2
    check_match "$prog --no-such-option: said on stderr" "$(cat "$work/bad.err")" "*no-such-option*"
done
"$R" -V > "$work/v.out" 2>&1
check_match "regmilter -V: the version" "$(cat "$work/v.out")" "regmilter [0-9]*"
"$R" --config="$MILTER_CONF" --check > "$work/t.out" 2>&1
check "regmilter --config=FILE --check (the = form): exit status 0" "$?" 0
check_match "regmilter --config=FILE --check: OK" "$(tail -n 1 "$work/t.out")" "$MILTER_CONF: OK"
"$R" -c "$MILTER_DIR" -t > "$work/dir.out" 2>&1
check "regmilter -c DIRECTORY -t: exit status 1" "$?" 1
check_match "regmilter -c DIRECTORY: said so" "$(cat "$work/dir.out")" "*$MILTER_DIR*directory*"

# ---------------------------------------------------------------- -t: user and socket directory
sed "s|^user = .*|user = no-such-user-rm|" "$MILTER_CONF" > "$work/nouser.ini"
"$R" -c "$work/nouser.ini" -t > "$work/nouser.out" 2>&1
check "-t: a user that does not exist: exit status 1" "$?" 1
check_match "-t: names the user" "$(cat "$work/nouser.out")" "*\[milter\] user: user \"no-such-user-rm\": no such user*"
sed "s|^socket = .*|socket = unix:$MILTER_DIR/missing/regmilter.sock|" "$MILTER_CONF" > "$work/nodir.ini"
"$R" -c "$work/nodir.ini" -t > "$work/nodir.out" 2>&1
check "-t: a socket directory that does not exist: exit status 1" "$?" 1
check_match "-t: names the directory and why" "$(cat "$work/nodir.out")" \
    "*socket directory $MILTER_DIR/missing: No such file or directory*"
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$MILTER_DIR/rootonly"
    chmod 755 "$MILTER_DIR/rootonly"
    sed "s|^socket = .*|socket = unix:$MILTER_DIR/rootonly/regmilter.sock|" "$MILTER_CONF" > "$work/ro.ini"
    "$R" -c "$work/ro.ini" -t > "$work/ro.out" 2>&1
    check "-t as root: a directory the user cannot write: exit status 1" "$?" 1
    check_match "-t as root: names the user" "$(cat "$work/ro.out")" \
        "*socket directory $MILTER_DIR/rootonly is not writable by nobody*"
fi
sed "s|^socket = .*|socket = inet:10025@0.0.0.0|" "$MILTER_CONF" > "$work/wide.ini"
"$R" -c "$work/wide.ini" -t > "$work/wide.out" 2>&1
check "-t: a socket open to the network is a warning, not an error" "$?" 0
check_match "-t: the warning" "$(cat "$work/wide.out")" "*warning: \[milter\] socket: inet:10025@0.0.0.0 is reachable from the network*"

# ---------------------------------------------------------------- start-up failures, on stderr
# Not in the foreground: the reason must still reach the terminal (and the process must not stay).
"$R" -c "$work/nodir.ini" > "$work/bg.out" 2> "$work/bg.err"
check "no socket directory, started in the background: exit status 1" "$?" 1
check_match "the reason on stderr, with strerror" "$(cat "$work/bg.err")" \
    "regmilter: fatal: socket directory $MILTER_DIR/missing: No such file or directory"
printf '[milter]\nmode = sometimes\n' > "$work/broken.ini"
"$R" -c "$work/broken.ini" > "$work/broken.out" 2> "$work/broken.err"
check "a broken configuration: exit status 1" "$?" 1
check_match "every problem on stderr" "$(cat "$work/broken.err")" "*broken.ini:2: \[milter\] mode: \"sometimes\"*not starting*"
touch "$MILTER_DIR/plainfile"
"$R" -c "$MILTER_CONF" -p "unix:$MILTER_DIR/plainfile" > /dev/null 2> "$work/plain.err"
check "a file that is not a socket at the path: exit status 1" "$?" 1
check_match "said, and the file left alone" "$(cat "$work/plain.err") $(test -f "$MILTER_DIR/plainfile" && echo kept)" \
    "*$MILTER_DIR/plainfile exists and is not a socket* kept"

# ---------------------------------------------------------------- a second copy
milter_start
first=$MILTER_PID
inode_before=$(stat -c %i "$SOCK_PATH")
"$R" -c "$MILTER_CONF" -f > "$work/second.out" 2>&1
check "a second copy on the same socket: exit status 1" "$?" 1
check_match "a second copy: says who runs" "$(cat "$work/second.out")" "*fatal: already running (pid $first) on $SOCK_PATH*"
check "a second copy: the socket file is untouched" "$(stat -c %i "$SOCK_PATH" 2>/dev/null)" "$inode_before"
printf 'negotiate\n' | "$BUILD/t/milter-client" --socket "$MILTER_SOCKET" > "$work/neg.out" 2>&1
check_match "a second copy: the first still answers" "$(cat "$work/neg.out")" "*< negotiated*"
"$R" -c "$MILTER_CONF" > "$work/second-bg.out" 2>&1
check "a second copy in the background: exit status 1, before detaching" "$?" 1
check_match "the log has the version at start" "$(grep 'starting:' "$MILTER_LOG")" "*starting: regmilter [0-9]*.[0-9]*, config *"
milter_stop
check "SIGTERM: the milter removed its own socket" "$(test -e "$SOCK_PATH" && echo there || echo gone)" gone

# ---------------------------------------------------------------- a stale socket
milter_start
milter_kill
check "SIGKILL leaves the socket file behind" "$(test -S "$SOCK_PATH" && echo there || echo gone)" there
milter_start
check_match "a stale socket: taken over, and said" "$(grep 'stale socket' "$MILTER_LOG")" "*removed the stale socket $SOCK_PATH*"
milter_stop

# ---------------------------------------------------------------- where log lines go
# stderr only in the foreground; under systemd (JOURNAL_STREAM names stderr)
# nothing on stderr: the journal gets syslog's copy.
"$R" -c "$work/nodir.ini" -f > "$work/fg.out" 2>&1
check_match "-f: log lines on stderr" "$(cat "$work/fg.out")" "*Z regmilter\[*\]: fatal: socket directory*"
check "-f: a line is on stderr once" "$(grep -c 'fatal: socket directory' "$work/fg.out")" 1
: > "$work/journal.err"
js="$(stat -c %d "$work/journal.err"):$(stat -c %i "$work/journal.err")"
JOURNAL_STREAM=$js "$R" -c "$work/nodir.ini" -f 2>> "$work/journal.err" > /dev/null
check "-f with stderr the journal: exit status 1" "$?" 1
check "-f with stderr the journal: nothing on stderr (syslog has it)" "$(wc -c < "$work/journal.err")" 0

if [ "$(id -u)" != 0 ] || ! command -v unshare > /dev/null 2>&1; then
    echo "# skip: the syslog checks need root and unshare(1) (a private /dev/log)"
else
    # In a private mount namespace: a tmpfs /dev with the few nodes needed,
    # and /dev/log a symlink to the sink's socket.
    cat > "$work/ns.sh" <<EOF
set -e
mkdir -p "$work/olddev"
mount --rbind /dev "$work/olddev"
mount -t tmpfs tmpfs /dev
for n in null zero urandom random; do touch /dev/\$n; mount --bind "$work/olddev/\$n" /dev/\$n; done
ln -s "$work/log.sock" /dev/log
"$BUILD/t/syslog-sink" "$work/log.sock" 30 > "$work/syslog.out" &
sink=\$!
sleep 0.3
"$R" -c "$work/facility.ini" -f > "$work/facility.err" 2>&1 &
pid=\$!
sleep 1.5
kill -TERM \$pid
wait \$pid || true
JOURNAL_STREAM=$js "$R" -c "$work/nodir.ini" -f 2> "$work/journal.err" > /dev/null || true
sleep 0.3
kill \$sink
EOF
    sed "s|^\[milter\]|[milter]\nsyslog_facility = local3|" "$MILTER_CONF" > "$work/facility.ini"
    unshare -m --propagation private sh "$work/ns.sh" > "$work/ns.out" 2>&1
    check "private /dev/log set up" "$?" 0
    # local3 = 19; info = 6: <19*8+6> = <158>
    check_match "syslog_facility = local3: the start line with priority local3.info" \
        "$(grep 'starting: regmilter' "$work/syslog.out")" "<158>*regmilter\[*\]: starting: regmilter *"
    check_match "the start line names the version" "$(grep 'starting:' "$work/syslog.out")" "*starting: regmilter [0-9]*.[0-9]*, config*"
    check "-f: the same line on stderr too" "$(grep -c 'starting: regmilter' "$work/facility.err")" 1
    # mail = 2; err = 3: <19>
    check_match "journal case: the fatal line reached syslog (facility mail)" \
        "$(grep 'fatal: socket directory' "$work/syslog.out")" "<19>*regmilter\[*\]: fatal: socket directory*"
    check "journal case: and not stderr" "$(wc -c < "$work/journal.err")" 0
fi

finish
