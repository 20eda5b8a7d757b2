// dns: nameserver strings (config, --nameserver), resolv.conf reading, and
// the LdnsResolver paths that need no network (bad options, deadline, bad names).
#include <catch2/catch.hpp>

#include <unistd.h>
#include <cstdio>
#include <fstream>

#include "dns/ldns_resolver.hpp"
#include "dns/nameserver.hpp"

using namespace regmilter::dns;

TEST_CASE("nameserver strings parse to address and port", "[dns]") {
    struct Case {
        const char* in;
        const char* addr;
        uint16_t port;
        const char* str;
    };
    const Case cases[] = {
        {"127.0.0.1", "127.0.0.1", 53, "127.0.0.1"},
        {"127.0.0.1:5353", "127.0.0.1", 5353, "127.0.0.1:5353"},
        {"192.0.2.1:53", "192.0.2.1", 53, "192.0.2.1"},
        {"::1", "::1", 53, "::1"},
        {"2001:db8::53", "2001:db8::53", 53, "2001:db8::53"},
        {"[::1]", "::1", 53, "::1"},
        {"[::1]:5353", "::1", 5353, "[::1]:5353"},
        {"[2001:DB8::1]:65535", "2001:db8::1", 65535, "[2001:db8::1]:65535"},
        {"::ffff:192.0.2.1", "::ffff:192.0.2.1", 53, "::ffff:192.0.2.1"},
    };
    for (const Case& c : cases) {
        INFO("input " << c.in);
        std::string err;
        auto ns = parse_nameserver(c.in, err);
        REQUIRE(ns);
        CHECK(ns->address.str() == c.addr);
        CHECK(ns->port == c.port);
        CHECK(ns->str() == c.str);
        CHECK(err.empty());
    }
}

TEST_CASE("bad nameserver strings are refused with a reason", "[dns]") {
    struct Case {
        const char* in;
        const char* why;
    };
    const Case cases[] = {
        {"", "empty"},
        {"ns.example", "not an IP address"},
        {"ns.example:53", "not an IP address"},
        {"127.0.0.1:", "port \"\" is not a number"},
        {"127.0.0.1:0", "port \"0\" is not a number 1..65535"},
        {"127.0.0.1:65536", "port \"65536\""},
        {"127.0.0.1:53x", "port \"53x\""},
        {"127.0.0.1:-1", "port \"-1\""},
        {"256.0.0.1", "not an IP address"},
        {"[::1", "missing ']'"},
        {"[::1]53", "expected ':PORT'"},
        {"[127.0.0.1]:53", "brackets are for IPv6"},
        {"[::1]:", "port \"\""},
        {"fe80::1%eth0", "zone ids"},
        {" 127.0.0.1", "not an IP address"},
    };
    for (const Case& c : cases) {
        INFO("input \"" << c.in << "\"");
        std::string err;
        CHECK_FALSE(parse_nameserver(c.in, err));
        CHECK_THAT(err, Catch::Contains(c.why));
        CHECK_THAT(err, Catch::StartsWith(std::string("nameserver \"") + c.in + "\": "));
    }
}

TEST_CASE("resolv.conf nameserver lines, with 127.0.0.1 as the default", "[dns]") {
    char path[] = "/tmp/regmilter-resolv-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    {
        std::ofstream f(path);
        f << "# comment\nsearch example\nnameserver 192.0.2.53\nnameserver  2001:db8::53\n"
             "nameserver fe80::1%eth0\nnameserver bogus\noptions timeout:1\nnameserver 198.51.100.53\n";
    }
    auto got = system_nameservers(path);
    std::vector<std::string> texts;
    for (const auto& ns : got) texts.push_back(ns.str());
    CHECK(texts == std::vector<std::string>{"192.0.2.53", "2001:db8::53", "198.51.100.53"});
    std::remove(path);
    auto fallback = system_nameservers(path);  // now missing
    REQUIRE(fallback.size() == 1);
    CHECK(fallback[0].str() == "127.0.0.1");
}

TEST_CASE("ldns resolver: invalid options are errors, not crashes", "[dns]") {
    struct Case {
        int timeout;
        int retries;
        const char* why;
    };
    const Case cases[] = {
        {0, 2, "timeout_ms"},
        {2000, -1, "retries"},
    };
    std::string perr;
    const Nameserver local = *parse_nameserver("127.0.0.1", perr);
    for (const Case& c : cases) {
        INFO(c.why);
        ResolverOptions o;
        o.nameservers = {local};
        o.timeout_ms = c.timeout;
        o.retries = c.retries;
        std::string err;
        CHECK_FALSE(LdnsResolver::create(o, err));
        CHECK_THAT(err, Catch::Contains(c.why));
        CHECK_THROWS_AS(LdnsResolver(o), std::invalid_argument);
    }
    ResolverOptions ok;
    ok.nameservers = {*parse_nameserver("127.0.0.1:5353", perr), *parse_nameserver("[::1]:5354", perr)};
    std::string err;
    auto r = LdnsResolver::create(ok, err);
    REQUIRE(r);
    REQUIRE(r->nameservers().size() == 2);
    CHECK(r->nameservers()[1].str() == "[::1]:5354");
}

TEST_CASE("ldns resolver: no query past the deadline, none for impossible names", "[dns]") {
    ResolverOptions o;
    std::string perr;
    o.nameservers = {*parse_nameserver("127.0.0.1:9", perr)};  // never reached: both cases end before sending
    LdnsResolver r(o);
    DnsAnswer late = r.query("example.com", RrType::a, Clock::now() - std::chrono::seconds(1));
    CHECK(late.status == DnsStatus::timeout);
    CHECK_THAT(late.detail, Catch::Contains("deadline"));

    const std::string long_label(64, 'a');
    std::string long_name;
    while (long_name.size() < 256) long_name += "abcdefghi.";
    struct Case {
        std::string name;
        const char* why;
    };
    const Case cases[] = {
        {long_label + ".example", "label longer than 63"},
        {"a..example", "empty label"},
        {long_name + "example", "name longer than 255"},
        {"\\999.example", "above 255"},
    };
    for (const Case& c : cases) {
        INFO(c.name);
        DnsAnswer a = r.query(c.name, RrType::txt, deadline_in(std::chrono::seconds(5)));
        CHECK(a.status == DnsStatus::nxdomain);
        CHECK_THAT(a.detail, Catch::Contains(c.why));
    }
}
