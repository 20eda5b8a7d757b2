// policy: [bulk] zone opt-out zones at RCPT through policy::Session — the
// local table wins, +detail, @domain and mixed-case domains, several zones,
// on_error, the shared cache and its TTLs, the stage budget, the source in
// the JSON and the log line. Over an in-memory resolver.
#include <catch2/catch.hpp>

#include "../support/config_fixture.hpp"
#include "../support/session_fixture.hpp"

#include "bulk/optout.hpp"
#include "policy/report.hpp"
#include "policy/session.hpp"

using namespace regmilter;
using dns::DnsStatus;
using dns::RrType;
using policy::Action;
using regmilter::testing::cfg_of;
using regmilter::testing::environment_of;
using regmilter::testing::runtime_of;

namespace {

// Envelope-known bulk (the sender is in [bulk] senders), no registry, SPF pass.
const std::string base_cfg =
    "[milter]\nauthserv_id = mx.example.org\n[spf]\ncheck_helo = no\n"
    "[bulk]\nsenders = news.example\nzone = optout.test second.test\n";

std::string name_in(const std::string& key, const std::string& zone) {
    return bulk::optout_label(key) + "." + zone;
}

// The published zones: what `regmilter-zone optout` builds from a table
// (labels of keys as written and in lower case), and a second zone.
void zones(dns::MemoryResolver& dns) {
    dns.add("news.example", RrType::txt, "v=spf1 ip4:192.0.2.0/24 -all");
    dns.add(name_in("alice@example.org", "optout.test"), RrType::a, "127.0.0.2");
    dns.add(name_in("bob@example.org", "optout.test"), RrType::a, "127.0.0.2");  // the table says accept
    dns.add(name_in("carol@example.org", "optout.test"), RrType::a, "127.0.0.2");
    dns.add(name_in("@optout.example", "optout.test"), RrType::a, "127.0.0.2");
    dns.add(name_in("dave@optout.example", "optout.test"), RrType::a, "127.0.0.3");
    dns.add(name_in("Mixed@example.org", "optout.test"), RrType::a, "127.0.0.2");
    dns.add(name_in("mixed@example.org", "optout.test"), RrType::a, "127.0.0.2");
    dns.add(name_in("frank@example.org", "second.test"), RrType::a, "127.0.0.2");
    dns.add(name_in("gina@example.org", "second.test"), RrType::a, "127.0.0.3");
    dns.add_failure(name_in("slow@example.org", "optout.test"), DnsStatus::timeout);
    dns.add(name_in("odd@example.org", "optout.test"), RrType::a, "127.0.0.9");
    dns.set_strict(false);  // every label not published is NXDOMAIN
}

struct Asked {
    policy::Reply reply;
    policy::Recipient rcpt;
};

// One session up to RCPT for each of `rcpts` (one transaction).
std::vector<Asked> ask(const std::shared_ptr<policy::Runtime>& rt, const std::vector<std::string>& rcpts,
                       const std::string& from = "promo@news.example") {
    policy::Session s(environment_of(rt));
    policy::ConnectInfo c;
    c.ip = net::Address::parse("192.0.2.7");
    s.connect(c);
    s.helo("mail.news.example", {});
    s.mail("<" + from + ">", {});
    std::vector<Asked> out;
    for (const auto& r : rcpts) {
        policy::Reply reply = s.rcpt("<" + r + ">", {});
        out.push_back({reply, s.last_recipient()});
    }
    s.close();
    return out;
}

bool has(const std::string& hay, const std::string& needle) {
    INFO("want " << needle << " in " << hay);
    return hay.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("opt-out zones at RCPT: table first, then the zones, then default", "[policy][optout]") {
    dns::MemoryResolver dns;
    zones(dns);
    auto table = bulk::Table::parse("bob@example.org accept\n@tabled.example reject\n", "t").value;
    auto rt = runtime_of(cfg_of(base_cfg), dns, table);
    struct Case {
        const char* rcpt;
        Action action;
        const char* source;
        const char* key;
    };
    const Case cases[] = {
        // The local table wins over a zone that says the opposite.
        {"bob@example.org", Action::continue_, "table", "bob@example.org"},
        {"Bob+x@EXAMPLE.org", Action::continue_, "table", "bob@example.org"},
        {"x@tabled.example", Action::reject, "table", "@tabled.example"},
        {"alice@example.org", Action::reject, "zone:optout.test", "alice@example.org"},
        // +detail: the entry without it.
        {"carol+news@example.org", Action::reject, "zone:optout.test", "carol@example.org"},
        {"alice+x@example.org", Action::reject, "zone:optout.test", "alice@example.org"},
        // @domain, and an address entry before it.
        {"erin@optout.example", Action::reject, "zone:optout.test", "@optout.example"},
        {"dave@optout.example", Action::continue_, "zone:optout.test", "dave@optout.example"},
        // Mixed-case domains are lower-cased; the local part as written, then in lower case.
        {"Erin@OptOut.Example", Action::reject, "zone:optout.test", "@optout.example"},
        {"DAVE@OPTOUT.EXAMPLE", Action::continue_, "zone:optout.test", "dave@optout.example"},
        {"Mixed@Example.ORG", Action::reject, "zone:optout.test", "Mixed@example.org"},
        {"ALICE@Example.Org", Action::reject, "zone:optout.test", "alice@example.org"},
        // Several zones: the first that knows the address decides.
        {"frank@example.org", Action::reject, "zone:second.test", "frank@example.org"},
        {"gina@example.org", Action::continue_, "zone:second.test", "gina@example.org"},
        // Nobody knows it: [bulk] default.
        {"nobody@example.org", Action::continue_, "default", "default"},
        // Not an address (RCPT TO:<postmaster>), and a very long one: defined results.
        {"postmaster", Action::continue_, "default", "default"},
        {"\"quoted \\\" local\"@Example.ORG", Action::continue_, "default", "default"},
    };
    const std::string very_long = std::string(5000, 'x') + "@example.org";
    std::vector<Case> all(std::begin(cases), std::end(cases));
    all.push_back({very_long.c_str(), Action::continue_, "default", "default"});
    for (const auto& c : all) {
        INFO(c.rcpt);
        dns.clear_log();
        auto a = ask(rt, {c.rcpt}).at(0);
        CHECK(a.reply.action == c.action);
        CHECK(a.rcpt.source == c.source);
        CHECK(a.rcpt.bulk.key == c.key);
        if (c.action == Action::reject) {
            CHECK(a.reply.code == "550");
            CHECK(a.reply.xcode == "5.7.1");
            CHECK(has(a.reply.log, "bulk_source=" + std::string(c.source)));
        }
        if (std::string(c.source) == "table") {
            CHECK_FALSE(a.rcpt.zone);
            for (const auto& q : dns.log()) CHECK_FALSE(has(q, ".test/"));  // no zone asked
        }
    }
}

TEST_CASE("opt-out zones: an opted-in answer stands against [bulk] default = reject", "[policy][optout]") {
    dns::MemoryResolver dns;
    zones(dns);
    auto rt = runtime_of(cfg_of(base_cfg + "default = reject\n"), dns);
    auto a = ask(rt, {"dave@optout.example", "nobody@example.org"});
    CHECK(a[0].reply.action == Action::continue_);
    CHECK(a[0].rcpt.source == "zone:optout.test");
    CHECK(a[1].reply.action == Action::reject);
    CHECK(a[1].rcpt.source == "default");
}

TEST_CASE("opt-out zones: a zone that cannot be asked follows [bulk] on_error", "[policy][optout]") {
    dns::MemoryResolver dns;
    zones(dns);
    SECTION("accept (the default): delivered, logged as a warning") {
        auto rt = runtime_of(cfg_of(base_cfg), dns);
        for (const char* rcpt : {"slow@example.org", "odd@example.org"}) {
            INFO(rcpt);
            auto a = ask(rt, {rcpt}).at(0);
            CHECK(a.reply.action == Action::continue_);
            CHECK(a.rcpt.source == "zone:optout.test");
            REQUIRE(a.rcpt.zone);
            CHECK(a.rcpt.zone->status == bulk::ZoneStatus::error);
            CHECK(a.reply.log_level == policy::LogLevel::warning);
            CHECK(has(a.reply.log, "bulk_source=zone:optout.test"));
            CHECK(has(a.reply.log, "bulk_error=\"optout.test: " + a.rcpt.zone->error));
            CHECK(has(a.reply.log, "(on_error=accept)\""));
        }
    }
    SECTION("tempfail: 451 4.4.3 for envelope bulk, naming the zone") {
        auto rt = runtime_of(cfg_of(base_cfg + "on_error = tempfail\n"), dns);
        auto a = ask(rt, {"slow@example.org", "alice@example.org", "nobody@example.org"});
        CHECK(a[0].reply.action == Action::tempfail);
        CHECK(a[0].reply.code == "451");
        CHECK(a[0].reply.xcode == "4.4.3");
        CHECK(a[0].reply.text ==
              "cannot check whether slow@example.org accepts bulk mail (optout.test: timeout), try again "
              "later");
        CHECK(a[0].reply.reason == "bulk:error:optout.test");
        CHECK(has(a[0].reply.log, "(on_error=tempfail)"));
        CHECK(a[1].reply.action == Action::reject);
        CHECK(a[2].reply.action == Action::continue_);
    }
    SECTION("tempfail with action = tag: nothing is refused") {
        auto rt = runtime_of(cfg_of(base_cfg + "on_error = tempfail\naction = tag\n"), dns);
        CHECK(ask(rt, {"slow@example.org"}).at(0).reply.action == Action::continue_);
    }
    SECTION("tempfail in observe mode: logged, not refused") {
        auto rt = runtime_of(cfg_of("[milter]\nmode = observe\n" + base_cfg.substr(base_cfg.find("[spf]")) +
                                    "on_error = tempfail\n"),
                             dns);
        auto a = ask(rt, {"slow@example.org"}).at(0);
        CHECK(a.reply.action == Action::continue_);
        CHECK(a.reply.reason == "observe:bulk:error:optout.test");
        CHECK(a.reply.would == Action::tempfail);  // counted as a would-be refusal (stats)
    }
}

TEST_CASE("opt-out zones: not asked for mail that cannot be bulk", "[policy][optout]") {
    dns::MemoryResolver dns;
    zones(dns);
    dns.add("plain.example", RrType::txt, "v=spf1 ip4:192.0.2.0/24 -all");
    auto rt = runtime_of(cfg_of(base_cfg + "header_signals = no\n"), dns);
    dns.clear_log();
    auto a = ask(rt, {"alice@example.org"}, "someone@plain.example").at(0);
    CHECK(a.reply.action == Action::continue_);
    CHECK(a.rcpt.source == "default");
    CHECK_FALSE(a.rcpt.zone);
    CHECK(dns.log() == std::vector<std::string>{"plain.example/TXT"});
}

TEST_CASE("opt-out zones: header-known bulk removes the zone's opted-out recipients at end of message",
          "[policy][optout]") {
    dns::MemoryResolver dns;
    zones(dns);
    dns.add("lists.example", RrType::txt, "v=spf1 ip4:192.0.2.0/24 -all");
    policy::Scenario sc;
    sc.ip = net::Address::parse("192.0.2.7");
    sc.helo = "lists.example";
    sc.mail_from = "list@lists.example";
    sc.rcpts = {"Alice@Example.ORG", "nobody@example.org", "slow@example.org"};
    sc.headers = {{"List-Id", "<x.lists.example>"}};
    SECTION("on_error = accept: the failed recipient gets the message") {
        policy::Session s(environment_of(runtime_of(cfg_of(base_cfg), dns)));
        auto t = policy::simulate(s, sc);
        REQUIRE(t.replies.back().stage == policy::Stage::data);
        CHECK(t.replies.back().reply.remove_rcpts == std::vector<std::string>{"<Alice@Example.ORG>"});
        std::string j = policy::to_json(s, t);
        CHECK(
            has(j,
                "{\"rcpt\":\"Alice@Example.ORG\",\"choice\":\"reject\",\"key\":\"alice@example.org\","
                "\"source\":\"zone:optout.test\",\"zone\":{\"status\":\"opted-out\",\"zone\":\"optout.test\","
                "\"key\":\"alice@example.org\",\"query\":\"" +
                    name_in("alice@example.org", "optout.test") +
                    "\",\"code\":\"127.0.0.2\",\"error\":\"\","
                    "\"ttl\":300}}"));
        CHECK(has(j,
                  "{\"rcpt\":\"nobody@example.org\",\"choice\":\"accept\",\"key\":\"default\","
                  "\"source\":\"default\",\"zone\":{\"status\":\"none\""));
        CHECK(has(j,
                  "{\"rcpt\":\"slow@example.org\",\"choice\":\"accept\",\"key\":\"error\","
                  "\"source\":\"zone:optout.test\",\"zone\":{\"status\":\"error\""));
        CHECK(has(j, "\"signals\":[\"header:list-id\"],\"source\":\"zone:optout.test\",\"recipients\":["));
    }
    SECTION("on_error = tempfail: the message waits") {
        policy::Session s(environment_of(runtime_of(cfg_of(base_cfg + "on_error = tempfail\n"), dns)));
        auto t = policy::simulate(s, sc);
        const auto& last = t.replies.back();
        REQUIRE(last.stage == policy::Stage::data);
        CHECK(last.reply.action == Action::tempfail);
        CHECK(last.reply.code + " " + last.reply.xcode == "451 4.4.3");
        CHECK(last.reply.reason == "bulk:error:optout.test");
    }
    SECTION("on_error = tempfail in observe mode: both would-be refusals are said, nothing is refused") {
        policy::Session s(environment_of(
            runtime_of(cfg_of("[milter]\nmode = observe\n" + base_cfg.substr(base_cfg.find("[spf]")) +
                              "on_error = tempfail\n"),
                       dns)));
        auto t = policy::simulate(s, sc);
        const auto& last = t.replies.back();
        REQUIRE(last.stage == policy::Stage::data);
        CHECK(last.reply.action == Action::continue_);
        CHECK(last.reply.remove_rcpts.empty());
        // Enforce mode would tempfail the message first: that is the would-be answer.
        CHECK(last.reply.would == Action::tempfail);
        CHECK(last.reply.reason == "observe:bulk:error:optout.test");
        std::string tags;
        for (const auto& h : last.reply.add_headers)
            if (h.name == "X-Regmilter") tags += h.value + "\n";
        CHECK(has(tags,
                  "would tempfail: 451 4.4.3 cannot check whether slow@example.org accepts bulk mail "
                  "(optout.test: timeout), try again later\n"));
        CHECK(has(tags, "would reject bulk mail (header:list-id) for 1 recipient(s) who opted out\n"));
    }
}

TEST_CASE("opt-out zones: answers are cached for their TTL in the shared cache", "[policy][optout]") {
    dns::MemoryResolver dns;
    zones(dns);
    dns.add(name_in("ttl@example.org", "optout.test"), RrType::a, "127.0.0.2", 60);
    auto rt = runtime_of(cfg_of(base_cfg), dns);
    auto now = std::make_shared<dns::Clock::time_point>(dns::Clock::now());
    dns::CacheOptions opt;
    opt.max_entries = 1000;
    rt->cache = std::make_shared<dns::Cache>(opt, [now] { return *now; });
    const std::string name = name_in("ttl@example.org", "optout.test") + "/A";
    auto asked = [&] {
        size_t n = 0;
        for (const auto& q : dns.log()) n += q == name;
        return n;
    };
    CHECK(ask(rt, {"ttl@example.org"}).at(0).reply.action == Action::reject);
    CHECK(asked() == 1);
    *now += std::chrono::seconds(59);
    auto again = ask(rt, {"ttl@example.org"}).at(0);
    CHECK(again.reply.action == Action::reject);
    CHECK(again.rcpt.zone->ttl == 1);  // counted down
    CHECK(asked() == 1);
    *now += std::chrono::seconds(2);
    CHECK(ask(rt, {"ttl@example.org"}).at(0).reply.action == Action::reject);
    CHECK(asked() == 2);
}

namespace {

// Records the deadline of every query, then asks `next`.
class DeadlineRecorder : public dns::Resolver {
public:
    DeadlineRecorder(dns::MemoryResolver& next, std::vector<std::pair<std::string, dns::Deadline>>& seen)
        : next_(next), seen_(seen) {}
    dns::DnsAnswer query(std::string_view name, RrType type, dns::Deadline deadline) override {
        seen_.emplace_back(std::string(name), deadline);
        return next_.query(name, type, deadline);
    }

private:
    dns::MemoryResolver& next_;
    std::vector<std::pair<std::string, dns::Deadline>>& seen_;
};

}  // namespace

TEST_CASE("opt-out zones: each RCPT's lookups are bounded by the stage budget", "[policy][optout]") {
    dns::MemoryResolver dns;
    zones(dns);
    std::vector<std::pair<std::string, dns::Deadline>> seen;
    auto rt = runtime_of(cfg_of(base_cfg + "[resolver]\nstage_timeout_ms = 1500\n"), dns);
    rt->cache = std::make_shared<dns::Cache>(dns::CacheOptions{0, 0, 0, 0});  // every query goes upstream
    rt->upstream = [&dns, &seen]() -> std::unique_ptr<dns::Resolver> {
        return std::make_unique<DeadlineRecorder>(dns, seen);
    };
    auto before = dns::Clock::now();
    ask(rt, {"nobody@example.org"});
    auto after = dns::Clock::now();
    size_t zone_queries = 0;
    for (const auto& [name, deadline] : seen) {
        if (name.find(".test") == std::string::npos) continue;
        ++zone_queries;
        INFO(name);
        CHECK(deadline >= before + std::chrono::milliseconds(1500));
        CHECK(deadline <= after + std::chrono::milliseconds(1500));
    }
    CHECK(zone_queries == 4);  // the address and @domain, in each of the two zones
}

TEST_CASE("[bulk] zone and on_error: validation", "[config][optout]") {
    struct Case {
        const char* text;
        const char* problem;  // empty: loads
    };
    const std::string long_zone = std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                                  std::string(63, 'c') + "." + std::string(10, 'd');  // 202 octets
    const Case cases[] = {
        {"[bulk]\nzone = optout.example\n", ""},
        {"[bulk]\nzone = OptOut.Example. second.example\non_error = tempfail\n", ""},
        {"[bulk]\nzone = optout.example\n  second.example\n", ""},
        {"[bulk]\nzone = not_a..zone\n", "t.ini:2: [bulk] zone: \"not_a..zone\" is not a host name"},
        {"[bulk]\nzone = a.example A.example.\n", "t.ini:2: [bulk] zone: a.example is listed twice"},
        {"[bulk]\non_error = sometimes\n",
         "t.ini:2: [bulk] on_error: \"sometimes\" is not a valid choice, allowed: "
         "accept|tempfail"},
    };
    for (const auto& c : cases) {
        INFO(c.text);
        auto r = config::load_string(c.text, "t.ini");
        if (!*c.problem) {
            for (const auto& p : r.problems) FAIL_CHECK(p.str());
            continue;
        }
        REQUIRE_FALSE(r.problems.empty());
        CHECK(has(r.problems[0].str(), c.problem));
    }
    auto ok = config::load_string("[bulk]\nzone = OptOut.Example. second.example\n", "t.ini");
    REQUIRE(ok.value);
    CHECK(ok.value->bulk.zones == std::vector<std::string>{"optout.example", "second.example"});
    CHECK(ok.value->bulk.on_error == policy::OnError::accept);
    // A name too long for the labels is refused (here already by the reader's line limit).
    auto too_long = config::load_string("[bulk]\nzone = " + long_zone + "\n", "t.ini");
    CHECK_FALSE(too_long.value);
    CHECK(too_long.problems.size() == 1);
}
