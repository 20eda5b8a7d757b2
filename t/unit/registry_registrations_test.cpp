// registry: the registrations file -- every field rule, every error as
// FILE:LINE in one pass, duplicates, and the line-by-line report.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "registry/registrations.hpp"

using namespace regmilter;
using registry::ServerClass;

namespace {

const util::Day today = *util::parse_date("2025-06-01");

std::string problems_of(const std::string& text) {
    auto p = registry::parse_registrations(text, "regs", today);
    std::string out;
    for (const auto& e : p.problems) out += e.str() + "\n";
    return out;
}

const std::string good = " contact=H-1 email=noc@example.org since=2024-01-02";

}  // namespace

TEST_CASE("registrations: a full line and defaults", "[registry][registrations]") {
    auto p = registry::parse_registrations(
        "# servers\n"
        "\n"
        "192.0.2.36 Mail.Example.ORG. contact=H-1 email=noc@example.org phone=+1-555-0100 since=2024-01-02 "
        "updated=2024-05-01 class=bulk   # trailing comment\n"
        "2001:db8::7 mx.example.org class=regular since=2024-02-03 email=a.b@example.org contact=X\r\n"
        "::ffff:198.51.100.7 mx2.example.org" +
            good + "\n",
        "regs", today);
    INFO((p.problems.empty() ? std::string() : p.problems.front().str()));
    REQUIRE(p.problems.empty());
    REQUIRE(p.entries.size() == 3);
    const auto& a = p.entries[0];
    CHECK(a.line == 3);
    CHECK(a.ip.str() == "192.0.2.36");
    CHECK(a.hostname == "mail.example.org");
    CHECK(a.contact == "H-1");
    CHECK(a.email == "noc@example.org");
    CHECK(a.phone == "+1-555-0100");
    CHECK(util::format_date(a.since) == "2024-01-02");
    CHECK(util::format_date(a.updated) == "2024-05-01");
    CHECK(a.server_class == ServerClass::bulk);
    const auto& b = p.entries[1];
    CHECK(b.line == 4);
    CHECK(b.ip.str() == "2001:db8::7");
    CHECK(b.server_class == ServerClass::regular);
    CHECK(b.updated == b.since);                     // updated defaults to since
    CHECK(p.entries[2].ip.str() == "198.51.100.7");  // IPv4-mapped is IPv4
    CHECK(p.entries[2].ip.is_v4());
}

