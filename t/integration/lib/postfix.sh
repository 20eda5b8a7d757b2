# postfix.sh: regmilter in front of a private Postfix instance, for the
# end-to-end phases t/integration/postfix/*.sh and their entry point
# t/integration/postfix-e2e.sh (POSIX sh, sourced; sources common.sh,
# dns-server.sh and milter.sh from its own directory, which the caller names):
#   TLIB=$(cd "$(dirname "$0")/../lib" && pwd)
#   . "$TLIB/postfix.sh"
#
# A phase
# postfix_need          skip (exit 77, with the reason) unless root, Postfix (postfix,
#                       postconf, smtp-sink, its daemons, the postfix user), nsd,
#                       drill and the build's regmilter, t/smtp-client and
#                       t/milter-client are there
# e2e_phase PHASE "SCENARIO..." [ARGS...]
#       postfix_need, then: PHASE's scenarios are the names in the second
#       argument; ARGS (the script's own arguments) pick some of them (none:
#       all; an unknown name: exit 2 with the list; --list: print the list).
#       Makes E2E_DIR (everything of the phase; E2E_KEEP=DIR keeps a copy),
#       MILTER_DIR=$E2E_DIR/milter owned by postfix, MILTER_USER=postfix, and
#       E2E_IPV6 (yes when the host has ::1, else no).
# wanted SCENARIO       true when SCENARIO was picked
# e2e_start [--no-postfix]
#       NSD with the zones of t/fixtures/e2e/, the milter on a unix socket in
#       $MILTER_DIR with the base configuration (enforce, unregistered =
#       reject, enforce_after 2020-01-01, on_error = tempfail), and postfix_start;
#       all stopped at exit
# e2e_config MODE UNREGISTERED ENFORCE_AFTER ON_ERROR [MORE]
#       the milter's configuration (milter_config's placeholders, and
#       $DNS_SERVER): written, and reloaded with SIGHUP when the milter runs,
#       only when it differs from the file's; false when the reload failed
# e2e_config_broken TEXT  TEXT becomes the configuration file (no reload)
# e2e_finish            the checks every phase ends with (decision lines carry the
#                       queue id; no sanitizer report once the milters have
#                       stopped), then finish
#
# Postfix
# postfix_start         smtp-sink (each delivery a file in $E2E_DIR/sink) and Postfix
#                       (master -c $E2E_DIR/pf, its own queue and data directories)
#                       with smtpd on 127.0.0.1:$SMTP_PORT: smtpd_milters = $MILTER_SOCKET,
#                       XCLIENT from 127.0.0.1, relaying everything to the sink;
#                       stopped at exit (postfix_stop)
# session NAME ADDR HELO < commands
#       EHLO, XCLIENT ADDR=ADDR HELO=HELO, EHLO HELO, the commands, QUIT;
#       commands and replies in $E2E_DIR/s/NAME.out
# raw_session NAME < commands   the same without XCLIENT and without QUIT
# reply NAME 'COMMAND' [N]      last line of the reply to the Nth (default 1st) COMMAND
# code NAME 'COMMAND' [N]       its "550 5.7.23"
# message TOKEN [HEADER...]     DATA and a message whose Subject is TOKEN
# wait_delivered NAME [N]       until the message of the Nth "." of session NAME
#                               has left the queue (30 s at most; at once when
#                               it was not queued)
# wait_queue_empty              until nothing is queued (30 s at most)
# delivered_to TOKEN            recipients that received TOKEN, sorted ("" = nobody)
# headers_of TOKEN              the header block of its first copy, unfolded
# header_line TOKEN NAME        the first NAME: header of it
# (reply, code, message, delivered_to, headers_of, header_line: lib/smtp.sh;
# wait_until: lib/common.sh)

. "$TLIB/common.sh"
. "$TLIB/dns-server.sh"
FIX_E2E=${FIX_E2E:-$(cd "$TLIB/../../fixtures/e2e" && pwd)}
. "$TLIB/milter.sh"
. "$TLIB/smtp.sh"   # reply, code, message, delivered_to, headers_of, header_line, sink_start

# ---------------------------------------------------------------- a phase

postfix_need() {
    [ "$(id -u)" = 0 ] || skip "needs root: Postfix's master runs as root"
    need_cmd postfix postconf /usr/sbin/smtp-sink
    need_build regmilter t/smtp-client t/milter-client
    [ -x "$NSD" ] || need_cmd nsd
    need_cmd drill
    id postfix >/dev/null 2>&1 || skip "no postfix user (install the postfix package)"
    DAEMON_DIR=$(postconf -dh daemon_directory)
    [ -x "$DAEMON_DIR/smtpd" ] && [ -x "$DAEMON_DIR/master" ] || skip "postfix daemons not found in $DAEMON_DIR"
}

