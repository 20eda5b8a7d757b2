// bulk: the DNS-published opt-out list -- base32 and label vectors computed
// outside this code, the keys asked and their order, the zone lookup's
// verdicts and errors, the builder, and the property that a zone built from a
// table answers what the table answers.
#include <catch2/catch.hpp>

#include <sstream>

#include "bulk/optout.hpp"
#include "dns/memory_resolver.hpp"

using namespace regmilter;
using bulk::ZoneStatus;
using dns::DnsStatus;
using dns::RrType;

TEST_CASE("base32: RFC 4648 section 10 vectors, lower case, no padding", "[bulk][optout]") {
    // RFC 4648 §10: BASE32("foobar") = "MZXW6YTBOI======" (and its prefixes).
    struct Case {
        const char* in;
        const char* want;
    };
    const Case cases[] = {{"", ""},
                          {"f", "my"},
                          {"fo", "mzxq"},
                          {"foo", "mzxw6"},
                          {"foob", "mzxw6yq"},
                          {"fooba", "mzxw6ytb"},
                          {"foobar", "mzxw6ytboi"}};
    for (const auto& c : cases) {
        std::string in = c.in;
        CHECK(bulk::base32(reinterpret_cast<const uint8_t*>(in.data()), in.size()) == c.want);
    }
}

TEST_CASE("labels: SHA-256 then base32, known vectors", "[bulk][optout]") {
    // Each computed with coreutils, e.g.
    //   h=$(printf %s 'bob@example.org' | sha256sum | cut -c1-64)
    //   printf "$(echo $h | sed 's/../\\x&/g')" | base32 -w0 | tr -d = | tr A-Z a-z
    // bob@example.org   sha256 686b5e4cf4f963adf8f51468a48028ef8d15bd02fa335f821279a3d1678c9615
    // @example.org      sha256 64372896648bdd5fc56e0056b46d35c9b43502561c332bf7223bd70b245777f4
    // Bob@example.org   sha256 4896ef3269ddaafd12f0d74cb6eab266926ff98af9cf88d95d576a3f61b48995
    // ""                sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
    // @example.net      base32 x5apwx2dxx4fs4fouuxs225pywinvztuhuxnospj2zhvrqugg35q
    CHECK(bulk::optout_label("bob@example.org") == "nbvv4thu7fr236hvcrukjabi56grlpic7izv7aqspgr5cz4msykq");
    CHECK(bulk::optout_label("@example.org") == "mq3srfterpov7rloablli3jvzg2dkaswdqzsx5zchplqwjcxo72a");
    CHECK(bulk::optout_label("Bob@example.org") == "jclo6mtj3wvp2exq25gln2vsm2jg76mk7hhyrwk5k5vd6ynurgkq");
    CHECK(bulk::optout_label("bob+news@example.org") ==
          "k2qg6zvlvyamv6l6uho5zvlwcrevtzy3rbgmpmd7ab6iuaox3ria");
    CHECK(bulk::optout_label("") == "4oymiquy7qobjgx36tejs35zeqt24qpemsnzgtfeswmrw6csxbkq");
    CHECK(bulk::optout_label("anything").size() == 52);
}

