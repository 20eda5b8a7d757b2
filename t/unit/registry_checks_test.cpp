// registry: checks (a) and (b) of `regmilter-zone registry` against the strict
// in-memory resolver: PTR and forward confirmation, every reason, timeouts,
// several worker threads, the time budget.
#include <catch2/catch.hpp>

#include <atomic>
#include <memory>

#include "dns/memory_resolver.hpp"
#include "registry/checks.hpp"

using namespace regmilter;
using dns::DnsStatus;
using dns::RrType;

namespace {

const util::Day today = *util::parse_date("2025-06-01");

registry::Registration reg(const char* ip, const char* host) {
    registry::Registration r;
    r.line = 1;
    r.ip = *net::Address::parse(ip);
    r.hostname = host;
    r.contact = "H";
    r.email = "noc@example.org";
    return r;
}

// A fixture that every test shares: a good v4 host, a good v6 host, and
// one of each failure of check (b).
void load(dns::MemoryResolver& m) {
    m.add("36.2.0.192.in-addr.arpa", RrType::ptr, "mail.example.org");
    m.add("mail.example.org", RrType::a, "192.0.2.36");
    m.add("mail.example.org", RrType::a, "192.0.2.99");
    m.add("7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", RrType::ptr,
          "mail6.example.org.");
    m.add("mail6.example.org", RrType::aaaa, "2001:db8::7");
    // PTR names another host
    m.add("37.2.0.192.in-addr.arpa", RrType::ptr, "other.example.org");
    m.add("wrong.example.org", RrType::a, "192.0.2.37");
    // two PTRs
    m.add("38.2.0.192.in-addr.arpa", RrType::ptr, "two.example.org");
    m.add("38.2.0.192.in-addr.arpa", RrType::ptr, "second.example.org");
    m.add("two.example.org", RrType::a, "192.0.2.38");
    // no PTR, forward points elsewhere
    m.add_empty("39.2.0.192.in-addr.arpa");
    m.add("noptr.example.org", RrType::a, "192.0.2.1");
    // PTR ok, no A at all
    m.add("40.2.0.192.in-addr.arpa", RrType::ptr, "noa.example.org");
    m.add("noa.example.org", RrType::mx, "10 mx.example.org");
    // PTR times out; forward fine
    m.add_failure("41.2.0.192.in-addr.arpa", DnsStatus::timeout);
    m.add("slow.example.org", RrType::a, "192.0.2.41");
    // PTR with a CNAME (RFC 2317 classless delegation), forward SERVFAIL
    m.add("42.2.0.192.in-addr.arpa", RrType::cname, "42.32/27.2.0.192.in-addr.arpa");
    m.add("42.32/27.2.0.192.in-addr.arpa", RrType::ptr, "cname.example.org");
    m.add_failure("cname.example.org", DnsStatus::servfail);
    // PTR of one label
    m.add("43.2.0.192.in-addr.arpa", RrType::ptr, "bare");
    m.add("single.example.org", RrType::a, "192.0.2.43");
}

}  // namespace

TEST_CASE("check_dns: every reason of check (b)", "[registry][checks]") {
    struct Case {
        const char* ip;
        const char* host;
        std::vector<std::string> want;
    };
    const Case cases[] = {
        {"192.0.2.36", "mail.example.org", {}},
        {"2001:db8::7", "mail6.example.org", {}},
        {"192.0.2.37",
         "wrong.example.org",
         {"PTR at 37.2.0.192.in-addr.arpa is other.example.org, not wrong.example.org"}},
        {"192.0.2.38",
         "two.example.org",
         {"2 PTR records at 38.2.0.192.in-addr.arpa (second.example.org, two.example.org); want exactly one, "
          "two.example.org"}},
        {"192.0.2.39",
         "noptr.example.org",
         {"no PTR record at 39.2.0.192.in-addr.arpa",
          "noptr.example.org has A 192.0.2.1, not 192.0.2.39 (not forward-confirmed)"}},
        {"192.0.2.40", "noa.example.org", {"noa.example.org has no A record (not forward-confirmed)"}},
        {"192.0.2.41",
         "slow.example.org",
         {"PTR lookup for 41.2.0.192.in-addr.arpa timed out (fixture: timeout)"}},
        {"192.0.2.42",
         "cname.example.org",
         {"A lookup for cname.example.org failed: servfail (fixture: servfail)"}},
        {"192.0.2.43",
         "single.example.org",
         {"PTR at 43.2.0.192.in-addr.arpa is bare, not single.example.org (and has no domain)"}},
        {"192.0.2.44",
         "gone.example.org",
         {"no PTR record at 44.2.0.192.in-addr.arpa",
          "gone.example.org does not exist (NXDOMAIN; not forward-confirmed)"}},
    };
    for (const auto& c : cases) {
        dns::MemoryResolver m;
        load(m);
        m.set_strict(false);
        INFO(c.ip << " " << c.host);
        CHECK(registry::check_dns(m, reg(c.ip, c.host), dns::no_deadline()) == c.want);
    }
}

