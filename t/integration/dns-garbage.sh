#!/bin/sh
# DNS garbage: a hostile server ($BUILD/t/dns-garbage) answers with short,
# unparsable, mismatched and self-referencing replies. The production
# resolver must call each a failure (never an answer), SPF must turn it into
# temperror and a registry into an error, each within the configured timeout,
# and nothing may crash.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/query.sh"

need_build t/dns-garbage t/dns-lookup t/json-get regmilter-query
tmpdir_new work
"$BUILD/t/dns-garbage" --max-seconds 120 > "$work/port" 2> "$work/garbage.err" &
GPID=$!
at_exit "kill $GPID"
_i=0
while [ ! -s "$work/port" ] && [ $_i -lt 50 ]; do sleep 0.1; _i=$((_i + 1)); done
[ -s "$work/port" ] || { echo "dns-garbage did not start: $(cat "$work/garbage.err")"; exit 1; }
NS=127.0.0.1:$(cat "$work/port")
echo "# dns-garbage pid $GPID on $NS"

for kind in short junk wrongid wrongq loop overrun badtxt; do
    t0=$(now_ms)
    "$BUILD/t/dns-lookup" --nameserver "$NS" --timeout-ms 300 --retries 1 "$kind.garbage.test" TXT \
        > "$work/$kind.out" 2> "$work/$kind.err"
    rc=$?
    took=$(( $(now_ms) - t0 ))
    check "resolver: $kind: dns-lookup exit status" "$rc" 0
    status=$(head -n 1 "$work/$kind.out" | cut -d' ' -f1)
    case $status in
    malformed|servfail|timeout) ok "resolver: $kind: a failure, not an answer ($status)" ;;
    *) not_ok "resolver: $kind: a failure, not an answer" "got '$(head -n 1 "$work/$kind.out")'" ;;
    esac
    [ "$took" -lt 2000 ] && ok "resolver: $kind: within 2 tries of 300 ms ($took ms)" \
        || not_ok "resolver: $kind: bounded" "took $took ms, want < 2000"
done

for kind in junk loop overrun badtxt; do
    query "spf-$kind" --timeout-ms 300 --retries 1 \
        --ip 192.0.2.10 --helo "$kind.garbage.test" --from "user@$kind.garbage.test"
    expect "spf-$kind" spf.result temperror
done

cat > "$work/reg.ini" <<INI
[registry garbage]
zone = junk.garbage.test
format = dashed
meaning = registered
unregistered = reject
on_error = tempfail
[registry loops]
zone = loop.garbage.test
format = reversed
meaning = blocked
listed = reject
on_error = accept
INI
QUERY_CONF=$work/reg.ini
query reg --timeout-ms 300 --retries 1 \
    --ip 198.51.100.7 --helo mx.garbage.test --from user@junk.garbage.test --rcpt a@example.net
check "registry: dashed zone with garbage answers is an error" "$(field reg registry.0.status)" error
check "registry: reversed zone with garbage answers is an error" "$(field reg registry.1.status)" error
# on_error = tempfail for the first zone: the mail stage defers (451 4.4.3), never a 5xx.
mail_code=$(grep -o '"stage":"mail"[^}]*' "$work/reg.json" | grep -o '"code":"[0-9]*"' | head -n 1)
check "registry: garbage is a temporary failure at MAIL FROM" "$mail_code" '"code":"451"'

kill -0 $GPID 2>/dev/null && ok "dns-garbage still serving" || not_ok "dns-garbage" "exited early"
finish
