// registry: the published zone file and rbldnsd dataset, whole; names in
// both forms and families, codes, TXT, test points; zone-file helpers
// (serials, SOA reading, quoting, names).
#include <catch2/catch.hpp>

#include <sstream>

#include "dns/zone_file.hpp"
#include "registry/zone_writer.hpp"

using namespace regmilter;

namespace {

std::vector<registry::Registration> sample() {
    auto r = [](const char* ip, const char* host, const char* contact, const char* since, const char* updated,
                registry::ServerClass c) {
        registry::Registration x;
        x.ip = *net::Address::parse(ip);
        x.hostname = host;
        x.contact = contact;
        x.email = "secret@example.org";
        x.phone = "+1-555-0100";
        x.since = *util::parse_date(since);
        x.updated = *util::parse_date(updated);
        x.server_class = c;
        return x;
    };
    // Out of order on purpose: the writer sorts by address, IPv4 first.
    return {
        r("2001:db8::7", "mail6.example.org", "H-3", "2024-03-01", "2024-03-01",
          registry::ServerClass::regular),
        r("192.0.2.37", "bulk.example.org", "H-2", "2024-02-01", "2024-04-01", registry::ServerClass::bulk),
        r("192.0.2.36", "mail.example.org", "H-1", "2024-01-02", "2024-05-01",
          registry::ServerClass::regular)};
}

registry::PublishSettings settings(bool dashed, bool reversed) {
    registry::PublishSettings s;
    s.head.zone = "reg.example";
    s.head.serial = 2025060100;
    s.forms = {dashed, reversed};
    s.comments = {"built for a test"};
    return s;
}

const char head[] =
    "; built for a test\n"
    "$ORIGIN reg.example.\n"
    "$TTL 3600\n"
    "@\tIN\tSOA\tlocalhost. hostmaster.reg.example. ( 2025060100 3600 900 1209600 300 )\n"
    "\tIN\tNS\tlocalhost.\n";

}  // namespace

TEST_CASE("zone file: dashed and reversed names, codes, TXT, test points", "[registry][zone_writer]") {
    std::ostringstream out;
    registry::write_zone(out, sample(), settings(true, true));
    const std::string want =
        std::string(head) +
        "; dashed names\n"
        "127-0-0-2\tIN\tA\t127.0.0.2\n\tIN\tTXT\t\"test point (RFC 5782 section 5)\"\n"
        "0000-0000-0000-0000-0000-ffff-7f00-0002\tIN\tA\t127.0.0.2\n\tIN\tTXT\t\"test point (RFC 5782 "
        "section 5)\"\n"
        "192-0-2-36\tIN\tA\t127.0.0.2\n\tIN\tTXT\t\"registered=2024-01-02 updated=2024-05-01 contact=H-1\"\n"
        "192-0-2-37\tIN\tA\t127.0.0.3\n\tIN\tTXT\t\"registered=2024-02-01 updated=2024-04-01 contact=H-2\"\n"
        "2001-0db8-0000-0000-0000-0000-0000-0007\tIN\tA\t127.0.0.2\n"
        "\tIN\tTXT\t\"registered=2024-03-01 updated=2024-03-01 contact=H-3\"\n"
        "; reversed names\n"
        "2.0.0.127\tIN\tA\t127.0.0.2\n\tIN\tTXT\t\"test point (RFC 5782 section 5)\"\n"
        "2.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0\tIN\tA\t127.0.0.2\n"
        "\tIN\tTXT\t\"test point (RFC 5782 section 5)\"\n"
        "36.2.0.192\tIN\tA\t127.0.0.2\n\tIN\tTXT\t\"registered=2024-01-02 updated=2024-05-01 contact=H-1\"\n"
        "37.2.0.192\tIN\tA\t127.0.0.3\n\tIN\tTXT\t\"registered=2024-02-01 updated=2024-04-01 contact=H-2\"\n"
        "7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2\tIN\tA\t127.0.0.2\n"
        "\tIN\tTXT\t\"registered=2024-03-01 updated=2024-03-01 contact=H-3\"\n";
    CHECK(out.str() == want);
    // Only the handle is published.
    CHECK(out.str().find("secret") == std::string::npos);
    CHECK(out.str().find("555") == std::string::npos);
    // 127.0.0.1 and ::FFFF:7F00:1 are never listed.
    CHECK(out.str().find("127-0-0-1\t") == std::string::npos);
    CHECK(out.str().find("\n1.0.0.127\t") == std::string::npos);
    CHECK(out.str().find("ffff-7f00-0001") == std::string::npos);
}