TEST_CASE("registrations: each kind of error, with its line", "[registry][registrations]") {
    const std::string long_name = std::string(62, 'a') + "." + std::string(62, 'b') + "." +
                                  std::string(62, 'c') + "." + std::string(62, 'd') +
                                  ".example";  // 4 * 63 + 7 = 259 octets
    struct Case {
        std::string line;
        std::string want;  // every problem of the line, "regs:1: " prefix left out
    };
    const Case cases[] = {
        {"192.0.2.300 mail.example.org" + good, "\"192.0.2.300\" is not an IPv4 or IPv6 address"},
        {"192.0.2.0/24 mail.example.org" + good,
         "\"192.0.2.0/24\" is a network; a registration is one host address"},
        {"fe80::1%eth0 mail.example.org" + good,
         "\"fe80::1%eth0\" has a zone id (%eth0); a registered server has one global address, without a zone "
         "id"},
        {"contact=H 192.0.2.1",
         "the line starts with \"contact=H\", not an IP address (want IP HOSTNAME key=value...)|"
         "HOSTNAME \"192.0.2.1\" ends in an all-numeric label (an address, not a name)|"
         "no contact= (a contact handle is required)|no email= (a contact email address is required)|"
         "no since= (the registration date is required)"},
        {"192.0.2.1" + good, "no HOSTNAME after the address (want IP HOSTNAME key=value...)"},
        {"192.0.2.1 localhost" + good, "HOSTNAME \"localhost\" has no domain (one label; want at least two)"},
        {"192.0.2.1 mail..example.org" + good, "HOSTNAME \"mail..example.org\" has an empty label"},
        {"192.0.2.1 mail_1.example.org" + good,
         "HOSTNAME \"mail_1.example.org\": '_' is not a letter, digit or '-'"},
        {"192.0.2.1 -mail.example.org" + good,
         "HOSTNAME \"-mail.example.org\" has a label that starts or ends with '-'"},
        {"192.0.2.1 mail.192" + good,
         "HOSTNAME \"mail.192\" ends in an all-numeric label (an address, not a name)"},
        {"192.0.2.1 " + std::string(64, 'x') + ".example.org" + good,
         "HOSTNAME \"" + std::string(64, 'x').substr(0, 80) +
             ".example.org\" has a label longer than 63 octets"},
        {"192.0.2.1 " + long_name + good,
         "HOSTNAME \"" + long_name.substr(0, 80) + "...\" is longer than 253 octets"},
        {"192.0.2.1 mail.example.org email=noc@example.org since=2024-01-02",
         "no contact= (a contact handle is required)"},
        {"192.0.2.1 mail.example.org contact=H since=2024-01-02",
         "no email= (a contact email address is required)"},
        {"192.0.2.1 mail.example.org contact=H email=noc@example.org",
         "no since= (the registration date is required)"},
        {"192.0.2.1 mail.example.org contact=-H email=noc@example.org since=2024-01-02",
         "contact \"-H\" does not start with a letter or digit"},
        {"192.0.2.1 mail.example.org contact=H$1 email=noc@example.org since=2024-01-02",
         "contact \"H$1\": '$' is not a letter, digit, '.', '_' or '-'"},
        {"192.0.2.1 mail.example.org contact=H email=noc since=2024-01-02", "email \"noc\" has no '@'"},
        {"192.0.2.1 mail.example.org contact=H email=no..c@example.org since=2024-01-02",
         "email \"no..c@example.org\": misplaced '.' in the local part"},
        {"192.0.2.1 mail.example.org contact=H email=noc@localhost since=2024-01-02",
         "email \"noc@localhost\": domain \"localhost\" has no domain (one label; want at least two)"},
        {"192.0.2.1 mail.example.org contact=H email=n(c@example.org since=2024-01-02",
         "email \"n(c@example.org\": '(' is not allowed in a local part"},
        {"192.0.2.1 mail.example.org" + good + " phone=12", "phone \"12\" has fewer than 3 digits"},
        {"192.0.2.1 mail.example.org" + good + " phone=555x1234",
         "phone \"555x1234\": 'x' is not a digit or + - . ( ) /"},
        {"192.0.2.1 mail.example.org contact=H email=noc@example.org since=2024-02-30",
         "since \"2024-02-30\" is not a YYYY-MM-DD date"},
        {"192.0.2.1 mail.example.org contact=H email=noc@example.org since=2025-06-02",
         "since 2025-06-02 is in the future (today is 2025-06-01)"},
        {"192.0.2.1 mail.example.org" + good + " updated=2023-12-31",
         "updated 2023-12-31 is before since 2024-01-02"},
        {"192.0.2.1 mail.example.org" + good + " class=huge", "class \"huge\" is not regular or bulk"},
        {"192.0.2.1 mail.example.org" + good + " colour=red",
         "unknown key \"colour\" (want contact, email, phone, since, updated, class)"},
        {"192.0.2.1 mail.example.org" + good + " contact=H-2", "contact= given twice"},
        {"192.0.2.1 mail.example.org" + good + " phone=", "phone= has an empty value"},
        {"192.0.2.1 mail.example.org" + good + " loose", "\"loose\" is not key=value"},
        {"192.0.2.1 mail.example.org" + good + " \x01", "control or non-ASCII characters in the line"},
        {"192.0.2.1 mail.example.org" + good + " caf\xc3\xa9", "control or non-ASCII characters in the line"},
        {"192.0.2.1 mail.example.org" + good + std::string(3000, ' ') + "x",
         "line longer than 2048 characters"},
    };
    for (const auto& c : cases) {
        std::string want;
        size_t start = 0;
        while (start <= c.want.size()) {
            size_t bar = c.want.find('|', start);
            if (bar == std::string::npos) bar = c.want.size();
            want += "regs:1: " + c.want.substr(start, bar - start) + "\n";
            start = bar + 1;
        }
        INFO("line: " << c.line.substr(0, 120));
        CHECK(problems_of(c.line + "\n") == want);
        CHECK(registry::parse_registrations(c.line, "regs", today).entries.empty());
    }
}

