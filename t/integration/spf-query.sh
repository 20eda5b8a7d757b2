#!/bin/sh
# SPF through the whole stack: regmilter-query --json with the production
# resolver against NSD serving t/fixtures/zones on loopback, and against a
# black hole for the temperror case (which must come back within the bound
# the resolver options set).
. "$(dirname "$0")/lib/dns-server.sh"
. "$(dirname "$0")/lib/query.sh"

need_build regmilter-query t/json-get t/dns-blackhole
zones=t/fixtures/zones
dns_server_start spf.test=$zones/spf.test.zone other.test=$zones/other.test.zone
dns_blackhole_start 120
tmpdir_new work

query pass --ip 192.0.2.10 --from user@pass.spf.test --helo mta.example
expect pass spf.result pass
expect pass spf.identity mailfrom
expect pass spf.domain pass.spf.test
expect pass spf.mechanism ip4:192.0.2.0/24

query fail --ip 198.51.100.7 --from user@fail.spf.test --helo mta.example
expect fail spf.result fail
expect fail spf.mechanism -all
expect fail spf.explanation "198.51.100.7 is not one of fail.spf.test's designated mail servers"

query include --ip 203.0.113.5 --from user@chain.spf.test
expect include spf.result pass
expect include spf.domain chain.spf.test
check_match "include: spf.mechanism" "$(field include spf.mechanism)" "include:l1.spf.test*"

query include-miss --ip 203.0.113.99 --from user@chain.spf.test
expect include-miss spf.result fail
expect include-miss spf.mechanism -all

query mx-cname --ip 192.0.2.77 --from user@mx.spf.test
expect mx-cname spf.result pass
expect mx-cname spf.mechanism mx

query big-tcp --ip 192.0.2.200 --from user@big.spf.test
expect big-tcp spf.result pass
expect big-tcp spf.mechanism ip4:192.0.2.200

query nxdomain --ip 192.0.2.10 --from user@nonexistent.spf.test
expect nxdomain spf.result none
expect nxdomain spf.domain nonexistent.spf.test

query null-sender --ip 192.0.2.10 --from '' --helo pass.spf.test
expect null-sender spf.result pass
expect null-sender spf.sender postmaster@pass.spf.test

timeout_ms=500 retries=1
bound=$((timeout_ms * (retries + 1) + 1000))
t0=$(now_ms)
NS=$BLACKHOLE_SERVER query timeout --ip 192.0.2.10 --from user@pass.spf.test \
    --timeout-ms $timeout_ms --retries $retries
t1=$(now_ms)
expect timeout spf.result temperror
el=$((t1 - t0))
echo "# temperror via black hole (timeout ${timeout_ms} ms, retries $retries) took $el ms"
[ "$el" -lt "$bound" ] && ok "timeout: returned within ${bound} ms ($el ms)" \
    || not_ok "timeout: returned within ${bound} ms" "got $el ms, want < $bound"
[ "$el" -ge "$((timeout_ms * (retries + 1) - 50))" ] && ok "timeout: waited for every try ($el ms)" \
    || not_ok "timeout: waited for every try" "got $el ms, want >= $((timeout_ms * (retries + 1)))"

finish