e2e_phase() {
    E2E_PHASE=$1
    # shellcheck disable=SC2086
    E2E_SCENARIOS=$(echo $2) # one space between names
    shift 2
    if [ "${1:-}" = --list ]; then
        echo "$E2E_SCENARIOS" | tr ' ' '\n'
        exit 0
    fi
    for _a in "$@"; do
        case " $E2E_SCENARIOS " in
        *" $_a "*) ;;
        *)
            echo "$E2E_PHASE: no scenario '$_a'; there are: $E2E_SCENARIOS" >&2
            exit 2
            ;;
        esac
    done
    ONLY="$*"
    postfix_need
    tmpdir_new E2E_DIR
    at_exit '[ -n "${E2E_KEEP:-}" ] && rm -rf "$E2E_KEEP" && cp -a "$E2E_DIR" "$E2E_KEEP"'
    # smtpd (user postfix) reaches the socket in $E2E_DIR/milter.
    chmod 755 "$E2E_DIR"
    mkdir -p "$E2E_DIR/pf" "$E2E_DIR/queue" "$E2E_DIR/data" "$E2E_DIR/sink" "$E2E_DIR/s" "$E2E_DIR/milter"
    # $E2E_DIR/milter belongs to the milter's user, as systemd's RuntimeDirectory
    # does: after leaving root it can still remove its socket and pid file.
    chown postfix "$E2E_DIR/data" "$E2E_DIR/sink" "$E2E_DIR/milter"
    MILTER_DIR=$E2E_DIR/milter
    SMTP_DIR=$E2E_DIR   # lib/smtp.sh: sessions in $E2E_DIR/s, deliveries in $E2E_DIR/sink
    MILTER_USER=postfix
    if grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6 2>/dev/null; then
        E2E_IPV6=yes
    else
        E2E_IPV6=no
    fi
    E2E_CONFIG_NOW=""
}

wanted() {
    [ -z "$ONLY" ] && return 0
    case " $ONLY " in *" $1 "*) return 0 ;; esac
    return 1
}

e2e_start() {
    dns_server_start reg.e2e.test="$FIX_E2E/reg.e2e.test.zone" block.e2e.test="$FIX_E2E/block.e2e.test.zone" \
        spf.e2e.test="$FIX_E2E/spf.e2e.test.zone"
    e2e_config enforce reject 2020-01-01 tempfail
    milter_start
    [ "${1:-}" = --no-postfix ] || postfix_start
}

e2e_config() {
    _want="$* $DNS_SERVER"
    [ "$_want" = "$E2E_CONFIG_NOW" ] && return 0
    milter_config "$@"
    E2E_CONFIG_NOW=$_want
    milter_running || return 0
    milter_reload
}

e2e_config_broken() {
    _milter_setup
    printf '%b' "$1" > "$MILTER_CONF"
    E2E_CONFIG_NOW=broken
}

e2e_finish() {
    check "every decision line starts with the session and queue id fields ($E2E_PHASE)" \
        "$(cat "$MILTER_DIR"/milter-*.log 2>/dev/null | grep ' stage=' |
            grep -vc 'regmilter\[[0-9]*\]: session=[0-9A-F.]* id=')" 0
    # LeakSanitizer reports when the process exits: stop every milter first
    # (libmilter takes up to 5 s to notice; Postfix stops meanwhile).
    milter_retire
    postfix_stop
    milter_stop
    check "no sanitizer report from the milter (SANITIZE builds) ($E2E_PHASE)" "$(milter_sanitizer_reports)" 0
    finish
}

# ---------------------------------------------------------------- waiting

# ---------------------------------------------------------------- Postfix

_pf_write_config() {
    if [ "$E2E_IPV6" = yes ]; then
        # XCLIENT ADDR=IPV6:... needs Postfix's IPv6 support, which needs a host with IPv6.
        _inet_protocols=all
    else
        _inet_protocols=ipv4
    fi
    cat > "$E2E_DIR/pf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $E2E_DIR/queue
data_directory = $E2E_DIR/data
daemon_directory = $DAEMON_DIR
command_directory = $(postconf -dh command_directory)
meta_directory = $(postconf -dh meta_directory)
shlib_directory = $(postconf -dh shlib_directory)
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = $E2E_DIR
maillog_file = $E2E_DIR/maillog
myhostname = mx.e2e.test
mydomain = e2e.test
myorigin = e2e.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = $_inet_protocols
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
smtpd_milters = $MILTER_SOCKET
milter_default_action = tempfail
# Should a delivery to the sink ever be deferred, retry at once, not in minutes.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
EOF
    cat > "$E2E_DIR/pf/master.cf" <<EOF
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
    # Postfix reads a file changed in the last 2 s again and again until it
    # settles: every daemon would wait that long at its start.
    touch -d '-10 seconds' "$E2E_DIR/pf/main.cf" "$E2E_DIR/pf/master.cf"
}

