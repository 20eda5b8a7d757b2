// bulk: address normalization, the table format and its errors, lookup
// order, reload on change (a broken file keeps the old table), signals.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "bulk/bulk.hpp"

using namespace regmilter;
using config::BulkChoice;

namespace {

std::shared_ptr<const bulk::Table> table_of(const std::string& text) {
    auto l = bulk::Table::parse(text, "t.table");
    INFO((l.errors.empty() ? std::string() : l.errors[0].str()));
    REQUIRE(l.table);
    return l.table;
}

std::string errors_of(const std::string& text) {
    auto l = bulk::Table::parse(text, "t.table");
    std::string out;
    for (const auto& e : l.errors) out += e.str() + "\n";
    return out;
}

// A temporary file removed at scope exit.
struct TempFile {
    std::string path;
    TempFile() {
        char tmpl[] = "/tmp/regmilter-bulk-XXXXXX";
        int fd = mkstemp(tmpl);
        REQUIRE(fd >= 0);
        close(fd);
        path = tmpl;
    }
    ~TempFile() { std::remove(path.c_str()); }
    void write(const std::string& text) const {
        // A new inode each time (rename over), as editors and installers do.
        std::string tmp = path + ".new";
        {
            std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
            out << text;
        }
        REQUIRE(std::rename(tmp.c_str(), path.c_str()) == 0);
    }
};

}  // namespace

TEST_CASE("normalize: brackets, case, quotes, source routes, garbage", "[bulk]") {
    struct Case {
        const char* in;
        const char* want;
    };
    const Case cases[] = {
        {"Alice@Example.ORG", "alice@example.org"},
        {"<bob@example.org>", "bob@example.org"},
        {" <bob@example.org> ", "bob@example.org"},
        {"@relay1.example,@relay2.example:carol@example.org", "carol@example.org"},
        {"<@relay.example:carol@example.org>", "carol@example.org"},
        {"\"dave smith\"@example.org", "dave smith@example.org"},
        {"\"a\\\"b\"@example.org", "a\"b@example.org"},
        {"\"unterminated@example.org", ""},
        {"\"x\"y@example.org", ""},
        {"@no-colon.example", ""},
        {"user@", ""},
        {"postmaster", "postmaster"},
        {"a\nb@example.org", ""},
        {"a@exa mple.org", ""},
        {"", ""},
    };
    for (const auto& c : cases) {
        std::string got = bulk::normalize(c.in);
        INFO("\"" << c.in << "\": got \"" << got << "\", want \"" << c.want << "\"");
        CHECK(got == c.want);
    }
    CHECK(bulk::normalize(std::string(5000, 'a') + "@example.org") == "");
}

TEST_CASE("table format: keys, choices, comments", "[bulk]") {
    auto t = table_of(
        "# opt-outs\n"
        "Alice@Example.org   accept\n"
        "\n"
        "@lists.example.org\treject   # whole domain\n"
        "bob@example.org reject\n"
        "carol#1@example.org accept\n");
    CHECK(t->size() == 4);
    CHECK(t->find("alice@example.org") == BulkChoice::accept);
    CHECK(t->find("@lists.example.org") == BulkChoice::reject);
    CHECK(t->find("carol#1@example.org") == BulkChoice::accept);
    CHECK_FALSE(t->find("nobody@example.org"));
}

TEST_CASE("table errors name file and line", "[bulk]") {
    struct Case {
        const char* name;
        const char* text;
        const char* want;
    };
    const Case cases[] = {
        {"missing choice", "a@example.org\n", "t.table:1: \"a@example.org\": want KEY accept|reject\n"},
        {"extra words", "a@example.org accept now\n",
         "t.table:1: \"a@example.org accept now\": want KEY accept|reject\n"},
        {"bad choice", "\n\na@example.org maybe\n", "t.table:3: \"maybe\" is not accept or reject\n"},
        {"not an address", "alice accept\n", "t.table:1: \"alice\" is not user@domain or @domain\n"},
        {"empty domain", "alice@ accept\n", "t.table:1: \"alice@\" is not user@domain or @domain\n"},
        {"duplicate", "a@example.org accept\nA@EXAMPLE.ORG reject\n",
         "t.table:2: duplicate key \"a@example.org\", first at line 1\n"},
        {"two errors", "x accept\ny@z.example nope\n",
         "t.table:1: \"x\" is not user@domain or @domain\nt.table:2: \"nope\" is not accept or reject\n"},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        CHECK(errors_of(c.text) == c.want);
        CHECK_FALSE(bulk::Table::parse(c.text, "t.table").table);
    }
}

