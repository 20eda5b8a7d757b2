#!/bin/sh
# optout-zone.sh: [bulk] zone end to end. An opt-out zone built by
# `regmilter-zone optout` from t/fixtures/registry/bulk-table is served by NSD
# (zone file) and by rbldnsd (dataset) on loopback; for every address of
# t/fixtures/registry/optout-recipients (+detail, @domain entries, mixed-case
# local parts and domains, addresses the table does not name) the RCPT
# verdicts with the zone must equal the verdicts with the local table:
#   query      regmilter-query --json, envelope-known bulk: verdicts, choices
#              and the source that decided ("zone:optout.test" where the
#              table names the address, "default" elsewhere)
#   headers    header-known bulk (List-Id): the recipients removed at the end
#   milter     the real build/regmilter over the milter protocol
#              (build/t/milter-client), pointed at NSD
#   rbldnsd    regmilter-query against rbldnsd serving the dataset
#   on-error   a zone that never answers (a black hole): on_error = tempfail
#              answers 451 4.4.3, on_error = accept delivers, both logged
#   cache      the milter answers from its cache for the TTL after NSD stops;
#              an address not asked before follows on_error
# Clients are in [trust] networks, so that no registry or SPF lookup mixes
# in: the opt-out is the recipient's choice and applies to trusted mail too.
# Run: BUILD=$PWD/build sh t/integration/optout-zone.sh [PART...]
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$here/lib/dns-server.sh"
. "$here/lib/milter.sh"

need_build regmilter regmilter-query regmilter-zone t/json-get t/milter-client t/dns-blackhole
F=$top/t/fixtures/registry
tmpdir_new W
chmod 0755 "$W" # rbldnsd reads the dataset as an unprivileged user
MILTER_DIR=$W/milter
mkdir -p "$MILTER_DIR"

ONLY="$*"
wanted() {
    [ -z "$ONLY" ] && return 0
    case " $ONLY " in *" $1 "*) return 0 ;; esac
    return 1
}

RCPTS=$(grep -v '^#' "$F/optout-recipients")
"$BUILD/regmilter-zone" optout --zone optout.test -o "$W/optout.zone" --rbldnsd "$W/optout.rbl" "$F/bulk-table" \
    2> "$W/zone.err"
check "regmilter-zone optout builds the zone and the dataset" "$?" 0
dns_server_start optout.test="$W/optout.zone"
NSD_SERVER=$DNS_SERVER

# config NAME NAMESERVER [BULK LINES...]: $W/NAME.ini. 198.51.100.8 is a
# known bulk sender (envelope-known bulk), 198.51.100.9 is not.
config() {
    _name=$1
    _ns=$2
    shift 2
    {
        printf '[milter]\nsocket = unix:%s/regmilter.sock\npid_file =\nauthserv_id = mx.test\nuser = %s\n' \
            "$MILTER_DIR" "$(id -un)"
        printf '[resolver]\nnameservers = %s\ntimeout_ms = 300\nretries = 0\nstage_timeout_ms = 2000\n' "$_ns"
        printf '[trust]\nnetworks = 198.51.100.0/24\n'
        printf '[bulk]\nsenders = 198.51.100.8/32\nheader_signals = yes\n'
        for _l in "$@"; do printf '%s\n' "$_l"; done
    } > "$W/$_name.ini"
}
config table "$NSD_SERVER" "table = $F/bulk-table"
config zone "$NSD_SERVER" "zone = optout.test"

# ask NAME CONF IP [ARGS...]: regmilter-query --json, every recipient; $W/NAME.json
ask() {
    _n=$1
    _c=$2
    _ip=$3
    shift 3
    set -- "$@" --ip "$_ip" --helo lists.example --from news@lists.example
    for _r in $RCPTS; do set -- "$@" --rcpt "$_r"; done
    "$BUILD/regmilter-query" -c "$W/$_c.ini" --json "$@" > "$W/$_n.json" 2> "$W/$_n.err" ||
        not_ok "$_n: regmilter-query exit status" "$(head -c 300 "$W/$_n.err")"
}
get() { "$BUILD/t/json-get" "$2" < "$W/$1.json" 2> /dev/null || echo "<missing>"; }