# The queue and data directories with the owners and modes of the
# installation's postfix-files, as "postfix start" would make them. Started
# directly, the master comes up in well under a second; "postfix start" (and
# "postfix check") spend seconds checking every file of the installation.
# Without postfix-files: "postfix check", which makes them too.
_pf_make_dirs() {
    _files=$(postconf -dh meta_directory)/postfix-files
    if [ ! -r "$_files" ]; then
        postfix -c "$E2E_DIR/pf" check
        return
    fi
    sed -n 's/^\$\(queue\|data\)_directory\([^:]*\):d:\([^:]*\):\([^:]*\):\([0-7]*\):.*/\1\2 \3 \4 \5/p' "$_files" |
        while read -r _dir _owner _group _mode; do
            [ "$_owner" = '$mail_owner' ] && _owner=postfix
            case $_group in -) _group="" ;; '$setgid_group') _group=postdrop ;; esac
            install -d -m "$_mode" -o "$_owner" ${_group:+-g "$_group"} "$E2E_DIR/$_dir" || return 1
        done
}

_pf_fail() {
    echo "# postfix did not start: $1"
    sed 's/^/#   /' "$E2E_DIR/pf-start.log"
    tail -n 20 "$E2E_DIR/maillog" 2>/dev/null | sed 's/^/#   /'
    exit 1
}

postfix_start() {
    sink_start
    _milter_setup
    _try=0
    while :; do
        _try=$((_try + 1))
        SMTP_PORT=$(free_port) || exit 1
        _pf_write_config
        _pf_make_dirs > "$E2E_DIR/pf-start.log" 2>&1 || _pf_fail "cannot make the queue directories"
        if "$DAEMON_DIR/master" -c "$E2E_DIR/pf" -w >> "$E2E_DIR/pf-start.log" 2>&1; then
            break
        fi
        # The port taken between free_port and the bind: another one.
        grep -q 'Address already in use' "$E2E_DIR/maillog" "$E2E_DIR/pf-start.log" 2>/dev/null &&
            [ $_try -lt 3 ] || _pf_fail "master -w"
        : > "$E2E_DIR/maillog"
    done
    PF_MASTER_PID=$(tr -d ' ' < "$E2E_DIR/queue/pid/master.pid")
    at_exit "postfix_stop"
    wait_until 10 smtp_greets "$SMTP_PORT" || _pf_fail "no SMTP greeting on 127.0.0.1:$SMTP_PORT"
    echo "# postfix -c $E2E_DIR/pf on 127.0.0.1:$SMTP_PORT, smtp-sink on 127.0.0.1:$SINK_PORT"
}

# Gone, or a zombie (its parent is init, which reaps when it gets to it).
_pf_master_gone() {
    case $(cut -d ' ' -f 3 "/proc/$PF_MASTER_PID/stat" 2>/dev/null) in
    "" | Z) return 0 ;;
    esac
    return 1
}

# What "postfix stop" does (SIGTERM to the master, which ends its children),
# without its 1 s steps.
postfix_stop() {
    [ -n "${PF_MASTER_PID:-}" ] || return 0
    kill "$PF_MASTER_PID" 2>/dev/null
    wait_until 10 _pf_master_gone || kill -9 "$PF_MASTER_PID" 2>/dev/null
    PF_MASTER_PID=""
}

# ---------------------------------------------------------------- sessions

session() {
    {
        echo "EHLO client.e2e.test"
        echo "XCLIENT ADDR=$2 NAME=[UNAVAILABLE] HELO=$3"
        echo "EHLO $3"
        cat
        echo "QUIT"
    } > "$E2E_DIR/s/$1.smtp"
    timeout 120 "$BUILD/t/smtp-client" 127.0.0.1 "$SMTP_PORT" "$E2E_DIR/s/$1.smtp" > "$E2E_DIR/s/$1.out" 2>&1
}

raw_session() {
    cat > "$E2E_DIR/s/$1.smtp"
    timeout 120 "$BUILD/t/smtp-client" 127.0.0.1 "$SMTP_PORT" "$E2E_DIR/s/$1.smtp" > "$E2E_DIR/s/$1.out" 2>&1
}

# ---------------------------------------------------------------- deliveries

# _pf_queued [QUEUE_ID]: the first queue file (of QUEUE_ID), "" when none.
_pf_queued() {
    find "$E2E_DIR/queue/incoming" "$E2E_DIR/queue/active" "$E2E_DIR/queue/deferred" \
        "$E2E_DIR/queue/hold" "$E2E_DIR/queue/maildrop" -type f ${1:+-name "$1"} 2>/dev/null | head -n 1
}

_pf_not_queued() {
    [ -z "$(_pf_queued "${1:-}")" ]
}

wait_delivered() {
    _qid=$(reply "$1" '.' "${2:-1}" | sed -n 's/^250 .* queued as \([0-9A-Za-z]*\).*/\1/p')
    [ -n "$_qid" ] || return 0
    wait_until 30 _pf_not_queued "$_qid" && return 0
    echo "# message $_qid of session $1 still queued after 30 s:"
    grep "$_qid" "$E2E_DIR/maillog" | tail -n 5 | sed 's/^/#   /'
    return 1
}

wait_queue_empty() {
    wait_until 30 _pf_not_queued && return 0
    echo "# queue not empty after 30 s:"
    find "$E2E_DIR/queue/deferred" -type f | head -n 3 | sed 's/^/#   /'
    return 1
}

