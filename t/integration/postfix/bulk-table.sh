#!/bin/sh
# bulk-table.sh: the bulk opt-out table reloaded under a real Postfix: on
# SIGHUP (a new opt-out refused at RCPT; a repeated key refused), and by
# itself when the file changes (the milter looks every 2 s and reads a
# change once it has settled), a broken file refused with FILE:LINE while
# the table in force stays. Each scenario puts back the table it found.
# Needs root, postfix, smtp-sink, nsd, drill (t/integration/lib/postfix.sh);
# exits 77 (skipped) with the reason when one is missing.
# Run alone: sudo BUILD=$PWD/build sh t/integration/postfix/bulk-table.sh [SCENARIO...]
#   (--list: the scenarios; E2E_KEEP=DIR keeps everything for debugging)
set -u
TLIB=$(cd "$(dirname "$0")/../lib" && pwd)
. "$TLIB/postfix.sh"
e2e_phase bulk-table "sighup repeated-key auto broken-file" "$@"
e2e_start

# entries: the number of entries in the table file now
entries() { grep -cv '^[[:space:]]*\(#.*\)\{0,1\}$' "$MILTER_TABLE"; }
# drop_last N: the table without its last N lines
drop_last() {
    _n=$1
    while [ "$_n" -gt 0 ]; do sed -i '$d' "$MILTER_TABLE"; _n=$((_n - 1)); done
}
# table_changed: until the milter has read the table of $(entries) entries by
# itself, after COUNT such lines (true), or 10 s passed (false)
table_changed() {
    milter_wait_log "bulk table .* changed: $(entries) entries" "$1"
}

if wanted sighup; then
    echo "late-optout@dest.test reject" >> "$MILTER_TABLE"
    milter_reload
    session bulk-reload 198.51.100.8 bulk-mx.spf.e2e.test <<EOF
MAIL FROM:<news@pass.spf.e2e.test>
RCPT TO:<late-optout@dest.test>
EOF
    check "SIGHUP reloads the bulk table: a new opt-out is refused at RCPT" \
        "$(code bulk-reload 'RCPT TO:<late-optout@dest.test>')" "550 5.7.1"
    drop_last 1
    milter_reload
fi

if wanted repeated-key; then
    printf 'late-optout@dest.test reject\nlate-optout@dest.test accept\n' >> "$MILTER_TABLE"
    milter_reload expect-refusal
    check "a bulk table with a repeated key is refused on reload" \
        "$(grep 'reload refused' "$MILTER_LOG" | grep -v 'bulk table reload refused' |
            grep -c 'bulk-table:[0-9]*: duplicate key')" 1
    drop_last 2
    milter_reload
fi

# The table file changing is enough: the milter looks at it every 2 s.
if wanted auto; then
    sleep 1.1 # a new mtime even on file systems with 1 s stamps
    echo "auto-optout@dest.test reject" >> "$MILTER_TABLE"
    _want="bulk table .* changed: $(entries) entries"
    if table_changed "$(grep -c "$_want" "$MILTER_LOG")"; then
        ok "a changed bulk table file is reloaded without a signal"
    else
        not_ok "a changed bulk table file is reloaded without a signal" "no '$_want' line in 10 s"
    fi
    session bulk-auto 198.51.100.8 bulk-mx.spf.e2e.test <<EOF
MAIL FROM:<news@pass.spf.e2e.test>
RCPT TO:<auto-optout@dest.test>
EOF
    check "automatic table reload: the new opt-out is refused at RCPT" \
        "$(code bulk-auto 'RCPT TO:<auto-optout@dest.test>')" "550 5.7.1"
    drop_last 1
    milter_reload
fi

# A table in force with an opt-out, then a line without a verdict.
if wanted broken-file; then
    echo "auto-optout@dest.test reject" >> "$MILTER_TABLE"
    milter_reload
    _refused=$(grep -c "bulk table reload refused: .*bulk-table:[0-9]*:" "$MILTER_LOG")
    echo "this line has no verdict" >> "$MILTER_TABLE"
    if milter_wait_log "bulk table reload refused: .*bulk-table:[0-9]*:" "$_refused"; then
        ok "a broken table file is refused with FILE:LINE in the log"
    else
        not_ok "a broken table file is refused with FILE:LINE in the log" "no refusal line in 10 s"
    fi
    session bulk-auto-kept 198.51.100.8 bulk-mx.spf.e2e.test <<EOF
MAIL FROM:<news@pass.spf.e2e.test>
RCPT TO:<auto-optout@dest.test>
RCPT TO:<bob@dest.test>
EOF
    check "broken table file: the old table stays in force (opt-out refused)" \
        "$(code bulk-auto-kept 'RCPT TO:<auto-optout@dest.test>')" "550 5.7.1"
    check "broken table file: the old table stays in force (others accepted)" \
        "$(code bulk-auto-kept 'RCPT TO:<bob@dest.test>')" "250 2.1.5"
    drop_last 2
    milter_reload
fi

e2e_finish
