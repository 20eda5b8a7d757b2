// bulk: address normalization, the table format and its errors, lookup
// order, reload on change (a broken file keeps the old table), signals.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "bulk/bulk.hpp"

using namespace regmilter;
using bulk::Choice;

namespace {

std::shared_ptr<const bulk::Table> table_of(const std::string& text) {
    auto l = bulk::Table::parse(text, "t.table");
    INFO((l.problems.empty() ? std::string() : l.problems[0].str()));
    REQUIRE(l.value);
    return l.value;
}

std::string errors_of(const std::string& text) {
    auto l = bulk::Table::parse(text, "t.table");
    std::string out;
    for (const auto& e : l.problems) out += e.str() + "\n";
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
    CHECK(t->find("alice@example.org") == Choice::accept);
    CHECK(t->find("@lists.example.org") == Choice::reject);
    CHECK(t->find("carol#1@example.org") == Choice::accept);
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
        CHECK_FALSE(bulk::Table::parse(c.text, "t.table").value);
    }
}

TEST_CASE("lookup order: address, without +detail, @domain, default", "[bulk]") {
    auto t = table_of(
        "alice@example.org reject\n"
        "alice+news@example.org accept\n"
        "bob@example.org accept\n"
        "@example.org reject\n"
        "@other.example accept\n");
    bulk::Settings cfg;
    cfg.default_choice = Choice::accept;
    cfg.recipient_delimiter = "+-";
    struct Case {
        const char* rcpt;
        Choice want;
        const char* key;
    };
    const Case cases[] = {
        {"alice@example.org", Choice::reject, "alice@example.org"},
        {"<Alice@EXAMPLE.org>", Choice::reject, "alice@example.org"},
        {"alice+news@example.org", Choice::accept, "alice+news@example.org"},
        {"alice+other@example.org", Choice::reject, "alice@example.org"},
        {"bob-x@example.org", Choice::accept, "bob@example.org"},
        {"carol@example.org", Choice::reject, "@example.org"},
        {"carol@other.example", Choice::accept, "@other.example"},
        {"dave@unknown.example", Choice::accept, "default"},
        {"+x@unknown.example", Choice::accept, "default"},
        {"garbage", Choice::accept, "default"},
        {"\"alice\"@example.org", Choice::reject, "alice@example.org"},
        {"@relay.example:alice@example.org", Choice::reject, "alice@example.org"},
    };
    for (const auto& c : cases) {
        auto got = bulk::lookup(t.get(), c.rcpt, cfg);
        INFO(c.rcpt << ": got " << util::name_of(got.choice) << " via " << got.key << ", want "
                    << util::name_of(c.want) << " via " << c.key);
        CHECK(got.choice == c.want);
        CHECK(got.key == c.key);
    }
    // No delimiter configured: no folding.
    cfg.recipient_delimiter = "";
    CHECK(bulk::lookup(t.get(), "bob+x@example.org", cfg).key == "@example.org");
    // No table: everyone gets the default.
    cfg.default_choice = Choice::reject;
    CHECK(bulk::lookup(nullptr, "alice@example.org", cfg).choice == Choice::reject);
    CHECK(bulk::lookup(nullptr, "alice@example.org", cfg).key == "default");
}

TEST_CASE("reload once a change has settled; a broken file keeps the old table", "[bulk]") {
    using What = bulk::TableFile::Refresh::What;
    using std::chrono::seconds;
    TempFile f;
    f.write("alice@example.org reject\n");
    bulk::TableFile tf(f.path, seconds(2));
    CHECK(tf.load().what == What::loaded);
    REQUIRE(tf.current());
    CHECK(tf.current()->find("alice@example.org") == Choice::reject);
    bulk::TableFile::Clock::time_point t0{};

    // Unchanged: nothing is read again, same table object.
    auto before = tf.current();
    CHECK(tf.poll(t0).what == What::unchanged);
    CHECK(tf.current() == before);

    // Changed: read only after it stayed the same for 2 s.
    f.write("alice@example.org accept\nbob@example.org reject\n");
    CHECK(tf.poll(t0 + seconds(10)).what == What::waiting);
    CHECK(tf.poll(t0 + seconds(11)).what == What::waiting);
    CHECK(tf.current() == before);
    auto r = tf.poll(t0 + seconds(12));
    CHECK(r.what == What::loaded);
    REQUIRE(r.table);
    CHECK(tf.current()->find("alice@example.org") == Choice::accept);
    CHECK(tf.current()->size() == 2);

    // Still being written: every change restarts the wait.
    f.write("alice@example.org accept\nbob@example.org reject\ncarol");
    CHECK(tf.poll(t0 + seconds(20)).what == What::waiting);
    f.write("alice@example.org accept\nbob@example.org reject\ncarol@example.org reject\n");
    CHECK(tf.poll(t0 + seconds(21)).what == What::waiting);
    CHECK(tf.poll(t0 + seconds(22)).what == What::waiting);
    CHECK(tf.poll(t0 + seconds(23)).what == What::loaded);
    CHECK(tf.current()->size() == 3);

    // Broken: errors with FILE:LINE, the old table stays ...
    f.write("alice@example.org accept\nthis line is wrong\n");
    CHECK(tf.poll(t0 + seconds(30)).what == What::waiting);
    auto broken = tf.poll(t0 + seconds(32));
    CHECK(broken.what == What::refused);
    REQUIRE(broken.problems.size() == 1);
    CHECK(broken.problems[0].str() == f.path + ":2: \"this line is wrong\": want KEY accept|reject");
    REQUIRE(tf.current());
    CHECK(tf.current()->size() == 3);
    // ... and is not reported again until it changes.
    CHECK(tf.poll(t0 + seconds(40)).what == What::unchanged);

    // Removed: an error, the old table stays.
    std::remove(f.path.c_str());
    CHECK(tf.poll(t0 + seconds(50)).what == What::waiting);
    auto gone = tf.poll(t0 + seconds(52));
    REQUIRE(gone.problems.size() == 1);
    CHECK(gone.problems[0].str() == f.path + ": cannot read: No such file or directory");
    CHECK(tf.current()->size() == 3);

    // Fixed: loaded again.
    f.write("carol@example.org reject\n");
    CHECK(tf.poll(t0 + seconds(60)).what == What::waiting);
    CHECK(tf.poll(t0 + seconds(62)).what == What::loaded);
    CHECK(tf.current()->size() == 1);
}

TEST_CASE("a broken table at start leaves no table and says why", "[bulk]") {
    TempFile f;
    f.write("nonsense\n");
    bulk::TableFile tf(f.path, std::chrono::seconds(2));
    auto r = tf.load();
    CHECK(r.what == bulk::TableFile::Refresh::What::refused);
    REQUIRE(r.problems.size() == 1);
    CHECK_FALSE(tf.current());
}

TEST_CASE("sender signals: domains with subdomains, networks", "[bulk]") {
    bulk::Settings cfg;
    cfg.senders.domains = {"news.example"};
    cfg.senders.networks.add(*net::Cidr::parse("198.51.100.0/24").cidr);
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
    bulk::Settings cfg;
    cfg.header_signals = true;
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
    bulk::Settings cfg;
    cfg.header_signals = true;
    std::vector<bulk::HeaderField> h(10000, bulk::HeaderField{"List-Id", std::string(100, 'x')});
    h.push_back({"Precedence", std::string(100000, ' ') + "bulk"});
    auto got = bulk::header_signals(h, cfg).signals;
    CHECK(got == std::vector<std::string>{"header:precedence", "header:list-id"});
}
