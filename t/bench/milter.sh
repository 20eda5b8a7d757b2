#!/bin/sh
# bench: the real milter over the milter protocol, against NSD on loopback
# serving the end-to-end fixture zones. Prints transactions/s, p50/p99
# latency, the milter's CPU per transaction and its RSS, for a cold cache
# (distinct client addresses, each a registry lookup) and a warm one.
# Bounded: at most a few thousand transactions and 60 s per phase.
. "$(dirname "$0")/lib/dns-server.sh"

need_build regmilter t/milter-bench
FIX=t/fixtures/e2e
dns_server_start reg.e2e.test=$FIX/reg.e2e.test.zone block.e2e.test=$FIX/block.e2e.test.zone \
    spf.e2e.test=$FIX/spf.e2e.test.zone
tmpdir_new T
chmod 0755 "$T"
SOCK=$T/regmilter.sock
: > "$T/bulk-table"
sed -e "s|@SOCKET@|unix:$SOCK|" -e "s|@PIDFILE@|$T/regmilter.pid|" -e "s|@MODE@|enforce|" \
    -e "s|@UNREGISTERED@|tag|" -e "s|@ENFORCE_AFTER@|2020-01-01|" -e "s|@ON_ERROR@|tempfail|" \
    -e "s|@NAMESERVER@|$DNS_SERVER|" -e "s|@BULK_TABLE@|$T/bulk-table|" \
    "$FIX/regmilter.ini.in" > "$T/regmilter.ini"
# The bench client connects as root; no network is trusted so every check runs.
sed -i 's|^networks = .*|networks =|' "$T/regmilter.ini"

"$BUILD/regmilter" -c "$T/regmilter.ini" -f > "$T/milter.log" 2>&1 &
PID=$!
at_exit "kill $PID; sleep 0.3; kill -9 $PID"
i=0
while ! grep -q 'starting: ' "$T/milter.log" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -S "$SOCK" ] || { echo "milter did not start:"; cat "$T/milter.log"; exit 1; }

B="$BUILD/t/milter-bench --socket unix:$SOCK --pid $PID --max-seconds 60"
# Cold: 250 distinct unregistered clients (203.0.113.1..250): a registry and a
# block-list lookup each, SPF softfail (tagged), through to end of message.
$B --label "cold cache, 250 new clients, concurrency 8" --count 250 --concurrency 8 \
   --ip-base 203.0.113. --ip-first 1 --ip-span 250 --from "<user@soft.spf.e2e.test>" || exit 1
# Warm: the same clients again, every answer cached.
$B --label "warm cache, concurrency 1" --count 2000 --concurrency 1 \
   --ip-base 203.0.113. --ip-first 1 --ip-span 250 --from "<user@soft.spf.e2e.test>" || exit 1
$B --label "warm cache, concurrency 8" --count 4000 --concurrency 8 \
   --ip-base 203.0.113. --ip-first 1 --ip-span 250 --from "<user@soft.spf.e2e.test>" || exit 1
$B --label "warm cache, registered client, SPF pass" --count 2000 --concurrency 8 \
   --ip-base 198.51.100. --ip-first 7 --ip-span 1 --from "<user@pass.spf.e2e.test>" || exit 1
for other in spf-milter spfmilter smf-spf opendmarc; do
    command -v "$other" >/dev/null 2>&1 && echo "# $other is installed, but no comparison driver exists for it yet"
done
echo "# no other SPF milter is installed here (looked for spf-milter, spfmilter, smf-spf, opendmarc)"
