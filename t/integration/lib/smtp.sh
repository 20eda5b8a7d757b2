# smtp.sh: SMTP sessions and smtp-sink deliveries for the end-to-end tests
# (POSIX sh, sourced after common.sh). Session files live in $SMTP_DIR/s,
# deliveries in $SMTP_DIR/sink (SMTP_DIR: the test's directory, $T unless set);
# both directories are created by sink_start / smtp_session.
#
# smtp_greets PORT          127.0.0.1:PORT answers with 220 now
# wait_smtp PORT            until 127.0.0.1:PORT greets with 220 (10 s at most)
# sink_start                smtp-sink on a free port, writing every delivery to
#                           $T/sink; sets SINK_PORT; stopped at exit
# smtp_session NAME PORT [SOURCE] < SCRIPT
#                           plays SCRIPT (smtp-client syntax) against
#                           127.0.0.1:PORT, from the local address SOURCE when
#                           given; commands and replies go to $T/s/NAME.out
# reply NAME 'COMMAND' [N]  last line of the reply to the Nth (default 1st) COMMAND
# code NAME 'COMMAND' [N]   "550 5.7.23" of that reply
# message TOKEN [HEADER...] DATA, a message whose Subject is TOKEN, and "."
# delivered_to TOKEN        recipients that received TOKEN, sorted ("" = nobody)
# headers_of TOKEN          the header block of the first delivered copy, unfolded
# header_line TOKEN NAME    its first NAME: header
# wait_sink TOKEN COUNT     until COUNT copies of TOKEN reached the sink (30 s at most)

_smtp_dir() { echo "${SMTP_DIR:-$T}"; }

smtp_greets() {
    printf 'QUIT\n' | timeout 2 "$BUILD/t/smtp-client" -t 1000 127.0.0.1 "$1" 2>/dev/null | grep -q '^220 '
}

wait_smtp() {
    wait_until 10 smtp_greets "$1"
}

sink_start() {
    mkdir -p "$(_smtp_dir)/sink"
    chown postfix "$(_smtp_dir)/sink"
    _ss_try=0
    while [ $_ss_try -lt 3 ]; do   # a port taken between free_port and the bind: another one
        _ss_try=$((_ss_try + 1))
        SINK_PORT=$(free_port) || exit 1
        /usr/sbin/smtp-sink -u postfix -d "$(_smtp_dir)/sink/%Y%m%d%H%M%S." 127.0.0.1:"$SINK_PORT" 64 \
            > "$(_smtp_dir)/sink.log" 2>&1 &
        SINK_PID=$!
        at_exit "kill $SINK_PID; wait $SINK_PID"
        wait_smtp "$SINK_PORT" && return 0
        kill "$SINK_PID" 2>/dev/null
        wait "$SINK_PID" 2>/dev/null
    done
    echo "# smtp-sink did not start; its log:"
    sed 's/^/#   /' "$(_smtp_dir)/sink.log"
    exit 1
}

smtp_session() {
    mkdir -p "$(_smtp_dir)/s"
    cat > "$(_smtp_dir)/s/$1.smtp"
    if [ -n "${3:-}" ]; then
        timeout 120 "$BUILD/t/smtp-client" -s "$3" 127.0.0.1 "$2" "$(_smtp_dir)/s/$1.smtp" > "$(_smtp_dir)/s/$1.out" 2>&1
    else
        timeout 120 "$BUILD/t/smtp-client" 127.0.0.1 "$2" "$(_smtp_dir)/s/$1.smtp" > "$(_smtp_dir)/s/$1.out" 2>&1
    fi
}

reply() {
    # Through the environment: awk -v would turn the \xHH of a command into bytes.
    E2E_CMD="> $2" E2E_N="${3:-1}" awk '
        BEGIN { cmd = ENVIRON["E2E_CMD"]; n = ENVIRON["E2E_N"] + 0 }
        found && /^[>!]/ { exit }
        found { last = $0 }
        $0 == cmd { seen++; if (seen == n) found = 1 }
        END { print last }' "$(_smtp_dir)/s/$1.out"
}

code() {
    reply "$@" | awk '{ print $1 " " $2 }'
}

message() {
    _tok=$1
    shift
    echo "DATA"
    echo "From: <sender@e2e.test>"
    echo "To: <rcpt@dest.test>"
    echo "Subject: $_tok"
    for _h in "$@"; do echo "$_h"; done
    echo ""
    echo "body of $_tok"
    echo "."
}

sink_files() {
    grep -l -x "Subject: $1" "$(_smtp_dir)"/sink/* 2>/dev/null
}

delivered_to() {
    _f=$(sink_files "$1")
    [ -n "$_f" ] || { echo ""; return; }
    # shellcheck disable=SC2086
    sed -n 's/^X-Rcpt-Args: <\([^>]*\)>.*/\1/p' $_f | sort -u | tr '\n' ' ' | sed 's/ $//'
}

headers_of() {
    _f=$(sink_files "$1" | head -n 1)
    [ -n "$_f" ] || return 0
    awk '/^$/ { exit } /^[ \t]/ { sub(/^[ \t]+/, " "); line = line $0; next }
         { if (line != "") print line; line = $0 } END { if (line != "") print line }' "$_f"
}

header_line() {
    headers_of "$1" | grep -i -m 1 "^$2:" || true
}

_sink_has() { [ "$(sink_files "$1" | wc -l)" -ge "$2" ]; }
wait_sink() {
    wait_until 30 _sink_has "$1" "$2"
}
