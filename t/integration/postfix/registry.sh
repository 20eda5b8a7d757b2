#!/bin/sh
# registry.sh: a registry and an opt-out list run with regmilter-zone, end to
# end through a real Postfix. t/fixtures/e2e/registrations becomes
# registry.e2e.test (zone file and rbldnsd dataset, both name forms) and
# t/fixtures/e2e/optout-table becomes optout.e2e.test; the milter asks them
# ([registry] and [bulk] zone, t/fixtures/e2e/registry.ini.in) first from
# NSD serving the zone files (format = dashed), then, after a SIGHUP, through
# unbound from rbldnsd serving the datasets (format = reversed). With each:
#   registered    198.51.100.7 accepted, Authentication-Results dnswl=pass
#                 with the registry's code and metadata
#   bulk          198.51.100.8 (class=bulk): each opted-out recipient refused
#                 at RCPT (an address, a mixed-case +detail one, an @domain
#                 entry), the others get the message
#   unregistered  198.51.100.66 refused at MAIL FROM with the registration text
# Needs root, postfix, smtp-sink, nsd, drill, rbldnsd, unbound
# (t/integration/lib/postfix.sh); exits 77 (skipped) with the reason when one
# is missing.
# Run alone: sudo BUILD=$PWD/build sh t/integration/postfix/registry.sh [SCENARIO...]
#   (--list: the scenarios; E2E_KEEP=DIR keeps everything for debugging)
set -u
TLIB=$(cd "$(dirname "$0")/../lib" && pwd)
. "$TLIB/postfix.sh"
. "$TLIB/recursor.sh"
e2e_phase registry "nsd-registered nsd-bulk nsd-unregistered rbldnsd-registered rbldnsd-bulk rbldnsd-unregistered" "$@"
need_build regmilter-zone
need_cmd rbldnsd unbound

# What regmilter-zone publishes, readable by rbldnsd's user.
Z=$E2E_DIR/zones
mkdir -p "$Z"
chmod 755 "$Z"
"$BUILD/regmilter-zone" registry --zone registry.e2e.test --format both --no-dns --allow-special \
    -o "$Z/registry.zone" --rbldnsd "$Z/registry.rbl" "$FIX_E2E/registrations" 2> "$Z/registry.err"
check "regmilter-zone registry: both outputs" "$?" 0
"$BUILD/regmilter-zone" optout --zone optout.e2e.test -o "$Z/optout.zone" --rbldnsd "$Z/optout.rbl" \
    "$FIX_E2E/optout-table" 2> "$Z/optout.err"
check "regmilter-zone optout: both outputs" "$?" 0

dns_server_start registry.e2e.test="$Z/registry.zone" optout.e2e.test="$Z/optout.zone" \
    spf.e2e.test="$FIX_E2E/spf.e2e.test.zone"
NSD_SERVER=$DNS_SERVER
rbldnsd_start registry.e2e.test:combined:"$Z/registry.rbl" optout.e2e.test:dnset:"$Z/optout.rbl"
recursor_start registry.e2e.test="$RBLDNSD_SERVER" optout.e2e.test="$RBLDNSD_SERVER" spf.e2e.test="$NSD_SERVER"

# registry_config NAMESERVER FORMAT: the milter's configuration, reloaded
# when the milter runs.
registry_config() {
    _milter_setup
    sed -e "s|@SOCKET@|$MILTER_SOCKET|" -e "s|@PIDFILE@|$MILTER_DIR/regmilter.pid|" -e "s|@USER@|$MILTER_USER|" \
        -e "s|@NAMESERVER@|$1|" -e "s|@FORMAT@|$2|" "$FIX_E2E/registry.ini.in" > "$MILTER_CONF.new"
    mv "$MILTER_CONF.new" "$MILTER_CONF"
    milter_running || return 0
    milter_reload
}