TEST_CASE("lookup order: address, without +detail, @domain, default", "[bulk]") {
    auto t = table_of(
        "alice@example.org reject\n"
        "alice+news@example.org accept\n"
        "bob@example.org accept\n"
        "@example.org reject\n"
        "@other.example accept\n");
    config::Bulk cfg;
    cfg.default_choice = BulkChoice::accept;
    cfg.recipient_delimiter = "+-";
    struct Case {
        const char* rcpt;
        BulkChoice want;
        const char* key;
    };
    const Case cases[] = {
        {"alice@example.org", BulkChoice::reject, "alice@example.org"},
        {"<Alice@EXAMPLE.org>", BulkChoice::reject, "alice@example.org"},
        {"alice+news@example.org", BulkChoice::accept, "alice+news@example.org"},
        {"alice+other@example.org", BulkChoice::reject, "alice@example.org"},
        {"bob-x@example.org", BulkChoice::accept, "bob@example.org"},
        {"carol@example.org", BulkChoice::reject, "@example.org"},
        {"carol@other.example", BulkChoice::accept, "@other.example"},
        {"dave@unknown.example", BulkChoice::accept, "default"},
        {"+x@unknown.example", BulkChoice::accept, "default"},
        {"garbage", BulkChoice::accept, "default"},
        {"\"alice\"@example.org", BulkChoice::reject, "alice@example.org"},
        {"@relay.example:alice@example.org", BulkChoice::reject, "alice@example.org"},
    };
    for (const auto& c : cases) {
        auto got = bulk::lookup(t.get(), c.rcpt, cfg);
        INFO(c.rcpt << ": got " << config::to_string(got.choice) << " via " << got.key << ", want "
                    << config::to_string(c.want) << " via " << c.key);
        CHECK(got.choice == c.want);
        CHECK(got.key == c.key);
    }
    // No delimiter configured: no folding.
    cfg.recipient_delimiter = "";
    CHECK(bulk::lookup(t.get(), "bob+x@example.org", cfg).key == "@example.org");
    // No table: everyone gets the default.
    cfg.default_choice = BulkChoice::reject;
    CHECK(bulk::lookup(nullptr, "alice@example.org", cfg).choice == BulkChoice::reject);
    CHECK(bulk::lookup(nullptr, "alice@example.org", cfg).key == "default");
}

TEST_CASE("reload when the file changes; a broken file keeps the old table", "[bulk]") {
    TempFile f;
    f.write("alice@example.org reject\n");
    bulk::TableFile tf(f.path);
    CHECK(tf.refresh().empty());
    REQUIRE(tf.current());
    CHECK(tf.current()->find("alice@example.org") == BulkChoice::reject);

    // Unchanged: nothing is read again, same table object.
    auto before = tf.current();
    CHECK(tf.refresh().empty());
    CHECK(tf.current() == before);

    // Changed: the new table replaces the old one.
    f.write("alice@example.org accept\nbob@example.org reject\n");
    CHECK(tf.refresh().empty());
    CHECK(tf.current()->find("alice@example.org") == BulkChoice::accept);
    CHECK(tf.current()->size() == 2);

    // Broken: errors with FILE:LINE, the old table stays.
    f.write("alice@example.org accept\nthis line is wrong\n");
    auto errs = tf.refresh();
    REQUIRE(errs.size() == 1);
    CHECK(errs[0].str() == f.path + ":2: \"this line is wrong\": want KEY accept|reject");
    REQUIRE(tf.current());
    CHECK(tf.current()->size() == 2);
    // ... and is not reported again until it changes.
    CHECK(tf.refresh().empty());

    // Removed: an error, the old table stays.
    std::remove(f.path.c_str());
    auto gone = tf.refresh();
    REQUIRE(gone.size() == 1);
    CHECK(gone[0].str() == f.path + ": cannot read: No such file or directory");
    auto dir = bulk::Table::load("/tmp");  // a directory is an error, not an empty table
    REQUIRE(dir.errors.size() == 1);
    CHECK(dir.errors[0].str() == "/tmp: cannot read: Is a directory");
    CHECK_FALSE(dir.table);
    CHECK(tf.current()->size() == 2);

    // Fixed: loaded again.
    f.write("carol@example.org reject\n");
    CHECK(tf.refresh().empty());
    CHECK(tf.current()->size() == 1);
}

