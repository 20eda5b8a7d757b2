// registry: query names in both forms and families, answer codes, TXT
// metadata, FCrDNS, reject_text placeholders. Hermetic: MemoryResolver.
#include <catch2/catch.hpp>

#include "dns/memory_resolver.hpp"
#include "registry/registry.hpp"

using namespace regmilter;
using registry::Format;

namespace {

net::Address ip(const char* s) {
    return *net::Address::parse(s);
}

registry::Zone zone(const char* z, registry::Meaning m = registry::Meaning::registered) {
    registry::Zone r;
    r.name = "r";
    r.zone = z;
    r.meaning = m;
    r.bulk_codes = {ip("127.0.0.3")};
    return r;
}

dns::DnsAnswer answer(std::vector<std::string> rdata) {
    dns::DnsAnswer a;
    a.status = dns::DnsStatus::ok;
    a.rdata = std::move(rdata);
    return a;
}

}  // namespace

TEST_CASE("query names: dashed and reversed, IPv4, IPv6, IPv4-mapped", "[registry]") {
    struct Case {
        const char* ip;
        Format f;
        const char* want;
    };
    const Case cases[] = {
        {"192.0.2.36", Format::dashed, "192-0-2-36.reg.example"},
        {"192.0.2.36", Format::reversed, "36.2.0.192.reg.example"},
        {"::ffff:192.0.2.36", Format::dashed, "192-0-2-36.reg.example"},
        {"::ffff:192.0.2.36", Format::reversed, "36.2.0.192.reg.example"},
        {"2001:db8::7", Format::dashed, "2001-0db8-0000-0000-0000-0000-0000-0007.reg.example"},
        {"2001:DB8::7", Format::reversed,
         "7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.reg.example"},
    };
    for (const auto& c : cases) {
        std::string got = registry::query_name(ip(c.ip), c.f, "reg.example");
        INFO(c.ip << " " << util::name_of(c.f) << ": got " << got << ", want " << c.want);
        CHECK(got == c.want);
    }
}

TEST_CASE("answers: only 127/8 listings count; error answers are errors", "[registry]") {
    struct Case {
        const char* name;
        dns::DnsAnswer a;
        registry::Status want;
        const char* code;
        bool bulk;
        const char* error;
    };
    dns::DnsAnswer nx;
    nx.status = dns::DnsStatus::nxdomain;
    dns::DnsAnswer nodata;
    nodata.status = dns::DnsStatus::nodata;
    dns::DnsAnswer timeout;
    timeout.status = dns::DnsStatus::timeout;
    dns::DnsAnswer servfail;
    servfail.status = dns::DnsStatus::servfail;
    servfail.detail = "rcode SERVFAIL";
    const Case cases[] = {
        {"127.0.0.2 registered", answer({"127.0.0.2"}), registry::Status::listed, "127.0.0.2", false, ""},
        {"other 127/8 code", answer({"127.0.0.10"}), registry::Status::listed, "127.0.0.10", false, ""},
        {"bulk code", answer({"127.0.0.3"}), registry::Status::listed, "127.0.0.3", true, ""},
        {"bulk code among others", answer({"127.0.0.2", "127.0.0.3"}), registry::Status::listed, "127.0.0.3",
         true, ""},
        {"nxdomain", nx, registry::Status::unlisted, "", false, ""},
        {"nodata", nodata, registry::Status::unlisted, "", false, ""},
        {"127.0.0.1 is not a listing", answer({"127.0.0.1"}), registry::Status::error, "", false,
         "answer 127.0.0.1 is not a listing (RFC 5782 §5)"},
        {"query refused", answer({"127.255.255.254"}), registry::Status::error, "", false,
         "answer 127.255.255.254: the registry refused the query (127.255.255.0/24)"},
        {"outside 127/8", answer({"10.0.0.2"}), registry::Status::error, "", false,
         "answer 10.0.0.2 is outside 127.0.0.0/8"},
        {"error among listings", answer({"127.0.0.2", "192.0.2.1"}), registry::Status::error, "", false,
         "answer 192.0.2.1 is outside 127.0.0.0/8"},
        {"garbage rdata", answer({"not-an-address"}), registry::Status::error, "", false,
         "answer not-an-address is outside 127.0.0.0/8"},
        {"timeout", timeout, registry::Status::error, "", false, "timeout"},
        {"servfail", servfail, registry::Status::error, "", false, "servfail (rcode SERVFAIL)"},
    };
    auto z = zone("reg.example");
    for (const auto& c : cases) {
        auto got = registry::classify(c.a, z);
        INFO(c.name << ": got " << registry::to_string(got.status) << " " << got.code << " [" << got.error
                    << "], want " << registry::to_string(c.want) << " " << c.code << " [" << c.error << "]");
        CHECK(got.status == c.want);
        CHECK(got.code == c.code);
        CHECK(got.bulk == c.bulk);
        CHECK(got.error == c.error);
    }
    // A block-list has no bulk senders: 127.0.0.3 is a plain listing there.
    auto bl = zone("bl.example", registry::Meaning::blocked);
    auto got = registry::classify(answer({"127.0.0.3"}), bl);
    CHECK(got.status == registry::Status::listed);
    CHECK_FALSE(got.bulk);
}

