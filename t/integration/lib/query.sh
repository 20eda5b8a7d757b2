# query.sh: regmilter-query --json answers for integration tests (POSIX sh, sourced
# after dns-server.sh or common.sh; needs $work from tmpdir_new).
#
# query NAME ARGS...      runs $BUILD/regmilter-query --json --nameserver ${NS:-$DNS_SERVER}
#                         [-c $QUERY_CONF] [--from $QUERY_FROM] ARGS...; the answer is in
#                         $work/NAME.json, stderr in $work/NAME.err; a non-zero exit is "not ok"
# field NAME PATH         one value of that answer ($BUILD/t/json-get), "<missing>" when absent
# expect NAME PATH WANT   check that value

query() {
    _name=$1
    shift
    "$BUILD/regmilter-query" ${QUERY_CONF:+-c "$QUERY_CONF"} --nameserver "${NS:-$DNS_SERVER}" --json \
        ${QUERY_FROM:+--from "$QUERY_FROM"} "$@" > "$work/$_name.json" 2> "$work/$_name.err"
    _rc=$?
    [ $_rc = 0 ] || not_ok "$_name: regmilter-query exit status" "got $_rc, want 0: $(head -c 300 "$work/$_name.err")"
}

field() {
    "$BUILD/t/json-get" "$2" < "$work/$1.json" 2>/dev/null || echo "<missing>"
}

expect() {
    check "$1: $2" "$(field "$1" "$2")" "$3"
}