# scenarios SERVER: the three sessions against the zones SERVER serves
scenarios() {
    _s=$1
    if wanted "$_s-registered"; then
        session "$_s-registered" 198.51.100.7 mx.spf.e2e.test << EOF
MAIL FROM:<alice@pass.spf.e2e.test>
RCPT TO:<bob@dest.test>
$(message "e2e-$_s-registered")
EOF
        check "$_s: registered client: MAIL" "$(code "$_s-registered" 'MAIL FROM:<alice@pass.spf.e2e.test>')" \
            "250 2.1.0"
        check "$_s: registered client: DATA" "$(code "$_s-registered" '.')" "250 2.0.0"
        wait_delivered "$_s-registered"
        check "$_s: registered client: delivered" "$(delivered_to "e2e-$_s-registered")" "bob@dest.test"
        check_match "$_s: registered client: dnswl=pass with the registry's code and metadata" \
            "$(header_line "e2e-$_s-registered" Authentication-Results)" \
            "Authentication-Results: mx.e2e.test; spf=pass *dnswl=pass dns.zone=registry.e2e.test policy.ip=127.0.0.2 policy.txt=\"registered=2025-01-10 updated=2025-01-10 contact=E2E-1\"*"
    fi
    if wanted "$_s-bulk"; then
        session "$_s-bulk" 198.51.100.8 bulk-mx.spf.e2e.test << EOF
MAIL FROM:<news@pass.spf.e2e.test>
RCPT TO:<optout@dest.test>
RCPT TO:<MIXED+news@DEST.test>
RCPT TO:<anyone@NoBulk.test>
RCPT TO:<optin@dest.test>
RCPT TO:<bob@dest.test>
$(message "e2e-$_s-bulk")
EOF
        check "$_s: bulk-class client: MAIL" "$(code "$_s-bulk" 'MAIL FROM:<news@pass.spf.e2e.test>')" "250 2.1.0"
        check "$_s: bulk-class client: opted-out address refused" \
            "$(reply "$_s-bulk" 'RCPT TO:<optout@dest.test>')" "550 5.7.1 optout@dest.test does not accept bulk mail"
        check "$_s: bulk-class client: mixed-case +detail address of an opted-out entry refused" \
            "$(code "$_s-bulk" 'RCPT TO:<MIXED+news@DEST.test>')" "550 5.7.1"
        check "$_s: bulk-class client: @domain opt-out refused" "$(code "$_s-bulk" 'RCPT TO:<anyone@NoBulk.test>')" \
            "550 5.7.1"
        check "$_s: bulk-class client: opted-in recipient accepted" "$(code "$_s-bulk" 'RCPT TO:<optin@dest.test>')" \
            "250 2.1.5"
        check "$_s: bulk-class client: unlisted recipient accepted" "$(code "$_s-bulk" 'RCPT TO:<bob@dest.test>')" \
            "250 2.1.5"
        check "$_s: bulk-class client: DATA" "$(code "$_s-bulk" '.')" "250 2.0.0"
        wait_delivered "$_s-bulk"
        check "$_s: bulk-class client: delivered to the others only" "$(delivered_to "e2e-$_s-bulk")" \
            "bob@dest.test optin@dest.test"
        check_match "$_s: bulk-class client: dnswl=pass with the bulk code" \
            "$(header_line "e2e-$_s-bulk" Authentication-Results)" \
            "*dnswl=pass dns.zone=registry.e2e.test policy.ip=127.0.0.3 policy.txt=\"registered=2025-02-01 updated=2025-03-01 contact=E2E-2\"*"
    fi
    if wanted "$_s-unregistered"; then
        session "$_s-unregistered" 198.51.100.66 mx.spf.e2e.test << EOF
MAIL FROM:<carol@pass.spf.e2e.test>
EOF
        check "$_s: unregistered client refused with the registration text" \
            "$(reply "$_s-unregistered" 'MAIL FROM:<carol@pass.spf.e2e.test>')" \
            "550 5.7.1 198.51.100.66 is not a registered mail server (not in registry.e2e.test); see https://registry.e2e.test/register"
    fi
}

registry_config "$NSD_SERVER" dashed
milter_start
postfix_start
scenarios nsd

registry_config "$RECURSOR_SERVER" reversed
check "SIGHUP: the milter now asks rbldnsd through unbound" "$MILTER_GENERATION" 2
scenarios rbldnsd

if [ -z "$ONLY" ]; then
    check "the refusals' decision lines name the opt-out zone as their source" \
        "$(cat "$MILTER_DIR"/milter-*.log | grep -c 'stage=rcpt.*bulk_source=zone:optout.e2e.test.*action=reject')" 6
fi
e2e_finish