TEST_CASE("zone file: one form only; NS, hostmaster and TTL", "[registry][zone_writer]") {
    auto s = settings(false, true);
    s.head.nameservers = {"ns1.example.net", "ns2.example.net"};
    s.head.hostmaster = "dns.admin@example.net";
    s.head.ttl = 600;
    s.comments.clear();
    std::ostringstream out;
    registry::write_zone(out, {}, s);
    CHECK(out.str() ==
          "$ORIGIN reg.example.\n"
          "$TTL 600\n"
          "@\tIN\tSOA\tns1.example.net. dns\\.admin.example.net. ( 2025060100 3600 900 1209600 300 )\n"
          "\tIN\tNS\tns1.example.net.\n"
          "\tIN\tNS\tns2.example.net.\n"
          "; reversed names\n"
          "2.0.0.127\tIN\tA\t127.0.0.2\n\tIN\tTXT\t\"test point (RFC 5782 section 5)\"\n"
          "2.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0\tIN\tA\t127.0.0.2\n"
          "\tIN\tTXT\t\"test point (RFC 5782 section 5)\"\n");
}

TEST_CASE("rbldnsd dataset: combined ip4set, ip6trie and dnset", "[registry][zone_writer]") {
    std::ostringstream out;
    registry::write_rbldnsd(out, sample(), settings(true, true));
    CHECK(out.str() ==
          "# built for a test\n"
          "$SOA 3600 localhost. hostmaster.reg.example. 2025060100 3600 900 1209600 300\n"
          "$NS 3600 localhost.\n"
          "$TTL 3600\n"
          "$DATASET ip4set:reversed-ipv4 @\n"
          "127.0.0.2 :127.0.0.2:test point (RFC 5782 section 5)\n"
          "192.0.2.36 :127.0.0.2:registered=2024-01-02 updated=2024-05-01 contact=H-1\n"
          "192.0.2.37 :127.0.0.3:registered=2024-02-01 updated=2024-04-01 contact=H-2\n"
          "$DATASET ip6trie:reversed-ipv6 @\n"
          "0000:0000:0000:0000:0000:ffff:7f00:0002 :127.0.0.2:test point (RFC 5782 section 5)\n"
          "2001:0db8:0000:0000:0000:0000:0000:0007 :127.0.0.2:registered=2024-03-01 updated=2024-03-01 "
          "contact=H-3\n"
          "$DATASET dnset:dashed @\n"
          "127-0-0-2 :127.0.0.2:test point (RFC 5782 section 5)\n"
          "0000-0000-0000-0000-0000-ffff-7f00-0002 :127.0.0.2:test point (RFC 5782 section 5)\n"
          "192-0-2-36 :127.0.0.2:registered=2024-01-02 updated=2024-05-01 contact=H-1\n"
          "192-0-2-37 :127.0.0.3:registered=2024-02-01 updated=2024-04-01 contact=H-2\n"
          "2001-0db8-0000-0000-0000-0000-0000-0007 :127.0.0.2:registered=2024-03-01 updated=2024-03-01 "
          "contact=H-3\n");
}

TEST_CASE("zone names: what fits", "[registry][zone_writer]") {
    CHECK(registry::check_zone_name("reg.example", {true, true}).empty());
    CHECK(registry::check_zone_name("reg..example", {true, false}) == "\"reg..example\": empty label");
    CHECK(registry::check_zone_name("-reg.example", {true, false}) ==
          "\"-reg.example\": label starts or ends with '-'");
    const std::string z190 = std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(62, 'c');
    REQUIRE(z190.size() == 190);
    CHECK(registry::check_zone_name(z190, {true, true}).find("too long") != std::string::npos);  // 190 + 64
    CHECK(registry::check_zone_name(z190.substr(1), {true, true}).empty());  // 189 + 64 = 253
    CHECK(registry::check_zone_name(z190, {true, false}).empty());           // 190 + 40
}

