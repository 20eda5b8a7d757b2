// Fuzz target: registry answers (lib/registry). Input lines:
//   ip ADDRESS                      the client (default 192.0.2.36)
//   zone ZONE dashed|reversed registered|blocked [fcrdns] [CODE...]   CODEs: bulk_codes
//   answer STATUS                   ok nxdomain nodata timeout servfail malformed
//   code TEXT                       one A rdata of that answer, any bytes
//   text TEMPLATE                   a reject_text (%{ip} %{zone} %{info})
//   zone lines (t/fuzz/fuzz.hpp add_zone_line) for the lookups
// Every line also goes through parse_metadata (the TXT read back) and the
// whole input through parse_registrations. Properties: only a 127/8 code
// other than 127.0.0.1 and 127.255.255.0/24 is a listing; an error says
// why; bulk only for a listing of a registered zone; the name asked is
// query_name's; TXT metadata kept is printable ASCII of at most 512 bytes;
// parsed metadata fields have their form; every registration's TXT reads
// back to its dates and contact.
#include <cstddef>
#include <cstdint>

#include "registry/registrations.hpp"
#include "registry/registry.hpp"
#include "registry/zone_writer.hpp"
#include "t/fuzz/fuzz.hpp"
#include "util/date.hpp"

using namespace regmilter;
using namespace regmilter::registry;

namespace {

void check_classified(const Classified& c, const dns::DnsAnswer& a, const Zone& z) {
    std::string what = std::string(to_string(c.status)) + " code=" + c.code + " error=" + c.error;
    if (c.status == Status::error) FUZZ_CHECK(!c.error.empty(), what);
    if (c.status != Status::listed) {
        FUZZ_CHECK(c.code.empty() && !c.bulk, what);
        return;
    }
    FUZZ_CHECK(a.status == dns::DnsStatus::ok, what);
    auto code = net::Address::parse(c.code);
    FUZZ_CHECK(code && code->is_v4() && code->in(*net::Address::parse("127.0.0.0"), 8), what);
    FUZZ_CHECK(*code != *net::Address::parse("127.0.0.1"), what);
    FUZZ_CHECK(!code->in(*net::Address::parse("127.255.255.0"), 24), what);
    if (c.bulk) FUZZ_CHECK(z.meaning == Meaning::registered, what);
}

bool is_date(const std::string& s) {
    return s.empty() || util::parse_date(s);
}

void check_metadata(std::string_view txt) {
    Metadata m = parse_metadata(txt);
    FUZZ_CHECK(is_date(m.registered) && is_date(m.updated), std::string(txt));
    FUZZ_CHECK(
        m.contact.size() <= 64 && m.contact.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS"
                                                              "TUVWXYZ0123456789._-") == std::string::npos,
        m.contact);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text = fuzz::as_text(data, size);
    dns::MemoryResolver dns;
    dns.set_strict(false);
    net::Address ip = *net::Address::parse("192.0.2.36");
    std::vector<Zone> zones;
    dns::DnsAnswer answer;
    answer.status = dns::DnsStatus::ok;
    std::vector<std::string> templates;
    for (std::string_view line : fuzz::lines_of(text)) {
        check_metadata(line);
        std::string_view rest = line;
        std::string_view key = fuzz::take_word(rest);
        if (key == "ip") {
            if (auto a = net::Address::parse(rest)) ip = *a;
        } else if (key == "zone") {
            Zone z;
            z.zone = std::string(fuzz::take_word(rest));
            z.name = "z" + std::to_string(zones.size());
            z.format = fuzz::take_word(rest) == "reversed" ? Format::reversed : Format::dashed;
            z.meaning = fuzz::take_word(rest) == "blocked" ? Meaning::blocked : Meaning::registered;
            while (!rest.empty()) {
                std::string_view w = fuzz::take_word(rest);
                if (w == "fcrdns") z.require_fcrdns = true;
                if (auto a = net::Address::parse(w)) z.bulk_codes.push_back(*a);
            }
            if (zones.size() < 8) zones.push_back(std::move(z));
        } else if (key == "answer") {
            for (auto s : {dns::DnsStatus::ok, dns::DnsStatus::nxdomain, dns::DnsStatus::nodata,
                           dns::DnsStatus::timeout, dns::DnsStatus::servfail, dns::DnsStatus::malformed})
                if (rest == dns::to_string(s)) answer.status = s;
        } else if (key == "code") {
            answer.rdata.emplace_back(rest);
        } else if (key == "text") {
            templates.emplace_back(rest);
        } else {
            fuzz::add_zone_line(dns, line);
        }
    }
    if (zones.empty()) {
        Zone z;
        z.name = "reg";
        z.zone = "reg.example";
        z.bulk_codes.push_back(*net::Address::parse("127.0.0.3"));
        zones.push_back(z);
    }
    for (const Zone& z : zones) {
        check_classified(classify(answer, z), answer, z);
        Entry e = lookup(dns, ip, z, dns::no_deadline());
        FUZZ_CHECK(e.query == query_name(ip, z.format, z.zone), e.query);
        FUZZ_CHECK(e.status != Status::error || !e.error.empty(), e.query);
        if (e.status != Status::error) {
            Classified c{e.status, e.code, e.bulk, e.error};
            dns::DnsAnswer ok;
            ok.status = dns::DnsStatus::ok;
            check_classified(c, ok, z);
        }
        FUZZ_CHECK(fuzz::printable_ascii(e.info) && e.info.size() <= 512, e.info);
        if (!e.fcrdns_checked) FUZZ_CHECK(!e.fcrdns_ok, e.query);
        for (const std::string& t : templates) (void)expand_text(t, ip, e);
        std::string label = query_label(ip, z.format);
        FUZZ_CHECK(label.find_first_not_of("0123456789abcdef.-:") == std::string::npos, label);
    }

    const util::Day today = *util::parse_date("2026-06-01");
    Parsed p = parse_registrations(text, "fuzz.registrations", today);
    for (const Problem& pr : p.problems) FUZZ_CHECK(pr.line > 0 && !pr.message.empty(), pr.str());
    for (const Registration& r : p.entries) {
        FUZZ_CHECK(r.since <= today && r.updated >= r.since && r.updated <= today, r.hostname);
        FUZZ_CHECK(r.hostname == util::lower(r.hostname), r.hostname);
        FUZZ_CHECK(!r.ip.is_v4_mapped(), r.ip.str());
        Metadata m = parse_metadata(metadata_txt(r));
        FUZZ_CHECK(m.registered == util::format_date(r.since) && m.updated == util::format_date(r.updated) &&
                       m.contact == r.contact,
                   metadata_txt(r));
    }
    return 0;
}