TEST_CASE("a broken table at start leaves no table and says why", "[bulk]") {
    TempFile f;
    f.write("nonsense\n");
    bulk::TableFile tf(f.path);
    auto errs = tf.refresh();
    REQUIRE(errs.size() == 1);
    CHECK_FALSE(tf.current());
}

TEST_CASE("sender signals: domains with subdomains, networks", "[bulk]") {
    config::Bulk cfg;
    cfg.sender_domains = {"news.example"};
    cfg.sender_networks.add(*net::Cidr::parse("198.51.100.0/24").cidr);
    struct Case {
        const char* from;
        const char* ip;
        std::vector<std::string> want;
    };
    const Case cases[] = {
        {"promo@news.example", "192.0.2.1", {"sender:domain:news.example"}},
        {"promo@Mail.News.Example", "192.0.2.1", {"sender:domain:news.example"}},
        {"promo@fakenews.example", "192.0.2.1", {}},
        {"promo@news.example.org", "192.0.2.1", {}},
        {"x@other.example", "198.51.100.7", {"sender:network:198.51.100.0/24"}},
        {"", "192.0.2.1", {}},
    };
    for (const auto& c : cases) {
        INFO(c.from << " " << c.ip);
        CHECK(bulk::sender_signals(c.from, net::Address::parse(c.ip), cfg).signals == c.want);
    }
    CHECK(bulk::sender_signals("a@news.example", std::nullopt, cfg).signals ==
          std::vector<std::string>{"sender:domain:news.example"});
}

TEST_CASE("header signals: Precedence, List-Id, List-Unsubscribe", "[bulk]") {
    config::Bulk cfg;
    struct Case {
        std::vector<bulk::HeaderField> h;
        std::vector<std::string> want;
    };
    const Case cases[] = {
        {{{"Precedence", "bulk"}}, {"header:precedence"}},
        {{{"precedence", " List "}}, {"header:precedence"}},
        {{{"Precedence", "junk; x"}}, {"header:precedence"}},
        {{{"Precedence", "first-class"}}, {}},
        {{{"Precedence", "bulky"}}, {}},
        {{{"List-Id", "<news.example.org>"}}, {"header:list-id"}},
        {{{"LIST-UNSUBSCRIBE", "<mailto:u@example.org>"}}, {"header:list-unsubscribe"}},
        {{{"Subject", "Precedence: bulk"}, {"X-List-Id", "x"}}, {}},
        {{{"List-Unsubscribe", "x"}, {"List-Id", "y"}, {"Precedence", "list"}},
         {"header:precedence", "header:list-id", "header:list-unsubscribe"}},
    };
    for (const auto& c : cases) {
        auto got = bulk::header_signals(c.h, cfg).signals;
        std::string g;
        for (auto& s : got) g += s + " ";
        INFO("got " << g);
        CHECK(got == c.want);
    }
    cfg.header_signals = false;
    CHECK_FALSE(bulk::header_signals({{"Precedence", "bulk"}}, cfg).any());
}

TEST_CASE("10,000 List-Id headers: one signal, defined result", "[bulk]") {
    config::Bulk cfg;
    std::vector<bulk::HeaderField> h(10000, bulk::HeaderField{"List-Id", std::string(100, 'x')});
    h.push_back({"Precedence", std::string(100000, ' ') + "bulk"});
    auto got = bulk::header_signals(h, cfg).signals;
    CHECK(got == std::vector<std::string>{"header:precedence", "header:list-id"});
}