# rcpt_verdicts NAME: "RCPT VERDICT" per recipient ("550 5.7.1", "continue")
rcpt_verdicts() {
    _n=$(get "$1" verdicts.#)
    _i=0
    while [ "$_i" -lt "$_n" ]; do
        if [ "$(get "$1" "verdicts.$_i.stage")" = rcpt ]; then
            _act=$(get "$1" "verdicts.$_i.action")
            case $_act in
            reject | tempfail) _v="$(get "$1" "verdicts.$_i.code") $(get "$1" "verdicts.$_i.xcode")" ;;
            tag | continue) _v="continue" ;;
            *) _v=$_act ;;
            esac
            echo "$(get "$1" "verdicts.$_i.rcpt") $_v"
        fi
        _i=$((_i + 1))
    done
}
# choices NAME: "RCPT CHOICE SOURCE" per recipient
choices() {
    _n=$(get "$1" bulk.recipients.#)
    _i=0
    while [ "$_i" -lt "$_n" ]; do
        echo "$(get "$1" "bulk.recipients.$_i.rcpt") $(get "$1" "bulk.recipients.$_i.choice")" \
            "$(get "$1" "bulk.recipients.$_i.source")"
        _i=$((_i + 1))
    done
}
# same NAME GOT-FILE WANT-FILE
same() {
    if diff -u "$3" "$2" > "$W/diff" 2>&1; then ok "$1"; else not_ok "$1" "$(cat "$W/diff")"; fi
}

ask table-env table 198.51.100.8
rcpt_verdicts table-env > "$W/table-env.verdicts"
check "table: $(wc -l < "$W/table-env.verdicts") recipients, refused and accepted" \
    "$(awk '{print $2}' "$W/table-env.verdicts" | sort | uniq -c | tr -s ' ' | tr '\n' ';')" " 10 550; 7 continue;"
choices table-env | awk '{print $1, $3}' > "$W/table-env.sources"

if wanted query; then
    ask zone-env zone 198.51.100.8
    rcpt_verdicts zone-env > "$W/zone-env.verdicts"
    same "query: RCPT verdicts with the NSD zone = with the table" "$W/zone-env.verdicts" "$W/table-env.verdicts"
    choices table-env | awk '{print $1, $2}' > "$W/table-env.choices"
    choices zone-env | awk '{print $1, $2}' > "$W/zone-env.choices"
    same "query: every recipient's choice is the table's" "$W/zone-env.choices" "$W/table-env.choices"
    # Where the table names the address, the zone decides; elsewhere the default does.
    sed 's/ table$/ zone:optout.test/' "$W/table-env.sources" > "$W/want.sources"
    choices zone-env | awk '{print $1, $3}' > "$W/zone-env.sources"
    same "query: the source is zone:optout.test where the table has an entry, default elsewhere" \
        "$W/zone-env.sources" "$W/want.sources"
    check_match "query: the refusal's log line names the source" \
        "$(get zone-env log.1)" "*rcpt=<alice@example.org>*bulk_source=zone:optout.test*action=reject*"
fi

if wanted headers; then
    ask table-hdr table 198.51.100.9 --header 'List-Id: <news.lists.example>'
    ask zone-hdr zone 198.51.100.9 --header 'List-Id: <news.lists.example>'
    check "headers: nothing refused at RCPT (bulk known only from the headers)" \
        "$(rcpt_verdicts zone-hdr | grep -vc ' continue$')" 0
    check "headers: the same recipients removed at the end of the message ($(get table-hdr rcpts_to_remove.#))" \
        "$(get zone-hdr rcpts_to_remove)" "$(get table-hdr rcpts_to_remove)"
fi

# milter_verdicts OUT: "RCPT VERDICT" per "> rcpt" of a milter-client transcript
milter_verdicts() {
    awk '/^> rcpt / { r = $3; gsub(/[<>]/, "", r); want = 1; next }
         want && /^< / { v = $2; if (v == "replycode") v = $3 " " $4; if (v == "tag") v = "continue"
                         print r, v; want = 0 }' "$1"
}
# milter_session NAME: one SMTP session with every recipient, over the milter protocol
milter_session() {
    {
        echo negotiate
        echo "connect lists.example 198.51.100.8"
        echo "helo lists.example"
        echo "mail <news@lists.example>"
        for _r in $RCPTS; do echo "rcpt <$_r>"; done
        printf 'eoh\neom\nquit\n'
    } > "$W/$1.script"
    "$BUILD/t/milter-client" --socket "$MILTER_SOCKET" --timeout-ms 8000 --as-mta "$W/$1.script" > "$W/$1.out" 2>&1
}

if wanted milter || wanted cache; then
    cp "$W/zone.ini" "$MILTER_DIR/regmilter.ini" # milter.sh: $MILTER_CONF
    milter_start
fi

if wanted milter; then
    milter_session milter
    milter_verdicts "$W/milter.out" > "$W/milter.verdicts"
    same "milter: RCPT verdicts over the milter protocol = with the table" "$W/milter.verdicts" \
        "$W/table-env.verdicts"
    check "milter: one decision line per refused recipient, each naming the zone" \
        "$(grep -c 'stage=rcpt.*bulk_source=zone:optout.test.*action=reject' "$MILTER_LOG")" 10
fi

if wanted rbldnsd; then
    rbldnsd_start optout.test:dnset:"$W/optout.rbl"
    config zone-rbl "$RBLDNSD_SERVER" "zone = optout.test"
    ask rbl-env zone-rbl 198.51.100.8
    rcpt_verdicts rbl-env > "$W/rbl-env.verdicts"
    same "rbldnsd: RCPT verdicts with the dataset = with the table" "$W/rbl-env.verdicts" "$W/table-env.verdicts"
fi

if wanted on-error; then
    dns_blackhole_start 60
    config hole-tempfail "$BLACKHOLE_SERVER" "zone = optout.test" "on_error = tempfail"
    config hole-accept "$BLACKHOLE_SERVER" "zone = optout.test"
    RCPTS=nobody@example.org
    ask hole-tempfail hole-tempfail 198.51.100.8 --timeout-ms 200
    check "on-error: tempfail answers 451 4.4.3" "$(rcpt_verdicts hole-tempfail)" "nobody@example.org 451 4.4.3"
    check "on-error: the reply names the zone and the status, not the resolver" \
        "$(get hole-tempfail verdicts.3.text)" \
        "cannot check whether nobody@example.org accepts bulk mail (optout.test: timeout), try again later"
    ask hole-accept hole-accept 198.51.100.8 --timeout-ms 200
    check "on-error: accept delivers" "$(rcpt_verdicts hole-accept)" "nobody@example.org continue"
    check_match "on-error: accept logs the failure" "$(get hole-accept log.1)" \
        "*rcpt=<nobody@example.org>*bulk_source=zone:optout.test bulk_error=\"optout.test: timeout*(on_error=accept)\"*"
    RCPTS=$(grep -v '^#' "$F/optout-recipients")
fi

if wanted cache; then
    # Warm: alice's answer (TTL 3600) is in the milter's cache; then NSD stops.
    printf 'negotiate\nconnect lists.example 198.51.100.8\nhelo lists.example\nmail <news@lists.example>\nrcpt <alice@example.org>\nquit\n' \
        > "$W/warm.script"
    "$BUILD/t/milter-client" --socket "$MILTER_SOCKET" --timeout-ms 8000 --as-mta "$W/warm.script" > "$W/warm.out" 2>&1
    dns_server_stop
    "$BUILD/t/milter-client" --socket "$MILTER_SOCKET" --timeout-ms 8000 --as-mta "$W/warm.script" > "$W/cached.out" 2>&1
    check "cache: with NSD stopped, a cached opt-out still refuses" "$(milter_verdicts "$W/cached.out")" \
        "alice@example.org 550 5.7.1"
    sed 's/alice@example.org/henry@example.org/' "$W/warm.script" > "$W/cold.script"
    "$BUILD/t/milter-client" --socket "$MILTER_SOCKET" --timeout-ms 8000 --as-mta "$W/cold.script" > "$W/cold.out" 2>&1
    check "cache: an address never asked (not cached) follows on_error (accept)" "$(milter_verdicts "$W/cold.out")" \
        "henry@example.org continue"
    check_match "cache: and is logged as a zone error" \
        "$(grep 'rcpt=<henry@example.org>' "$MILTER_LOG" | tail -n 1)" "*bulk_error=\"optout.test: *"
fi

check "no sanitizer report from the milter" \
    "$(cat "$MILTER_DIR"/milter-*.log 2> /dev/null | grep -c -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:')" 0
finish
