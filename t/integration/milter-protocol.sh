#!/bin/sh
# milter-protocol.sh: the real build/regmilter on a unix socket in a
# temporary directory, driven over the milter protocol by the project's
# scripted MTA (build/t/milter-client), against NSD on loopback serving the
# zones of t/fixtures/e2e/. No Postfix and no root needed; run everywhere.
#
# Scenarios are data: each t/fixtures/milter/PHASE/NAME.transcript holds the
# commands ("> ...") and the exact responses expected ("< ...", "*" matches
# anything). A phase is a configuration of the milter:
#   enforce   unregistered = reject, enforced: every stage, codes, edits
#   tag       after a SIGHUP reload to unregistered = tag
#   malformed bytes no MTA would send: the milter survives each and serves
#             the next connection
# Reload refusal and SIGTERM draining are checked between phases.
#
# Run all:   BUILD=$PWD/build sh t/integration/milter-protocol.sh
# Run some:  BUILD=$PWD/build sh t/integration/milter-protocol.sh enforce/bulk-per-recipient tag/unregistered
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
SCEN=$top/t/fixtures/milter
. "$here/lib/dns-server.sh"
. "$here/lib/milter.sh"

need_build regmilter t/milter-client
tmpdir_new MILTER_DIR
# MILTER_KEEP=DIR keeps a copy of everything (config, logs, transcripts) for debugging.
at_exit '[ -n "${MILTER_KEEP:-}" ] && rm -rf "$MILTER_KEEP" && cp -a "$MILTER_DIR" "$MILTER_KEEP"'

dns_server_start reg.e2e.test="$FIX_E2E/reg.e2e.test.zone" block.e2e.test="$FIX_E2E/block.e2e.test.zone" \
    spf.e2e.test="$FIX_E2E/spf.e2e.test.zone"