TEST_CASE("keys: the contract key and the lookup order", "[bulk][optout]") {
    struct Case {
        const char* rcpt;
        const char* delim;
        const char* key;
        std::vector<std::string> keys;
    };
    const Case cases[] = {
        {"bob@example.org", "+", "bob@example.org", {"bob@example.org", "@example.org"}},
        {"<Bob@Example.ORG>", "+", "Bob@example.org", {"Bob@example.org", "bob@example.org", "@example.org"}},
        {"bob+news@example.org",
         "+",
         "bob@example.org",
         {"bob+news@example.org", "bob@example.org", "@example.org"}},
        {"Bob+News@EXAMPLE.org",
         "+-",
         "Bob@example.org",
         {"Bob+News@example.org", "bob+news@example.org", "Bob@example.org", "bob@example.org",
          "@example.org"}},
        {"bob-x+y@example.org",
         "+-",
         "bob@example.org",
         {"bob-x+y@example.org", "bob@example.org", "@example.org"}},
        {"bob+news@example.org", "", "bob+news@example.org", {"bob+news@example.org", "@example.org"}},
        {"+bob@example.org",
         "+",
         "+bob@example.org",
         {"+bob@example.org", "@example.org"}},  // as bulk::lookup
        {"\"Bob Smith\"@example.org",
         "+",
         "Bob Smith@example.org",
         {"Bob Smith@example.org", "bob smith@example.org", "@example.org"}},
        {"@relay:bob@example.org", "+", "bob@example.org", {"bob@example.org", "@example.org"}},
        {"no-at-sign", "+", "", {}},
        {"", "+", "", {}},
    };
    for (const auto& c : cases) {
        INFO(c.rcpt);
        CHECK(bulk::optout_key(c.rcpt, c.delim) == c.key);
        CHECK(bulk::optout_keys(c.rcpt, c.delim) == c.keys);
    }
}

namespace {

std::string q(const char* key) {
    return bulk::optout_label(key) + ".optout.test";
}

}  // namespace

TEST_CASE("zone lookup: verdicts, order, errors", "[bulk][optout]") {
    dns::MemoryResolver m;
    m.add(q("out@example.org"), RrType::a, "127.0.0.2", 600);
    m.add(q("in@example.org"), RrType::a, "127.0.0.3");
    m.add(q("@optedout.example"), RrType::a, "127.0.0.2");
    m.add(q("both@example.org"), RrType::a, "127.0.0.3");
    m.add(q("both@example.org"), RrType::a, "127.0.0.2");
    m.add(q("odd@example.org"), RrType::a, "127.0.0.9");
    m.add(q("far@example.org"), RrType::a, "192.0.2.1");
    m.add_failure(q("slow@example.org"), DnsStatus::timeout);
    m.add_failure(q("@broken.example"), DnsStatus::servfail);
    m.add(q("bob@example.org"), RrType::a, "127.0.0.2");
    m.add(q("bob+keep@example.org"), RrType::a, "127.0.0.3");
    m.add_empty(q("txtonly@example.org"));
    m.set_strict(false);
    struct Case {
        const char* rcpt;
        ZoneStatus want;
        const char* key;
        const char* code_or_error;
    };
    const Case cases[] = {
        {"out@example.org", ZoneStatus::opted_out, "out@example.org", "127.0.0.2"},
        {"OUT@Example.Org", ZoneStatus::opted_out, "out@example.org", "127.0.0.2"},
        {"out+x@example.org", ZoneStatus::opted_out, "out@example.org", "127.0.0.2"},
        {"in@example.org", ZoneStatus::opted_in, "in@example.org", "127.0.0.3"},
        {"anyone@OptedOut.example", ZoneStatus::opted_out, "@optedout.example", "127.0.0.2"},
        {"both@example.org", ZoneStatus::opted_out, "both@example.org", "127.0.0.2"},
        {"bob+keep@example.org", ZoneStatus::opted_in, "bob+keep@example.org", "127.0.0.3"},  // exact first
        {"bob+other@example.org", ZoneStatus::opted_out, "bob@example.org", "127.0.0.2"},
        {"nobody@example.org", ZoneStatus::none, "", ""},
        {"txtonly@example.org", ZoneStatus::none, "", ""},
        {"odd@example.org", ZoneStatus::error, "odd@example.org",
         "answer 127.0.0.9 is not 127.0.0.2 (opted out) or 127.0.0.3 (opted in)"},
        {"far@example.org", ZoneStatus::error, "far@example.org",
         "answer 192.0.2.1 is not 127.0.0.2 (opted out) or 127.0.0.3 (opted in)"},
        {"slow@example.org", ZoneStatus::error, "slow@example.org", "timeout (fixture: timeout)"},
        // An error at @domain after the address was not found: error, never none.
        {"x@broken.example", ZoneStatus::error, "@broken.example", "servfail (fixture: servfail)"},
        {"not an address", ZoneStatus::none, "", ""},
    };
    for (const auto& c : cases) {
        INFO(c.rcpt);
        auto z = bulk::lookup_zone(m, c.rcpt, "optout.test", "+", dns::no_deadline());
        CHECK(z.status == c.want);
        CHECK(z.key == c.key);
        CHECK((c.want == ZoneStatus::error ? z.error : z.code) == c.code_or_error);
        if (c.want != ZoneStatus::none) CHECK(z.zone == "optout.test");
    }
    auto out = bulk::lookup_zone(m, "out@example.org", "optout.test", "+", dns::no_deadline());
    CHECK(out.ttl == 600);
    CHECK(out.query == q("out@example.org"));
    // A timeout at the first key ends the lookup: the @domain entry is not asked.
    m.clear_log();
    bulk::lookup_zone(m, "slow@example.org", "optout.test", "+", dns::no_deadline());
    CHECK(m.log().size() == 1);
}