TEST_CASE("check_address: special use and dynamic names, and the flags that lift them",
          "[registry][checks]") {
    registry::CheckSettings s;
    auto r = reg("192.0.2.36", "host-192-0-2-36.dsl.example.org");
    auto why = registry::check_address(r, s);
    REQUIRE(why.size() == 2);
    CHECK(why[0] ==
          "192.0.2.36 is in 192.0.2.0/24, documentation, TEST-NET-1 (RFC 5737) (special-use; --allow-special "
          "accepts it)");
    CHECK(why[1].find("HOSTNAME host part \"host-192-0-2-36.dsl\" has the access-network word \"dsl\"") == 0);
    s.allow_special = true;
    s.allow_generic_ptr = true;
    CHECK(registry::check_address(r, s).empty());
    // Loopback is refused whatever the flags say.
    auto lo = registry::check_address(reg("127.0.0.9", "mail.example.org"), s);
    REQUIRE(lo.size() == 1);
    CHECK(lo[0] == "127.0.0.9 is in 127.0.0.0/8, loopback (RFC 1122): never a mail server's address");
}

TEST_CASE("check_registrations: every failure by line, several threads, --no-dns", "[registry][checks]") {
    const std::string text =
        "192.0.2.36 mail.example.org contact=H email=noc@example.org since=2024-01-01\n"
        "192.0.2.37 wrong.example.org contact=H email=noc@example.org since=2024-01-01\n"
        "bogus\n"
        "2001:db8::7 mail6.example.org contact=H email=noc@example.org since=2024-01-01 class=bulk\n"
        "192.0.2.41 slow.example.org contact=H email=noc@example.org since=2024-01-01\n"
        "192.0.2.36 dup.example.org contact=H email=noc@example.org since=2024-01-01\n";
    registry::CheckSettings s;
    s.allow_special = true;
    for (int jobs : {1, 4}) {
        s.jobs = jobs;
        std::atomic<int> made{0};
        auto factory = [&]() -> std::unique_ptr<dns::Resolver> {
            ++made;
            auto m = std::make_unique<dns::MemoryResolver>();
            load(*m);
            return m;
        };
        auto out = registry::check_registrations(text, "regs", today, s, factory);
        std::string got;
        for (const auto& p : out.problems) got += p.str() + "\n";
        INFO("jobs " << jobs);
        CHECK(
            got ==
            "regs:2: 192.0.2.37 wrong.example.org: PTR at 37.2.0.192.in-addr.arpa is other.example.org, not "
            "wrong.example.org\n"
            "regs:3: \"bogus\" is not an IPv4 or IPv6 address\n"
            "regs:3: no HOSTNAME after the address (want IP HOSTNAME key=value...)\n"
            "regs:3: no contact= (a contact handle is required)\n"
            "regs:3: no email= (a contact email address is required)\n"
            "regs:3: no since= (the registration date is required)\n"
            "regs:5: 192.0.2.41 slow.example.org: PTR lookup for 41.2.0.192.in-addr.arpa timed out (fixture: "
            "timeout)\n"
            "regs:6: duplicate address 192.0.2.36 (first at line 1)\n");
        CHECK(out.lines_failed == 4);
        REQUIRE(out.passed.size() == 2);
        CHECK(out.passed[0].hostname == "mail.example.org");
        CHECK(out.passed[1].hostname == "mail6.example.org");
        CHECK(made == jobs);
    }
    s.dns = false;
    auto factory = []() -> std::unique_ptr<dns::Resolver> {
        FAIL("--no-dns must not make a resolver");
        return nullptr;
    };
    auto out = registry::check_registrations(text, "regs", today, s, factory);
    CHECK(out.passed.size() == 4);
    CHECK(out.lines_failed == 2);
}

TEST_CASE("check_registrations: entries after the time budget are not checked", "[registry][checks]") {
    registry::CheckSettings s;
    s.allow_special = true;
    s.jobs = 1;
    s.budget = std::chrono::milliseconds(0);
    auto factory = []() -> std::unique_ptr<dns::Resolver> {
        auto m = std::make_unique<dns::MemoryResolver>();
        load(*m);
        return m;
    };
    auto out = registry::check_registrations(
        "192.0.2.36 mail.example.org contact=H email=noc@example.org since=2024-01-01\n", "regs", today, s,
        factory);
    REQUIRE(out.problems.size() == 1);
    CHECK(out.problems[0].str() ==
          "regs:1: 192.0.2.36 mail.example.org: not checked: the time budget of 0 s ran out");
    CHECK(out.passed.empty());
}
