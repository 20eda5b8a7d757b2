// Fuzz target: header parsing -- the authserv-id of Authentication-Results
// (lib/policy/auth_results, RFC 8601 §5 forged-header removal), the values
// we quote into our own header, and the bulk header signals (Precedence,
// List-Id, List-Unsubscribe: lib/bulk HeaderSignals) through
// policy::observe_header, as the header stage sees them. The input is a
// header block: "Name: value" lines, lines starting with a blank continue
// the previous value (joined with "\n", as the MTA folds). Properties: the
// authserv-id is no longer than the value; what ar_value quotes reads back
// as the text itself (control bytes as '?'); every Authentication-Results
// is counted and exactly those naming our authserv-id are forged; List-Id
// and List-Unsubscribe are signals exactly when present.
#include <cstddef>
#include <cstdint>

#include "policy/auth_results.hpp"
#include "policy/policy.hpp"
#include "t/fuzz/fuzz.hpp"

using namespace regmilter;
using namespace regmilter::policy;

namespace {

std::string controls_as_question_marks(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    return out;
}

void value(std::string_view v) {
    std::string id = ar_authserv_id(v);
    FUZZ_CHECK(id.size() <= v.size(), id);
    std::string q = ar_value(v);
    FUZZ_CHECK(ar_authserv_id(q) == controls_as_question_marks(v), q);
    std::string a = ar_address(v);
    FUZZ_CHECK(a == std::string(v) || a == q, a);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::vector<Header> headers;
    for (std::string_view line : fuzz::lines_of(fuzz::as_text(data, size))) {
        if (!line.empty() && (line[0] == ' ' || line[0] == '\t') && !headers.empty()) {
            headers.back().value += "\n";
            headers.back().value += line;
            continue;
        }
        size_t colon = line.find(':');
        Header h;
        h.name = std::string(line.substr(0, colon));
        if (colon != std::string_view::npos) {
            std::string_view v = line.substr(colon + 1);
            if (!v.empty() && v[0] == ' ') v.remove_prefix(1);
            h.value = std::string(v);
        }
        headers.push_back(std::move(h));
    }
    const std::string authserv_id = "mx.example.org";
    DataFacts d;
    int ar = 0;
    std::vector<int> forged;
    bool list_id = false, unsubscribe = false;
    for (const Header& h : headers) {
        value(h.name);
        value(h.value);
        observe_header(d, h.name, h.value, authserv_id);
        if (util::iequals(h.name, "Authentication-Results")) {
            ++ar;
            if (util::iequals(ar_authserv_id(h.value), authserv_id)) forged.push_back(ar);
        }
        list_id = list_id || util::iequals(h.name, "List-Id");
        unsubscribe = unsubscribe || util::iequals(h.name, "List-Unsubscribe");
    }
    FUZZ_CHECK(d.ar_seen == ar, std::to_string(d.ar_seen) + " A-R seen, want " + std::to_string(ar));
    FUZZ_CHECK(d.forged_ar.size() == forged.size(), std::to_string(d.forged_ar.size()) + " forged");
    for (size_t i = 0; i < forged.size(); ++i)
        FUZZ_CHECK(
            d.forged_ar[i].index == forged[i] && util::iequals(d.forged_ar[i].name, "Authentication-Results"),
            d.forged_ar[i].name + " " + std::to_string(d.forged_ar[i].index));

    bulk::Settings on;
    on.header_signals = true;
    bulk::Signals s = d.header_bulk.signals(on);
    auto has = [&](const char* name) {
        for (const auto& x : s.signals)
            if (x == name) return true;
        return false;
    };
    FUZZ_CHECK(has("header:list-id") == list_id, "list-id");
    FUZZ_CHECK(has("header:list-unsubscribe") == unsubscribe, "list-unsubscribe");
    FUZZ_CHECK(s.signals.size() <= 3, std::to_string(s.signals.size()));
    FUZZ_CHECK(bulk::header_signals(headers, on).signals == s.signals, "header_signals differs from observe");
    bulk::Settings off;
    FUZZ_CHECK(d.header_bulk.signals(off).signals.empty(), "signals with header_signals = no");
    return 0;
}