TEST_CASE("zone lookup: several zones, first answer decides", "[bulk][optout]") {
    dns::MemoryResolver m;
    m.add(bulk::optout_label("a@example.org") + ".one.test", RrType::a, "127.0.0.3");
    m.add(bulk::optout_label("a@example.org") + ".two.test", RrType::a, "127.0.0.2");
    m.add(bulk::optout_label("b@example.org") + ".two.test", RrType::a, "127.0.0.2");
    m.add_failure(bulk::optout_label("c@example.org") + ".one.test", DnsStatus::servfail);
    m.add(bulk::optout_label("c@example.org") + ".two.test", RrType::a, "127.0.0.2");
    m.set_strict(false);
    const std::vector<std::string> zones = {"one.test", "two.test"};
    auto a = bulk::lookup_zones(m, "a@example.org", zones, "+", dns::no_deadline());
    CHECK(a.status == ZoneStatus::opted_in);
    CHECK(a.zone == "one.test");
    auto b = bulk::lookup_zones(m, "b@example.org", zones, "+", dns::no_deadline());
    CHECK(b.status == ZoneStatus::opted_out);
    CHECK(b.zone == "two.test");
    auto c = bulk::lookup_zones(m, "c@example.org", zones, "+", dns::no_deadline());
    CHECK(c.status == ZoneStatus::error);
    CHECK(c.zone == "one.test");
    CHECK(bulk::lookup_zones(m, "d@example.org", zones, "+", dns::no_deadline()).status == ZoneStatus::none);
    CHECK(bulk::to_string(ZoneStatus::opted_out) == std::string("opted-out"));
}

TEST_CASE("table entries keep the local part as written", "[bulk][optout]") {
    auto e = bulk::read_entries(
        "Bob@Example.ORG reject\n"
        "@Example.NET accept  # comment\n"
        "\"Quoted.Name\"@example.org reject\n",
        "t");
    REQUIRE(e.problems.empty());
    REQUIRE(e.entries.size() == 3);
    CHECK(e.entries[0].key == "bob@example.org");
    CHECK(e.entries[0].written == "Bob@example.org");
    CHECK(e.entries[0].choice == bulk::Choice::reject);
    CHECK(e.entries[0].line == 1);
    CHECK(e.entries[1].key == "@example.net");
    CHECK(e.entries[1].written == "@example.net");
    CHECK(e.entries[2].written == "Quoted.Name@example.org");
    auto bad = bulk::read_entries("a@b.org reject\nA@B.ORG accept\nnonsense\n", "t");
    CHECK(bad.entries.empty());
    REQUIRE(bad.problems.size() ==
            1);  // Table::parse reports syntax first; duplicates once the syntax is clean
    CHECK(bad.problems[0].str() == "t:3: \"nonsense\": want KEY accept|reject");
    auto dup = bulk::read_entries("a@b.org reject\nA@B.ORG accept\n", "t");
    REQUIRE(dup.problems.size() == 1);
    CHECK(dup.problems[0].str() == "t:2: duplicate key \"a@b.org\", first at line 1");
}