TEST_CASE("serials: RFC 1982 order and the rebuild rule", "[registry][zone_file]") {
    CHECK(dns::serial_newer(2, 1));
    CHECK_FALSE(dns::serial_newer(1, 2));
    CHECK_FALSE(dns::serial_newer(5, 5));
    CHECK(dns::serial_newer(1, 0xfffffff0u));  // wrapped
    CHECK_FALSE(dns::serial_newer(0x90000000u, 1));
    struct Case {
        std::optional<uint32_t> previous;
        uint32_t today, want;
    };
    const Case cases[] = {
        {std::nullopt, 20250601, 2025060100}, {2025053107, 20250601, 2025060100},
        {2025060100, 20250601, 2025060101},   {2025060199, 20250601, 2025060200},
        {2025070100, 20250601, 2025070101},   {7, 20250601, 2025060100},
        {4000000000u, 20250601, 4000000001u}, {0xffffffffu, 20250601, 2025060100},
        {0xffffffffu, 30000101, 1},
    };
    for (const auto& c : cases) {
        INFO((c.previous ? std::to_string(*c.previous) : "none"));
        uint32_t got = dns::next_serial(c.previous, c.today);
        CHECK(got == c.want);
        if (c.previous) CHECK(dns::serial_newer(got, *c.previous));
    }
}

TEST_CASE("reading the serial of a previous zone", "[registry][zone_file]") {
    struct Case {
        const char* text;
        std::optional<uint32_t> want;
        const char* error;
    };
    const Case cases[] = {
        {"$ORIGIN x.\n@ IN SOA ns. host. ( 2025060103 3600 900 1209600 300 )\n", 2025060103u, ""},
        {"; SOA in a comment 99\n@ 3600 IN SOA ns. host. (\n  42 ; serial\n 1 2 3 4 )\n", 42u, ""},
        {"x TXT \"SOA ns. host. 5\"\n@ SOA ns. host. 6 1 2 3 4\n", 6u, ""},
        {"# comment\n$SOA 3600 ns. host. 77 1 2 3 4\n", 77u, ""},
        {"@ IN NS ns.\n", std::nullopt, "no SOA record"},
        {"@ IN SOA ns. host.", std::nullopt, "SOA record without a serial"},
        {"@ IN SOA ns. host. 5000000000 1 2 3 4", std::nullopt,
         "SOA serial \"5000000000\" is not a number from 0 to 4294967295"},
        {"@ IN SOA ns. host. 12x 1 2 3 4", std::nullopt,
         "SOA serial \"12x\" is not a number from 0 to 4294967295"},
    };
    for (const auto& c : cases) {
        std::string error;
        INFO(c.text);
        CHECK(dns::read_soa_serial(c.text, error) == c.want);
        CHECK(error == c.error);
    }
}

TEST_CASE("zone text helpers: TXT quoting, mailboxes, names", "[registry][zone_file]") {
    CHECK(dns::quote_txt("plain text") == "\"plain text\"");
    CHECK(dns::quote_txt("a\"b\\c") == "\"a\\\"b\\\\c\"");
    CHECK(dns::quote_txt(std::string("\x01\xff", 2)) == "\"\\001\\255\"");
    CHECK(dns::soa_mailbox("hostmaster@Example.ORG.") == "hostmaster.example.org");
    CHECK(dns::soa_mailbox("first.last@example.org") == "first\\.last.example.org");
    CHECK(dns::soa_mailbox("nobody") == "");
    CHECK(dns::soa_mailbox("a b@example.org") == "");
    CHECK(dns::canonical_name("Reg.Example.") == "reg.example");
    CHECK(dns::check_domain(std::string(254, 'a')).find("longer than 253") != std::string::npos);
    CHECK(dns::check_domain(std::string(64, 'a') + ".x").find("longer than 63") != std::string::npos);
    CHECK(dns::check_domain("a b.example").find("' ' is not") != std::string::npos);
    CHECK(dns::check_domain("_dmarc.example").empty());
}

TEST_CASE("metadata read back from TXT", "[registry][zone_writer]") {
    auto r = sample()[2];
    auto m = registry::parse_metadata(registry::metadata_txt(r));
    CHECK(m.registered == "2024-01-02");
    CHECK(m.updated == "2024-05-01");
    CHECK(m.contact == "H-1");
    auto odd =
        registry::parse_metadata("  contact=A$B registered=2024-13-01 updated=2024-02-03 extra words=x");
    CHECK(odd.registered == "");
    CHECK(odd.updated == "2024-02-03");
    CHECK(odd.contact == "");
    auto other = registry::parse_metadata("registered 2025-04-01; contact noc@example.net");
    CHECK(other.registered.empty());
    CHECK(other.contact.empty());
}