# wanted NAME: true when nothing in particular was asked for, or NAME (a
# phase or phase/scenario) was, or a scenario of phase NAME was.
ONLY="$*"
wanted() {
    [ -z "$ONLY" ] && return 0
    for _w in $ONLY; do
        case $1 in "$_w" | "$_w"/*) return 0 ;; esac
        case $_w in "$1"/*) return 0 ;; esac
    done
    return 1
}

# run_phase PHASE: every transcript of the phase, one TAP line each.
run_phase() {
    for _t in "$SCEN/$1"/*.transcript; do
        [ -f "$_t" ] || continue
        _name=$1/$(basename "$_t" .transcript)
        wanted "$_name" || continue
        "$BUILD/t/milter-client" --socket "$MILTER_SOCKET" --timeout-ms 8000 --max-seconds 60 "$_t" \
            > "$MILTER_DIR/$(echo "$_name" | tr / -).out" 2>&1
        _rc=$?
        if [ $_rc = 0 ]; then
            ok "$_name"
        else
            not_ok "$_name" "$(tail -n 1 "$MILTER_DIR/$(echo "$_name" | tr / -).out")"
            sed 's/^/#   /' "$MILTER_DIR/$(echo "$_name" | tr / -).out" | tail -n 30
        fi
        kill -0 "$MILTER_PID" 2>/dev/null || { not_ok "$_name: milter alive" "the milter died"; exit 1; }
    done
}

# ---------------------------------------------------------------- enforce
milter_config enforce reject 2020-01-01 tempfail
milter_start -P ""
run_phase enforce

# ---------------------------------------------------------------- same verdicts
# verdicts_of_query NAME: "STAGE[ RCPT] VERDICT" lines from regmilter-query's JSON.
verdicts_of_query() {
    _n=$("$BUILD/t/json-get" verdicts.# < "$MILTER_DIR/$1.json")
    _i=0
    while [ "$_i" -lt "$_n" ]; do
        _st=$("$BUILD/t/json-get" "verdicts.$_i.stage" < "$MILTER_DIR/$1.json")
        _act=$("$BUILD/t/json-get" "verdicts.$_i.action" < "$MILTER_DIR/$1.json")
        _code=$("$BUILD/t/json-get" "verdicts.$_i.code" < "$MILTER_DIR/$1.json")
        _x=$("$BUILD/t/json-get" "verdicts.$_i.xcode" < "$MILTER_DIR/$1.json")
        _r=""
        [ "$_st" = rcpt ] && _r=" $("$BUILD/t/json-get" "verdicts.$_i.rcpt" < "$MILTER_DIR/$1.json")"
        case $_act in
        reject | tempfail) echo "$_st$_r $_code $_x" ;;
        tag | continue) echo "$_st$_r continue" ;;
        *) echo "$_st$_r $_act" ;;
        esac
        _i=$((_i + 1))
    done
}
# verdicts_of_milter NAME: the same lines from a milter-client transcript
# (run --as-mta: no RCPT after a refused MAIL, no DATA without a recipient).
verdicts_of_milter() {
    awk '
        /^> connect / { st = "connect" } /^> helo / { st = "helo" } /^> mail / { st = "mail" }
        /^> rcpt / { st = "rcpt"; r = $3; gsub(/[<>]/, "", r) } /^> eoh/ { st = "eoh" } /^> eom/ { st = "eom" }
        /^< (continue|accept|reject|tempfail|discard|replycode)/ {
            v = $2; if (v == "replycode") v = $3 " " $4
            if (st == "eoh" && v == "continue") next   # end of headers passed: the end of message decides
            print (st == "eoh" || st == "eom" ? "data" : st) (st == "rcpt" ? " " r : "") " " v
        }' "$MILTER_DIR/$1.out"
}
if wanted same-verdicts; then
    while IFS='|' read -r name ip helo from rcpts headers; do
        name=$(echo "$name" | tr -d ' ')
        case $name in '' | \#*) continue ;; esac
        wanted "same-verdicts/$name" || continue
        ip=$(echo "$ip" | tr -d ' ') helo=$(echo "$helo" | tr -d ' ') from=$(echo "$from" | tr -d ' ')
        rcpts=$(echo "$rcpts" | tr -d ' ')
        set -- --ip "$ip" --helo "$helo" --from "$from"
        {
            echo "negotiate"
            echo "connect $helo $ip"
            echo "helo $helo"
            echo "mail <$from>"
        } > "$MILTER_DIR/$name.script"
        for r in $(echo "$rcpts" | tr ',' ' '); do
            set -- "$@" --rcpt "$r"
            echo "rcpt <$r>" >> "$MILTER_DIR/$name.script"
        done
        _old_ifs=$IFS
        IFS=';'
        for h in $headers; do
            h=$(echo "$h" | sed 's/^ *//; s/ *$//')
            [ -n "$h" ] || continue
            set -- "$@" --header "$h"
            echo "header ${h%%:*} ${h#*: }" >> "$MILTER_DIR/$name.script"
        done
        IFS=$_old_ifs
        printf 'eoh\neom\nquit\n' >> "$MILTER_DIR/$name.script"
        "$BUILD/regmilter-query" -c "$MILTER_CONF" --json "$@" > "$MILTER_DIR/$name.json" 2> "$MILTER_DIR/$name.err"
        "$BUILD/t/milter-client" --socket "$MILTER_SOCKET" --timeout-ms 8000 --as-mta "$MILTER_DIR/$name.script" \
            > "$MILTER_DIR/$name.out" 2>&1
        verdicts_of_query "$name" | grep -v '^\(connect\|helo\) continue$' > "$MILTER_DIR/$name.query-verdicts"
        verdicts_of_milter "$name" | grep -v '^\(connect\|helo\) continue$' > "$MILTER_DIR/$name.milter-verdicts"
        check "same-verdicts/$name: regmilter-query and the milter agree" \
            "$(tr '\n' ';' < "$MILTER_DIR/$name.milter-verdicts")" "$(tr '\n' ';' < "$MILTER_DIR/$name.query-verdicts")"
    done < "$SCEN/verdicts.table"
fi

# ---------------------------------------------------------------- malformed traffic
run_phase malformed
check_match "after every malformed packet the milter is alive" \
    "$(kill -0 "$MILTER_PID" 2>/dev/null && echo alive)" "alive"

# ---------------------------------------------------------------- reload
if wanted tag; then
    milter_config enforce tag 2020-01-01 tempfail
    milter_reload
    check "SIGHUP: the next configuration generation" "$MILTER_GENERATION" 2
    run_phase tag
    printf '[milter]\nmode = sometimes\n' > "$MILTER_CONF"
    milter_reload expect-refusal
    check_match "a broken configuration is refused with FILE:LINE" \
        "$(grep 'reload refused: ' "$MILTER_LOG" | head -n 1)" "*reload refused: $MILTER_CONF:2: \[milter\] mode:*"
    # The tag configuration is still in force.
    run_phase tag
fi

# ---------------------------------------------------------------- SIGTERM drains
if wanted drain; then
    rm -f "$MILTER_DIR/ready" "$MILTER_DIR/go"
    cat > "$MILTER_DIR/drain.transcript" <<EOF
> negotiate
< negotiate
< negotiated *
> connect mx.spf.e2e.test 198.51.100.7
< continue
> helo mx.spf.e2e.test
> mail <alice@pass.spf.e2e.test>
< continue
> touch $MILTER_DIR/ready
> wait-file $MILTER_DIR/go
> rcpt <bob@dest.test>
< continue
> eoh
< continue
> eom
< insheader 0 Authentication-Results: mx.e2e.test; spf=pass*
< insheader 1 Received-SPF: pass*
< continue
EOF
    "$BUILD/t/milter-client" --socket "$MILTER_SOCKET" --timeout-ms 8000 --max-seconds 60 \
        "$MILTER_DIR/drain.transcript" > "$MILTER_DIR/drain.out" 2>&1 &
    drain_pid=$!
    _i=0
    while [ ! -f "$MILTER_DIR/ready" ] && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
    kill -TERM "$MILTER_PID"
    sleep 0.5
    check "SIGTERM: still running while a session is open" \
        "$(kill -0 "$MILTER_PID" 2>/dev/null && echo running || echo gone)" running
    printf 'negotiate\n' | "$BUILD/t/milter-client" --socket "$MILTER_SOCKET" --timeout-ms 2000 \
        > "$MILTER_DIR/late.out" 2>&1
    check_match "SIGTERM: a new connection meanwhile is turned away" "$(head -n 1 "$MILTER_DIR/late.out")" \
        "< cannot connect*"
    touch "$MILTER_DIR/go"
    wait $drain_pid
    check "SIGTERM: the open session is served to its end" "$?" 0
    milter_wait_exit
    check "SIGTERM: the milter exits after the drain" \
        "$(kill -0 "$MILTER_PID" 2>/dev/null && echo running || echo gone)" gone
    wait "$MILTER_PID"
    check "SIGTERM: exit status 0" "$?" 0
    MILTER_PID=""
    check "SIGTERM: the socket is removed" "$([ -e "${MILTER_SOCKET#unix:}" ] && echo left || echo removed)" removed
fi

# With SANITIZE builds: AddressSanitizer, LeakSanitizer, UBSan and TSan report in the log.
check "no sanitizer report from the milter" \
    "$(cat "$MILTER_DIR"/milter-*.log | grep -c -E 'ERROR: (AddressSanitizer|LeakSanitizer)|WARNING: ThreadSanitizer|runtime error:')" 0
finish