TEST_CASE("opt-out zone and rbldnsd dataset from a table", "[bulk][optout]") {
    auto e = bulk::read_entries("Bob@Example.org reject\n@example.net accept\n", "t");
    REQUIRE(e.problems.empty());
    dns::ZoneHead head;
    head.zone = "optout.test";
    head.serial = 7;
    std::ostringstream z, r;
    bulk::write_optout_zone(z, e.entries, head, {"c"});
    bulk::write_optout_rbldnsd(r, e.entries, head, {"c"});
    // Sorted labels: Bob@example.org (jclo...), bob@example.org (nbvv...), @example.net (x5ap...).
    CHECK(z.str() ==
          "; c\n$ORIGIN optout.test.\n$TTL 3600\n"
          "@\tIN\tSOA\tlocalhost. hostmaster.optout.test. ( 7 3600 900 1209600 300 )\n"
          "\tIN\tNS\tlocalhost.\n"
          "jclo6mtj3wvp2exq25gln2vsm2jg76mk7hhyrwk5k5vd6ynurgkq\tIN\tA\t127.0.0.2\n"
          "nbvv4thu7fr236hvcrukjabi56grlpic7izv7aqspgr5cz4msykq\tIN\tA\t127.0.0.2\n"
          "x5apwx2dxx4fs4fouuxs225pywinvztuhuxnospj2zhvrqugg35q\tIN\tA\t127.0.0.3\n");
    CHECK(r.str() ==
          "# c\n$SOA 3600 localhost. hostmaster.optout.test. 7 3600 900 1209600 300\n$NS 3600 localhost.\n"
          "$TTL 3600\n"
          ":127.0.0.2:\n"
          "jclo6mtj3wvp2exq25gln2vsm2jg76mk7hhyrwk5k5vd6ynurgkq\n"
          "nbvv4thu7fr236hvcrukjabi56grlpic7izv7aqspgr5cz4msykq\n"
          ":127.0.0.3:\n"
          "x5apwx2dxx4fs4fouuxs225pywinvztuhuxnospj2zhvrqugg35q\n");
    // No address is published.
    CHECK(z.str().find("example") == std::string::npos);
    CHECK(r.str().find("example") == std::string::npos);
}

TEST_CASE("a zone built from a table answers what the table answers", "[bulk][optout]") {
    const std::string table_text =
        "alice@example.org reject\n"
        "Bob@Example.org reject\n"
        "carol+news@example.org reject\n"
        "carol@example.org accept\n"
        "@optout.example reject\n"
        "dave@optout.example accept\n"
        "@OptIn.Example accept\n";
    auto table = bulk::Table::parse(table_text, "t");
    REQUIRE(table.value);
    auto entries = bulk::read_entries(table_text, "t");
    REQUIRE(entries.problems.empty());
    dns::MemoryResolver m;
    for (const auto& p : bulk::published_labels(entries.entries))
        m.add(p.label + ".optout.test", RrType::a, p.code);
    m.set_strict(false);
    bulk::Settings cfg;  // recipient_delimiter "+", default accept
    const char* rcpts[] = {"alice@example.org",       "ALICE@EXAMPLE.ORG",      "alice+x@example.org",
                           "bob@example.org",         "Bob@example.org",        "BOB+y@example.org",
                           "carol@example.org",       "carol+news@example.org", "Carol+News@Example.org",
                           "carol+other@example.org", "dave@optout.example",    "dave+x@optout.example",
                           "erin@optout.example",     "Erin@OPTOUT.example",    "frank@optin.example",
                           "gina@example.org",        "<alice@example.org>",    "nobody@elsewhere.example"};
    for (const char* rcpt : rcpts) {
        INFO(rcpt);
        bulk::Lookup t = bulk::lookup(table.value.get(), rcpt, cfg);
        bulk::ZoneAnswer z =
            bulk::lookup_zone(m, rcpt, "optout.test", cfg.recipient_delimiter, dns::no_deadline());
        if (t.key == "default") {
            CHECK(z.status == ZoneStatus::none);
        } else {
            CHECK(z.status ==
                  (t.choice == bulk::Choice::reject ? ZoneStatus::opted_out : ZoneStatus::opted_in));
        }
    }
}