TEST_CASE("lookup: A, then TXT metadata at the same name", "[registry]") {
    dns::MemoryResolver dns;
    dns.add("36.2.0.192.reg.example", dns::RrType::a, "127.0.0.2");
    dns.add("36.2.0.192.reg.example", dns::RrType::txt, "registered 2025-04-01; contact abuse@example.net");
    auto z = zone("reg.example");
    z.format = Format::reversed;
    auto e = registry::lookup(dns, ip("192.0.2.36"), z, dns::no_deadline());
    CHECK(e.status == registry::Status::listed);
    CHECK(e.code == "127.0.0.2");
    CHECK(e.info == "registered 2025-04-01; contact abuse@example.net");
    CHECK(e.query == "36.2.0.192.reg.example");
    CHECK(dns.unexpected().empty());

    // Unlisted: no TXT query at all.
    dns.clear_log();
    dns.set_strict(false);
    auto u = registry::lookup(dns, ip("192.0.2.99"), z, dns::no_deadline());
    CHECK(u.status == registry::Status::unlisted);
    CHECK(dns.log() == std::vector<std::string>{"99.2.0.192.reg.example/A"});
}

TEST_CASE("lookup: TXT metadata with control bytes is made printable", "[registry]") {
    dns::MemoryResolver dns;
    dns.add("192-0-2-36.reg.example", dns::RrType::a, "127.0.0.2");
    dns.add("192-0-2-36.reg.example", dns::RrType::txt, std::string("a\r\nb\0c\xff", 7));
    auto e = registry::lookup(dns, ip("192.0.2.36"), zone("reg.example"), dns::no_deadline());
    CHECK(e.info == "a??b?c?");
}

TEST_CASE("lookup: a timeout is an error, never unlisted", "[registry]") {
    dns::MemoryResolver dns;
    dns.add_failure("192-0-2-36.reg.example", dns::DnsStatus::timeout);
    auto e = registry::lookup(dns, ip("192.0.2.36"), zone("reg.example"), dns::no_deadline());
    CHECK(e.status == registry::Status::error);
    CHECK(e.error.rfind("timeout", 0) == 0);
}

TEST_CASE("FCrDNS: PTR, then A/AAAA back to the client", "[registry]") {
    struct Case {
        const char* name;
        const char* client;
        bool pass;
        registry::Fcrdns::Result result;
    };
    dns::MemoryResolver dns;
    dns.add("36.2.0.192.in-addr.arpa", dns::RrType::ptr, "mail.example.org");
    dns.add("mail.example.org", dns::RrType::a, "192.0.2.36");
    dns.add("37.2.0.192.in-addr.arpa", dns::RrType::ptr, "liar.example.org");
    dns.add("liar.example.org", dns::RrType::a, "198.51.100.1");
    dns.add_failure("38.2.0.192.in-addr.arpa", dns::DnsStatus::timeout);
    dns.add("7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", dns::RrType::ptr,
            "v6.example.org");
    dns.add("v6.example.org", dns::RrType::aaaa, "2001:db8::7");
    dns.set_strict(false);
    const Case cases[] = {
        {"confirmed", "192.0.2.36", true, registry::Fcrdns::Result::pass},
        {"PTR name points elsewhere", "192.0.2.37", false, registry::Fcrdns::Result::fail},
        {"PTR times out", "192.0.2.38", false, registry::Fcrdns::Result::temperror},
        {"no PTR", "192.0.2.39", false, registry::Fcrdns::Result::fail},
        {"IPv6 confirmed", "2001:db8::7", true, registry::Fcrdns::Result::pass},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        auto f = registry::check_fcrdns(dns, ip(c.client), dns::no_deadline());
        CHECK(f.result == c.result);
    }
    // Through lookup(): a listed server without FCrDNS is flagged; a timeout is an error.
    dns.add("192-0-2-37.reg.example", dns::RrType::a, "127.0.0.2");
    dns.add("192-0-2-38.reg.example", dns::RrType::a, "127.0.0.2");
    auto z = zone("reg.example");
    z.require_fcrdns = true;
    auto e = registry::lookup(dns, ip("192.0.2.37"), z, dns::no_deadline());
    CHECK(e.status == registry::Status::listed);
    CHECK(e.fcrdns_checked);
    CHECK_FALSE(e.fcrdns_ok);
    auto t = registry::lookup(dns, ip("192.0.2.38"), z, dns::no_deadline());
    CHECK(t.status == registry::Status::error);
    CHECK(t.error == "FCrDNS: PTR timeout");
}

TEST_CASE("reject_text placeholders", "[registry]") {
    registry::Entry e;
    e.zone = "reg.example";
    e.info = "since 2025";
    CHECK(registry::expand_text("%{ip} not in %{zone} (%{info}); 100% sure %{x}", ip("::ffff:192.0.2.1"),
                                e) == "192.0.2.1 not in reg.example (since 2025); 100% sure %{x}");
}
