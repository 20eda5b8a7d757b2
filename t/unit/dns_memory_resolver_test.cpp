// dns: the strict in-memory resolver the other unit tests stand on.
#include <catch2/catch.hpp>

#include "dns/memory_resolver.hpp"

using namespace regmilter::dns;

TEST_CASE("memory resolver: records, NODATA, NXDOMAIN, failures, CNAMEs", "[dns]") {
    MemoryResolver m;
    m.add("example.com", RrType::txt, "v=spf1 mx -all", 600);
    m.add("example.com", RrType::mx, "10 mx1.example.com");
    m.add("example.com", RrType::mx, "20 mx2.example.com", 100);
    m.add("Alias.Example.com.", RrType::cname, "example.com");
    m.add("loop1.example", RrType::cname, "loop2.example");
    m.add("loop2.example", RrType::cname, "loop1.example");
    m.add_empty("empty.example");
    m.add_failure("broken.example", DnsStatus::servfail);
    m.add_failure("slow.example", DnsStatus::timeout);

    struct Case {
        const char* name;
        RrType type;
        DnsStatus st;
        std::vector<std::string> rdata;
        uint32_t ttl;
    };
    const Case cases[] = {
        {"example.com", RrType::txt, DnsStatus::ok, {"v=spf1 mx -all"}, 600},
        {"EXAMPLE.com.", RrType::mx, DnsStatus::ok, {"10 mx1.example.com", "20 mx2.example.com"}, 100},
        {"example.com", RrType::a, DnsStatus::nodata, {}, 300},
        {"alias.example.com", RrType::txt, DnsStatus::ok, {"v=spf1 mx -all"}, 600},
        {"alias.example.com", RrType::cname, DnsStatus::ok, {"example.com"}, 300},
        {"empty.example", RrType::a, DnsStatus::nodata, {}, 300},
        {"broken.example", RrType::a, DnsStatus::servfail, {}, 0},
        {"slow.example", RrType::txt, DnsStatus::timeout, {}, 0},
        {"loop1.example", RrType::a, DnsStatus::servfail, {}, 0},
    };
    for (const Case& c : cases) {
        INFO(c.name << "/" << to_string(c.type));
        DnsAnswer a = m.query(c.name, c.type, no_deadline());
        CHECK(to_string(a.status) == std::string(to_string(c.st)));
        CHECK(a.rdata == c.rdata);
        CHECK(a.ttl == c.ttl);
    }
    CHECK(m.unexpected().empty());
    CHECK(m.log().front() == "example.com/TXT");
    CHECK(m.log()[1] == "example.com/MX");  // logged lower-case, without the dot
}

TEST_CASE("memory resolver: strict mode records unexpected queries", "[dns]") {
    MemoryResolver m;
    CHECK(m.query("nobody.example", RrType::a, no_deadline()).status == DnsStatus::nxdomain);
    CHECK(m.unexpected() == std::vector<std::string>{"nobody.example/A"});
    m.clear_log();
    m.set_strict(false);
    CHECK(m.query("nobody.example", RrType::aaaa, no_deadline()).status == DnsStatus::nxdomain);
    CHECK(m.unexpected().empty());
    CHECK(m.count() == 1);
}

TEST_CASE("memory resolver: a passed deadline is a timeout", "[dns]") {
    MemoryResolver m;
    m.add("example.com", RrType::a, "192.0.2.1");
    DnsAnswer a = m.query("example.com", RrType::a, Clock::now() - std::chrono::milliseconds(1));
    CHECK(a.status == DnsStatus::timeout);
    CHECK(a.rdata.empty());
}
