// Fuzz target: RFC 7208 check_host() (lib/spf/check_host) over a zone built
// from the input, in the in-memory resolver. Input lines:
//   ip ADDRESS | sender ADDRESS | helo NAME | domain NAME | receiver NAME
//   voids N (0..20)
//   and zone lines (t/fuzz/fuzz.hpp add_zone_line), e.g.
//   example.com TXT v=spf1 mx -all
//   example.com MX 10 mx.example.com
// The MAIL FROM identity, the HELO identity and check_host(domain) are
// evaluated. Properties: the RFC's limits hold (DNS terms, void lookups,
// queries asked); the explanation is printable ASCII of at most 512 bytes;
// every name asked is a query name of at most 253 characters without NUL;
// none and the errors say why.
#include <cstddef>
#include <cstdint>

#include "spf/check_host.hpp"
#include "t/fuzz/fuzz.hpp"

using namespace regmilter;
using namespace regmilter::spf;

namespace {

void check(const Outcome& o, const dns::MemoryResolver& dns, const Options& opt, size_t before) {
    std::string what = std::string(to_string(o.result)) + " (" + o.problem + "), " +
                       std::to_string(dns.count() - before) + " queries";
    // TXT, 10 terms of at most 1 + 10 queries each, %{p} (PTR + 10) for each
    // of at most 11 domains, the exp= TXT, and %{p} in the explanation.
    FUZZ_CHECK(dns.count() - before <= 1 + 10 * 11 + 11 * 11 + 1 + 11, what);
    FUZZ_CHECK(o.dns_terms <= opt.limits.dns_terms + 1, what);
    FUZZ_CHECK(o.void_lookups <= opt.limits.void_lookups + 1, what);
    FUZZ_CHECK(fuzz::printable_ascii(o.explanation) && o.explanation.size() <= 512, o.explanation);
    if (o.result == Result::none || o.result == Result::permerror || o.result == Result::temperror)
        FUZZ_CHECK(!o.problem.empty(), what);
    if (o.result != Result::fail) FUZZ_CHECK(o.explanation.empty(), what);
    for (size_t i = before; i < dns.log().size(); ++i) {
        const std::string& q = dns.log()[i];
        FUZZ_CHECK(q.find('\0') == std::string::npos, q);
        FUZZ_CHECK(q.size() <= 253 + 6, q);  // name + "/" + type
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    dns::MemoryResolver dns;
    dns.set_strict(false);
    Request req;
    req.ip = *net::Address::parse("192.0.2.3");
    req.sender = "user@example.com";
    req.helo = "mail.example.com";
    std::string domain = "example.com";
    Options opt;
    for (std::string_view line : fuzz::lines_of(fuzz::as_text(data, size))) {
        std::string_view rest = line;
        std::string_view key = fuzz::take_word(rest);
        if (key == "ip") {
            if (auto a = net::Address::parse(rest)) req.ip = *a;
        } else if (key == "sender") {
            req.sender = std::string(rest);
        } else if (key == "helo") {
            req.helo = std::string(rest);
        } else if (key == "domain") {
            domain = std::string(rest);
        } else if (key == "receiver") {
            req.receiver = std::string(rest);
        } else if (key == "voids") {
            if (rest.size() == 1 && rest[0] >= '0' && rest[0] <= '9') opt.limits.void_lookups = rest[0] - '0';
        } else {
            fuzz::add_zone_line(dns, line);
        }
    }
    size_t before = dns.count();
    Outcome m = check_mailfrom(dns, req, opt);
    check(m, dns, opt, before);
    before = dns.count();
    Outcome h = check_helo(dns, req, opt);
    check(h, dns, opt, before);
    before = dns.count();
    Outcome d = check_host(dns, req, domain, opt);
    check(d, dns, opt, before);
    return 0;
}
