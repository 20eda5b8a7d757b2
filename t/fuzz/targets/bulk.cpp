// Fuzz target: the bulk opt-out table (lib/bulk): the input is a table file;
// each line's first word (and the whole line) is also looked up as a
// recipient. Properties: Table::parse and read_entries agree (same problems,
// one entry per key); every entry is found under its key; an address that
// is a key decides its own lookup; and the opt-out zone published from the
// table (published_labels, in the in-memory resolver) answers every
// recipient what the table answers (bulk::lookup_zones against bulk::lookup).
#include <cstddef>
#include <cstdint>

#include "bulk/bulk.hpp"
#include "bulk/optout.hpp"
#include "t/fuzz/fuzz.hpp"

using namespace regmilter;
using namespace regmilter::bulk;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text = fuzz::as_text(data, size);
    Table::Loaded t = Table::parse(text, "fuzz.table");
    Entries e = read_entries(text, "fuzz.table");
    FUZZ_CHECK(t.ok() == t.problems.empty(), std::to_string(t.problems.size()) + " problems");
    FUZZ_CHECK(e.problems.size() == t.problems.size(), "read_entries and Table::parse disagree");
    for (const util::Problem& p : t.problems) FUZZ_CHECK(p.line > 0 && !p.message.empty(), p.str());
    if (t.ok()) {
        FUZZ_CHECK(e.entries.size() == t.value->size(), "entries and table sizes differ");
        for (const Entry& x : e.entries) {
            FUZZ_CHECK(t.value->find(x.key) == x.choice, x.key);
            FUZZ_CHECK(util::lower(x.written) == x.key, x.written + " / " + x.key);
        }
    }

    Settings cfg;
    cfg.default_choice = Choice::accept;
    cfg.recipient_delimiter = "+-";
    dns::MemoryResolver zone;
    zone.set_strict(false);
    for (const Published& p : published_labels(e.entries))
        zone.add(p.label + ".optout.example", dns::RrType::a, p.code);

    std::vector<std::string_view> rcpts;
    for (std::string_view line : fuzz::lines_of(text)) {
        rcpts.push_back(line);
        std::string_view rest = line;
        rcpts.push_back(fuzz::take_word(rest));
    }
    for (std::string_view rcpt : rcpts) {
        std::string n = normalize(rcpt);
        (void)normalize_keep_local_case(rcpt);
        Lookup l = lookup(t.value.get(), rcpt, cfg);
        FUZZ_CHECK(!l.key.empty(), std::string(rcpt));
        if (t.ok() && !n.empty() && t.value->find(n)) FUZZ_CHECK(l.key == n, l.key + " for " + n);
        for (const std::string& k : optout_keys(rcpt, cfg.recipient_delimiter)) {
            std::string label = optout_label(k);
            FUZZ_CHECK(label.size() == 52 &&
                           label.find_first_not_of("abcdefghijklmnopqrstuvwxyz234567") == std::string::npos,
                       label);
        }
        if (!t.ok()) continue;
        ZoneAnswer z =
            lookup_zones(zone, rcpt, {"optout.example"}, cfg.recipient_delimiter, dns::no_deadline());
        std::string what = "rcpt \"" + std::string(rcpt) + "\": table " + l.key + " " +
                           (l.choice == Choice::reject ? "reject" : "accept") + ", zone " +
                           to_string(z.status) + " " + z.key;
        FUZZ_CHECK(z.status != ZoneStatus::error, what);
        if (l.key == "default")
            FUZZ_CHECK(z.status == ZoneStatus::none, what);
        else
            FUZZ_CHECK(
                z.status == (l.choice == Choice::reject ? ZoneStatus::opted_out : ZoneStatus::opted_in),
                what);
    }
    return 0;
}