TEST_CASE("registrations: all errors in one pass, good lines kept, duplicates", "[registry][registrations]") {
    auto p = registry::parse_registrations("192.0.2.1 a.example.org" + good +
                                               "\n"
                                               "192.0.2.x b.example.org" +
                                               good +
                                               "\n"
                                               "# comment\n"
                                               "2001:db8::1 c.example.org" +
                                               good +
                                               "\n"
                                               "192.0.2.1 d.example.org" +
                                               good +
                                               "\n"
                                               "2001:DB8:0::1 e.example.org" +
                                               good + "\n" + "::ffff:192.0.2.1 f.example.org" + good + "\n",
                                           "regs", today);
    std::string got;
    for (const auto& e : p.problems) got += e.str() + "\n";
    CHECK(got ==
          "regs:2: \"192.0.2.x\" is not an IPv4 or IPv6 address\n"
          "regs:5: duplicate address 192.0.2.1 (first at line 1)\n"
          "regs:6: duplicate address 2001:db8::1 (first at line 4)\n"
          "regs:7: duplicate address 192.0.2.1 (first at line 1)\n");
    REQUIRE(p.entries.size() == 2);
    CHECK(p.entries[0].hostname == "a.example.org");
    CHECK(p.entries[1].hostname == "c.example.org");
    // Lines whose IP and HOSTNAME parsed are kept aside for the address checks.
    REQUIRE(p.broken.size() == 3);
    CHECK(p.broken[0].line == 5);
}

TEST_CASE("registrations: empty input and comments only", "[registry][registrations]") {
    CHECK(registry::parse_registrations("", "regs", today).entries.empty());
    auto p = registry::parse_registrations("# nothing\n   \n\t# more\n", "regs", today);
    CHECK(p.entries.empty());
    CHECK(p.problems.empty());
}

TEST_CASE("registrations: garbage never crashes; every problem names a real line",
          "[registry][registrations]") {
    // Fixed seed: the same bytes every run. Mutations of a good line (cut,
    // byte flips, repeated fields, separators) and random bytes.
    uint32_t seed = 12345;
    auto next = [&]() {
        seed = seed * 1664525u + 1013904223u;
        return seed >> 8;
    };
    const std::string base =
        "2001:db8::7 mail.example.org contact=H-1 email=noc@example.org phone=+1-555 "
        "since=2024-01-02 updated=2024-05-01 class=bulk";
    std::string text;
    int lines = 0;
    for (int i = 0; i < 3000; ++i) {
        std::string line = base;
        switch (next() % 5) {
            case 0:
                line = line.substr(0, next() % line.size());
                break;
            case 1:
                for (int k = 0; k < 4; ++k) line[next() % line.size()] = char(next() % 256);
                break;
            case 2:
                line += " " + line.substr(next() % line.size());
                break;
            case 3:
                for (char& c : line)
                    if (next() % 7 == 0) c = " .=@:-%/#\t"[next() % 10];
                break;
            default:
                line.clear();
                for (int k = int(next() % 300); k > 0; --k) line += char(next() % 256);
        }
        line.erase(std::remove(line.begin(), line.end(), '\n'), line.end());
        text += line + "\n";
        ++lines;
    }
    auto p = registry::parse_registrations(text, "fuzz", today);
    for (const auto& e : p.problems) {
        CHECK(e.line >= 1);
        CHECK(e.line <= lines);
        CHECK_FALSE(e.message.empty());
    }
    for (const auto& r : p.entries) {
        CHECK_FALSE(r.hostname.empty());
        CHECK(r.hostname.size() <= 253);
    }
    CHECK(p.entries.size() + p.problems.size() > 0);
}
