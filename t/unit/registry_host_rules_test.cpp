// registry: check (a) -- special-use ranges and the dynamic-PTR rule, as tables.
#include <catch2/catch.hpp>

#include <algorithm>

#include "registry/host_rules.hpp"

using namespace regmilter;

namespace {

net::Address ip(const char* s) {
    return *net::Address::parse(s);
}

}  // namespace

TEST_CASE("special-use ranges: which, and which are never a host", "[registry][host_rules]") {
    struct Case {
        const char* ip;
        const char* network;  // "" = ordinary
        bool never;
    };
    const Case cases[] = {
        {"8.8.8.8", "", false},
        {"192.0.3.1", "", false},
        {"0.1.2.3", "0.0.0.0/8", true},
        {"127.0.0.2", "127.0.0.0/8", true},
        {"224.0.0.5", "224.0.0.0/4", true},
        {"239.255.255.255", "224.0.0.0/4", true},
        {"255.255.255.255", "255.255.255.255/32", true},
        {"250.1.2.3", "240.0.0.0/4", true},
        {"10.20.30.40", "10.0.0.0/8", false},
        {"100.64.0.1", "100.64.0.0/10", false},
        {"100.128.0.1", "", false},
        {"169.254.1.1", "169.254.0.0/16", false},
        {"172.16.0.1", "172.16.0.0/12", false},
        {"172.32.0.1", "", false},
        {"192.0.0.9", "192.0.0.0/24", false},
        {"192.0.2.36", "192.0.2.0/24", false},
        {"192.88.99.1", "192.88.99.0/24", false},
        {"192.168.1.1", "192.168.0.0/16", false},
        {"198.19.255.255", "198.18.0.0/15", false},
        {"198.51.100.7", "198.51.100.0/24", false},
        {"203.0.113.7", "203.0.113.0/24", false},
        {"::ffff:203.0.113.7", "203.0.113.0/24", false},  // mapped: IPv4
        {"2a00:1450::1", "", false},
        {"::", "::/128", true},
        {"::1", "::1/128", true},
        {"ff02::1", "ff00::/8", true},
        {"64:ff9b::192.0.2.1", "64:ff9b::/96", false},
        {"64:ff9b:1::1", "64:ff9b:1::/48", false},
        {"100::1", "100::/64", false},
        {"fd00::1", "fc00::/7", false},
        {"fe80::1", "fe80::/10", false},
        {"2001::1", "2001::/32", false},
        {"2001:2::1", "2001:2::/48", false},
        {"2001:1f::1", "2001:10::/28", false},
        {"2001:20::1", "2001:20::/28", false},
        {"2001:100::1", "2001::/23", false},
        {"2001:200::1", "", false},
        {"2001:db8::7", "2001:db8::/32", false},
        {"2002:c000:0201::1", "2002::/16", false},
        {"3fff::1", "3fff::/20", false},
        {"4000::1", "outside 2000::/3", false},
        {"fec0::1", "outside 2000::/3", false},
    };
    for (const auto& c : cases) {
        auto s = registry::special_use(ip(c.ip));
        INFO(c.ip);
        if (*c.network == '\0') {
            CHECK_FALSE(s);
            continue;
        }
        REQUIRE(s);
        CHECK(s->network == c.network);
        CHECK(s->never_a_host == c.never);
        CHECK_FALSE(s->name.empty());
    }
}

