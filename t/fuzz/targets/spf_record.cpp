// Fuzz target: the SPF record parser (lib/spf/record). The input is one TXT
// string. Properties: an error is always explained; a parsed record's terms
// are in range; a parsed record written back from its parts parses to the
// same record.
#include <cstddef>
#include <cstdint>

#include "spf/record.hpp"
#include "t/fuzz/fuzz.hpp"

using namespace regmilter;
using namespace regmilter::spf;

namespace {

bool same_terms(const Record& a, const Record& b) {
    if (a.terms.size() != b.terms.size() || a.redirect != b.redirect || a.exp != b.exp ||
        a.unknown.size() != b.unknown.size())
        return false;
    for (size_t i = 0; i < a.terms.size(); ++i) {
        const Term &x = a.terms[i], &y = b.terms[i];
        if (x.qualifier != y.qualifier || x.mechanism != y.mechanism || x.domain_spec != y.domain_spec ||
            x.network != y.network || x.prefix != y.prefix || x.cidr4 != y.cidr4 || x.cidr6 != y.cidr6 ||
            x.text != y.text)
            return false;
    }
    for (size_t i = 0; i < a.unknown.size(); ++i)
        if (a.unknown[i].name != b.unknown[i].name || a.unknown[i].value != b.unknown[i].value) return false;
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text = fuzz::as_text(data, size);
    (void)is_spf_record(text);
    (void)domain_spec_error(text);
    ParsedRecord p = parse_record(text);
    if (!p.record) {
        FUZZ_CHECK(!p.error.empty(), "refused without a reason");
        return 0;
    }
    FUZZ_CHECK(p.error.empty(), p.error);
    const Record& r = *p.record;
    std::string again = "v=spf1";
    for (const Term& t : r.terms) {
        FUZZ_CHECK(t.cidr4 >= 0 && t.cidr4 <= 32, t.text);
        FUZZ_CHECK(t.cidr6 >= 0 && t.cidr6 <= 128, t.text);
        if (t.mechanism == Mechanism::ip4)
            FUZZ_CHECK(t.network.is_v4() && t.prefix >= 0 && t.prefix <= 32, t.text);
        if (t.mechanism == Mechanism::ip6)
            FUZZ_CHECK(t.network.is_v6() && t.prefix >= 0 && t.prefix <= 128, t.text);
        if (!t.domain_spec.empty()) FUZZ_CHECK(domain_spec_error(t.domain_spec).empty(), t.text);
        FUZZ_CHECK(text.find(t.text) != std::string_view::npos, t.text);
        again += " " + t.text;
    }
    if (r.redirect) again += " redirect=" + *r.redirect;
    if (r.exp) again += " exp=" + *r.exp;
    for (const Modifier& m : r.unknown) again += " " + m.name + "=" + m.value;
    ParsedRecord q = parse_record(again);
    FUZZ_CHECK(q.record, "written back as \"" + again + "\": " + q.error);
    FUZZ_CHECK(same_terms(r, *q.record), "written back as \"" + again + "\": another record");
    return 0;
}
