// net: address parsing/printing, IPv4-mapped handling, CIDR parse errors and matching.
#include <catch2/catch.hpp>

#include "net/address.hpp"

using regmilter::net::Address;
using regmilter::net::Cidr;
using regmilter::net::CidrSet;

TEST_CASE("addresses parse and print canonically", "[net]") {
    struct Case {
        const char* in;
        const char* want;
    };
    const Case cases[] = {
        {"192.0.2.36", "192.0.2.36"},
        {"0.0.0.0", "0.0.0.0"},
        {"255.255.255.255", "255.255.255.255"},
        {"2001:db8::7", "2001:db8::7"},
        {"2001:DB8:0:0:0:0:0:7", "2001:db8::7"},
        {"::", "::"},
        {"::1", "::1"},
        {"1::", "1::"},
        {"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"},  // RFC 5952: a single 0 group is not "::"
        {"2001:0:0:1:0:0:0:1", "2001:0:0:1::1"},           // longest run wins
        {"::ffff:192.0.2.1", "::ffff:192.0.2.1"},
        {"::192.0.2.1", "::c000:201"},
    };
    for (const auto& c : cases) {
        auto a = Address::parse(c.in);
        INFO("input " << c.in);
        REQUIRE(a);
        CHECK(a->str() == c.want);
    }
}

TEST_CASE("malformed addresses are refused", "[net]") {
    const char* bad[] = {"",         "1.2.3",    "1.2.3.4.5",    "256.1.1.1",
                         "01.2.3.4", "1.2.3.4 ", " 1.2.3.4",     "1..2.3",
                         "1.2.3.-4", ":",        ":::",          "1:2:3:4:5:6:7:8:9",
                         "1::2::3",  "12345::",  "g::1",         "1:2:3:4:5:6:7:",
                         "::1.2.3",  "[::1]",    "fe80::1%eth0", "1:2:3:4:5:6:7:1.2.3.4"};
    for (const char* s : bad) {
        INFO("input \"" << s << "\"");
        CHECK_FALSE(Address::parse(s));
    }
    CHECK_FALSE(Address::parse(std::string_view("1.2.3.4\0", 8)));
}

TEST_CASE("IPv4-mapped IPv6 is an IPv4 client", "[net]") {
    auto m = Address::parse("::ffff:192.0.2.1");
    REQUIRE(m);
    CHECK(m->is_v4_mapped());
    CHECK(m->unmapped().is_v4());
    CHECK(m->unmapped().str() == "192.0.2.1");
    auto plain = Address::parse("2001:db8::1");
    CHECK(plain->unmapped() == *plain);
    auto net = Cidr::parse("192.0.2.0/24");
    REQUIRE(net.cidr);
    CHECK(net.cidr->contains(*m));
}

TEST_CASE("reversed and full forms for DNS names", "[net]") {
    CHECK(Address::parse("192.0.2.36")->reversed() == "36.2.0.192");
    CHECK(Address::parse("2001:db8::7")->reversed() ==
          "7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2");
    CHECK(Address::parse("2001:db8::7")->full('-') == "2001-0db8-0000-0000-0000-0000-0000-0007");
    CHECK(Address::parse("2001:db8::7")->full() == "2001:0db8:0000:0000:0000:0000:0000:0007");
}

TEST_CASE("CIDR parse errors say what is wrong", "[net]") {
    struct Case {
        const char* in;
        const char* want;
    };
    const Case cases[] = {
        {"10.1.2.3/24",
         "non-null host address bits in \"10.1.2.3/24\", perhaps you should use \"10.1.2.0/24\" instead"},
        {"10.1.2.0/33", "prefix length /33 exceeds 32 in \"10.1.2.0/33\""},
        {"2001:db8::/129", "prefix length /129 exceeds 128 in \"2001:db8::/129\""},
        {"10.1.2.0/", "bad prefix length \"/\" in \"10.1.2.0/\""},
        {"10.1.2.0/08", "bad prefix length \"/08\" in \"10.1.2.0/08\""},
        {"10.1.2.0/2x", "bad prefix length \"/2x\" in \"10.1.2.0/2x\""},
        {"example.com/24", "\"example.com\" is not an IPv4 or IPv6 address"},
    };
    for (const auto& c : cases) {
        auto p = Cidr::parse(c.in);
        INFO("input " << c.in);
        CHECK_FALSE(p.cidr);
        CHECK(p.error == c.want);
    }
}

TEST_CASE("CIDR matching, both families, edges", "[net]") {
    struct Case {
        const char* net;
        const char* ip;
        bool want;
    };
    const Case cases[] = {
        {"192.0.2.0/24", "192.0.2.255", true},
        {"192.0.2.0/24", "192.0.3.0", false},
        {"192.0.2.128/25", "192.0.2.127", false},
        {"192.0.2.128/25", "192.0.2.128", true},
        {"0.0.0.0/0", "203.0.113.9", true},
        {"0.0.0.0/0", "2001:db8::1", false},
        {"192.0.2.7", "192.0.2.7", true},
        {"192.0.2.7", "192.0.2.8", false},
        {"2001:db8::/32", "2001:db8:ffff::1", true},
        {"2001:db8::/33", "2001:db8:8000::1", false},
        {"::/0", "::1", true},
        {"::1/128", "::1", true},
        {"2001:db8::/32", "192.0.2.1", false},
    };
    for (const auto& c : cases) {
        auto p = Cidr::parse(c.net);
        REQUIRE(p.cidr);
        INFO(c.net << " contains " << c.ip);
        CHECK(p.cidr->contains(*Address::parse(c.ip)) == c.want);
    }
    CidrSet set;
    set.add(*Cidr::parse("127.0.0.0/8").cidr);
    set.add(*Cidr::parse("::1/128").cidr);
    CHECK(set.contains(*Address::parse("127.0.0.1")));
    CHECK(set.contains(*Address::parse("::ffff:127.1.2.3")));
    CHECK(set.contains(*Address::parse("::1")));
    CHECK_FALSE(set.contains(*Address::parse("::2")));
    CHECK_FALSE(CidrSet().contains(*Address::parse("127.0.0.1")));
}