TEST_CASE("dynamic-looking PTR names: the rule table", "[registry][host_rules]") {
    struct Case {
        const char* name;
        const char* ip;
        const char* want;  // substring of the reason, "" = not dynamic
    };
    const Case cases[] = {
        // Two labels, or a plain host part: fine.
        {"example.org", "203.0.113.7", ""},
        {"mail.example.org", "203.0.113.7", ""},
        {"mx7.example.org", "203.0.113.7", ""},
        {"smtp-out-113.example.org", "203.0.113.7", ""},  // one octet only
        {"113-7.static.example.org", "203.0.113.7", ""},  // two octets only
        {"mail.liverpool.ac.uk", "203.0.113.7", ""},      // "pool" inside a word is not the word
        {"mail.dsl.example", "203.0.113.7", ""},          // the domain itself is not examined
        {"mail.clientele.example.org", "203.0.113.7", ""},
        // Access-network words, with trailing digits, and the dyn/dhcp/ppp prefixes.
        {"dsl.example.isp.net", "203.0.113.7", "word \"dsl\""},
        {"host.dsl2.isp.net", "203.0.113.7", "word \"dsl\""},
        {"a.pool.isp.net", "203.0.113.7", "word \"pool\""},
        {"cable-modem.isp.net", "203.0.113.7", "word \"cable\""},
        {"x.client.isp.net", "203.0.113.7", "word \"client\""},
        {"x.dynamic.isp.net", "203.0.113.7", "word \"dynamic\""},
        {"dyn123.isp.net", "203.0.113.7", "word \"dyn\""},
        {"x.dynip.isp.net", "203.0.113.7", "word \"dynip\""},
        {"dhcp-42.campus.isp.net", "203.0.113.7", "word \"dhcp\""},
        {"x.pppoe.isp.net", "203.0.113.7", "word \"pppoe\""},
        {"ppp7.isp.net", "203.0.113.7", "word \"ppp\""},
        {"x.adsl.isp.net", "203.0.113.7", "word \"adsl\""},
        {"x.dialup.isp.net", "203.0.113.7", "word \"dialup\""},
        {"p5b0c1234.dip0.t-ipconnect.de", "91.12.18.52", "word \"dip\""},
        {"x.cpe.isp.net", "203.0.113.7", "word \"cpe\""},
        {"x.broadband.isp.net", "203.0.113.7", "word \"broadband\""},
        // IPv4 octets: three consecutive, either direction, any separators.
        {"host-203-0-113-7.isp.net", "203.0.113.7", "octets"},
        {"mail-0-113-7.isp.net", "203.0.113.7", "octets"},
        {"7.113.0.203.isp.net", "203.0.113.7", "octets"},
        {"x7-113-0.isp.net", "203.0.113.7", "octets"},
        {"ip68-230-113.isp.net", "68.230.113.9", "octets"},
        {"c-068-230-113-009.isp.net", "68.230.113.9", "octets"},
        {"host-203-0-113-8.isp.net", "203.0.113.7", "octets"},  // 203.0.113 is three octets of .7 too
        {"host-198-51-100-7.isp.net", "203.0.113.7", ""},       // someone else's octets
        {"h203000113007.isp.net", "203.0.113.7", "digits"},
        {"h007113000203.isp.net", "203.0.113.7", "digits"},
        {"pcb007107.isp.net", "203.0.113.7", "hex"},
        // IPv6.
        {"mail6.example.org", "2001:db8::7", ""},
        {"h-2001-db8-0-0-0-1-2-3.isp.net", "2001:db8::1:2:3", "groups"},
        {"x-0-25-0.isp.net", "2001:db8::25:0", "groups"},  // ...:0:25:0 as three hex numbers
        {"cust0123456789abcdef.isp.net", "2001:db8::123:4567:89ab:cdef", "interface identifier"},
        {"i0123456789abcdef.isp.net", "2001:db8::123:4567:89ab:cdef", "interface identifier"},
        {"c.b.a.9.8.7.6.5.4.3.2.1.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.isp.net",
         "2001:db8::1234:5678:9abc", "nibble-reversed"},
    };
    for (const auto& c : cases) {
        std::string got = registry::dynamic_ptr_reason(c.name, ip(c.ip));
        INFO(c.name << " for " << c.ip << ": got \"" << got << "\"");
        if (*c.want == '\0') {
            CHECK(got.empty());
        } else {
            CHECK(got.find(c.want) != std::string::npos);
            CHECK(got.find("--allow-generic-ptr") != std::string::npos);
        }
    }
}

TEST_CASE("dynamic-looking PTR names: the word list is sorted and lower case", "[registry][host_rules]") {
    const auto& w = registry::generic_ptr_words();
    REQUIRE_FALSE(w.empty());
    for (size_t i = 0; i < w.size(); ++i) {
        for (char c : w[i]) CHECK((c >= 'a' && c <= 'z'));
        if (i > 0) CHECK(w[i - 1] < w[i]);
    }
    for (const char* want : {"dyn", "dhcp", "pool", "dsl", "cable", "ppp", "client"})
        CHECK(std::find(w.begin(), w.end(), want) != w.end());
}
