// stats: counters and histograms (buckets, concurrent counting), the
// Prometheus text format (HELP/TYPE, label escaping, sorted series,
// histogram lines), the reason -> policy/result reading, Metrics as the
// Session's observer (exact counts per stage, observe mode's would-be
// refusals), the DNS counters, the HTTP request reader and answers, and
// [stats] listen in the configuration.
#include <catch2/catch.hpp>

#include "../support/config_fixture.hpp"
#include "../support/session_fixture.hpp"

#include <sstream>
#include <thread>
#include <vector>

#include "bulk/optout.hpp"
#include "dns/cache.hpp"
#include "dns/memory_resolver.hpp"
#include "state/memory_store.hpp"
#include "stats/exposition.hpp"
#include "stats/http.hpp"
#include "stats/metrics.hpp"

using namespace regmilter;
using namespace std::chrono_literals;
using regmilter::testing::cfg_of;
using regmilter::testing::environment_of;
using regmilter::testing::runtime_of;

namespace {

// The value of the sample line "SERIES VALUE" in `text`, or -1 when absent.
double sample(const std::string& text, const std::string& series) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
        if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
            line[series.size()] == ' ')
            return std::stod(line.substr(series.size() + 1));
    return -1;
}

struct Want {
    std::string series;
    double value;
};

// Each wanted series has its value in `text` (the whole text shown on failure).
void check_samples(const std::string& text, const std::vector<Want>& wants) {
    INFO(text);
    for (const auto& w : wants) {
        INFO(w.series);
        CHECK(sample(text, w.series) == w.value);
    }
}

}  // namespace

TEST_CASE("stats: a histogram puts each observation in the first bucket whose bound it does not exceed",
          "[stats]") {
    static const stats::Bounds bounds = {0.001, 0.01, 0.1};
    struct Case {
        std::chrono::nanoseconds d;
        size_t bucket;  // 3 = +Inf
    } cases[] = {
        {0ns, 0}, {-5ns, 0}, {1ms, 0}, {1ms + 1ns, 1}, {10ms, 1}, {99ms, 2}, {100ms, 2}, {101ms, 3}, {30s, 3},
    };
    for (const auto& c : cases) {
        stats::Histogram h({&bounds});
        h.observe(c.d);
        auto s = h.snapshot();
        INFO("observed " << c.d.count() << " ns, want bucket " << c.bucket);
        REQUIRE(s.cumulative.size() == 4);
        for (size_t i = 0; i < 4; ++i) CHECK(s.cumulative[i] == (i >= c.bucket ? 1u : 0u));
    }
    stats::Histogram h({&bounds});
    h.observe(2ms);
    h.observe(2ms);
    h.observe(500ms);
    auto s = h.snapshot();
    CHECK(s.cumulative == std::vector<uint64_t>{0, 2, 2, 3});
    CHECK(s.sum_seconds == Approx(0.504));
}

TEST_CASE("stats: escapes of the text format", "[stats]") {
    struct Case {
        const char* in;
        const char* label;
        const char* help;
    } cases[] = {
        {"plain", "plain", "plain"},
        {"a\"b", "a\\\"b", "a\"b"},
        {"back\\slash", "back\\\\slash", "back\\\\slash"},
        {"line\nfeed", "line\\nfeed", "line\\nfeed"},
        {"tab\there", "tab?here", "tab?here"},
        {"caf\xc3\xa9", "caf??", "caf??"},
        {"", "", ""},
    };
    for (const auto& c : cases) {
        INFO("input \"" << c.in << "\"");
        CHECK(stats::escape_label_value(c.in) == c.label);
        CHECK(stats::escape_help(c.in) == c.help);
    }
    CHECK(stats::format_value(0.25) == "0.25");
    CHECK(stats::format_value(1) == "1");
    CHECK(stats::format_value(1e-4) == "0.0001");
    CHECK(stats::format_value(0.00025) == "0.00025");
    CHECK(stats::format_value(1e-9) == "1e-09");
    CHECK(stats::format_value(1.0 / 0.0) == "+Inf");
    for (auto n : {"regmilter_sessions_total", "a:b", "_x"}) CHECK(stats::valid_metric_name(n));
    for (auto n : {"", "1abc", "a-b", "a b", "é"}) CHECK_FALSE(stats::valid_metric_name(n));
    for (auto n : {"stage", "_x", "a1"}) CHECK(stats::valid_label_name(n));
    for (auto n : {"", "__reserved", "a:b", "9"}) CHECK_FALSE(stats::valid_label_name(n));
    CHECK_THROWS_AS(stats::Family<stats::Counter>("bad-name", "h", {}), std::invalid_argument);
    CHECK_THROWS_AS(stats::Family<stats::Counter>("ok", "h", {"__x"}), std::invalid_argument);
    CHECK_THROWS_AS(stats::Family<stats::Histogram>("ok", "h", {"le"}), std::invalid_argument);
}

TEST_CASE("stats: a family renders HELP, TYPE and its series sorted, label values escaped", "[stats]") {
    stats::Family<stats::Counter> f("regmilter_test_total", "Test\\counter\nsecond line.", {"a", "b"});
    f.at({"z", "1"}).add(3);
    f.at({"a", "quote\"d"}).add();
    f.at({"z", "1"}).add();
    CHECK_THROWS_AS(f.at({"only one"}), std::invalid_argument);
    stats::Writer w;
    f.render(w);
    CHECK(w.text() ==
          "# HELP regmilter_test_total Test\\\\counter\\nsecond line.\n"
          "# TYPE regmilter_test_total counter\n"
          "regmilter_test_total{a=\"a\",b=\"quote\\\"d\"} 1\n"
          "regmilter_test_total{a=\"z\",b=\"1\"} 4\n");

    static const stats::Bounds bounds = {0.5, 1};
    stats::Family<stats::Histogram> h("regmilter_test_seconds", "Latency.", {"stage"}, {&bounds});
    h.at({"mail"}).observe(250ms);
    h.at({"mail"}).observe(2s);
    stats::Writer hw;
    h.render(hw);
    CHECK(hw.text() ==
          "# HELP regmilter_test_seconds Latency.\n"
          "# TYPE regmilter_test_seconds histogram\n"
          "regmilter_test_seconds_bucket{stage=\"mail\",le=\"0.5\"} 1\n"
          "regmilter_test_seconds_bucket{stage=\"mail\",le=\"1\"} 1\n"
          "regmilter_test_seconds_bucket{stage=\"mail\",le=\"+Inf\"} 2\n"
          "regmilter_test_seconds_sum{stage=\"mail\"} 2.25\n"
          "regmilter_test_seconds_count{stage=\"mail\"} 2\n");
}

TEST_CASE("stats: beyond max_series new label values share one overflow series", "[stats]") {
    stats::Family<stats::Counter> f("regmilter_test_total", "Test.", {"k"});
    for (size_t i = 0; i < stats::max_series + 5; ++i) f.at({std::to_string(i)}).add();
    f.at({"0"}).add();  // an old series still counts for itself
    stats::Writer w;
    f.render(w);
    CHECK(sample(w.text(), "regmilter_test_total{k=\"overflow\"}") == 5);
    CHECK(sample(w.text(), "regmilter_test_total{k=\"0\"}") == 2);
}

TEST_CASE("stats: counting from many threads at once loses nothing, new series included", "[stats]") {
    stats::Family<stats::Counter> f("regmilter_test_total", "Test.", {"stage", "n"});
    stats::Family<stats::Histogram> h("regmilter_test_seconds", "Test.", {"stage"});
    constexpr int threads = 8, rounds = 20000, series = 50;
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&, t] {
            for (int i = 0; i < rounds; ++i) {
                // Every thread adds the same new series at about the same time.
                f.at({"mail", std::to_string(i % series)}).add();
                h.at({i % 2 ? "rcpt" : "mail"}).observe(std::chrono::microseconds(t + i % 7));
            }
        });
    for (auto& t : ts) t.join();
    stats::Writer w;
    f.render(w);
    h.render(w);
    double total = 0;
    for (int n = 0; n < series; ++n) {
        double v = sample(w.text(), "regmilter_test_total{stage=\"mail\",n=\"" + std::to_string(n) + "\"}");
        CHECK(v == threads * rounds / series);
        total += v;
    }
    CHECK(total == threads * rounds);
    CHECK(sample(w.text(), "regmilter_test_seconds_count{stage=\"mail\"}") == threads * rounds / 2);
    CHECK(sample(w.text(), "regmilter_test_seconds_count{stage=\"rcpt\"}") == threads * rounds / 2);
    CHECK(sample(w.text(), "regmilter_test_seconds_bucket{stage=\"rcpt\",le=\"+Inf\"}") ==
          threads * rounds / 2);
}

TEST_CASE("stats: the policy and result of an answer, from its reason", "[stats]") {
    struct Case {
        const char* reason;
        const char* policy;
        const char* result;
    } cases[] = {
        {"", "none", "none"},
        {"registry:unregistered:reg.example", "registry", "unregistered"},
        {"registry:listed:bl.example", "registry", "listed"},
        {"registry:error:reg.example", "registry", "error"},
        {"spf:mailfrom:fail", "spf", "fail"},
        {"spf:helo:fail", "spf_helo", "fail"},
        {"observe:spf:mailfrom:softfail", "spf", "softfail"},
        {"observe:registry:unregistered:reg.example", "registry", "unregistered"},
        {"bulk:opted-out:bob@example.org", "bulk", "opted-out"},
        {"observe:bulk:opted-out:@example.org", "bulk", "opted-out"},
        {"observe:bulk", "bulk", "opted-out"},
        {"bulk:discard", "bulk", "discard"},
        // [bulk] zone: an opt-out zone's answer reads as the table's; a zone
        // that failed with on_error = tempfail is the bulk policy's error.
        {"bulk:error:optout.example", "bulk", "error"},
        {"observe:bulk:error:optout.example", "bulk", "error"},
        {"trusted:authenticated", "trust", "authenticated"},
        {"unknown-client", "trust", "unknown-client"},
        {"internal-error", "internal", "error"},
        {"internal-error:unexamined", "internal", "unexamined"},
        {"shutting-down", "shutdown", "shutting-down"},
        {"greylist:registry:unregistered:reg.example", "greylist", "unregistered"},
        {"greylist:registry:listed:bl.example", "greylist", "listed"},
        {"observe:greylist:registry:unregistered:reg.example", "greylist", "unregistered"},
        {"greylist:", "greylist", "greylisted"},
        {"ratelimit:unregistered:messages", "ratelimit", "unregistered_messages"},
        {"ratelimit:registered:recipients", "ratelimit", "registered_recipients"},
        {"observe:ratelimit:unregistered:recipients", "ratelimit", "unregistered_recipients"},
        {"state:error", "state", "error"},
        {"deferred-to-rcpt:registry:unregistered:reg.example", "registry", "unregistered"},
        {"exempt:registry:unregistered:reg.example", "exempt", "registry"},
        {"exempt:", "exempt", "none"},
        {"Weird Reason!:x\"y", "weird_reason_", "x_y"},
    };
    for (const auto& c : cases) {
        stats::Attribution a = stats::attribute(c.reason);
        INFO("reason \"" << c.reason << "\": got " << a.policy << "/" << a.result);
        CHECK(a.policy == c.policy);
        CHECK(a.result == c.result);
    }
    CHECK(stats::attribute(std::string(100, 'x')).policy.size() == 32);
}

namespace {

const char* const metrics_cfg =
    "[milter]\nauthserv_id = mx.example.org\nmode = %s\n[registry reg]\nzone = reg.example\n"
    "unregistered = reject\n[spf]\ncheck_helo = no\n";

std::string cfg_text(const char* mode) {
    char buf[512];
    std::snprintf(buf, sizeof buf, metrics_cfg, mode);
    return buf;
}

void zones(dns::MemoryResolver& dns) {
    dns.add("192-0-2-7.reg.example", dns::RrType::a, "127.0.0.2");
    dns.add("192-0-2-7.reg.example", dns::RrType::txt, "registered=2025-01-01");
    dns.add_empty("192-0-2-66.reg.example");
    dns.add("example.com", dns::RrType::txt, "v=spf1 ip4:192.0.2.0/24 -all");
    dns.add("fail.example", dns::RrType::txt, "v=spf1 -all");
}

policy::ConnectInfo client(const char* ip) {
    policy::ConnectInfo c;
    c.ip = net::Address::parse(ip);
    c.hostname = "mail.example.com";
    return c;
}

// One SMTP session through every stage the MTA would reach.
void smtp(policy::Session& s, const char* ip, const char* from) {
    const policy::Macros none;
    s.connect(client(ip));
    s.helo("mail.example.com", none);
    if (policy::refuses(s.mail(from, none).action)) {
        s.close();
        return;
    }
    s.rcpt("<bob@example.org>", none);
    s.header("Subject", "hello");
    if (!policy::refuses(s.end_of_headers(none).action)) s.end_of_message(none);
    s.close();
}

}  // namespace

TEST_CASE("stats: Metrics counts each stage's answer once, by policy, result and action",
          "[stats][session]") {
    dns::MemoryResolver dns;
    zones(dns);
    stats::Metrics metrics;
    auto enforce = runtime_of(cfg_of(cfg_text("enforce")), dns);
    auto observe = runtime_of(cfg_of(cfg_text("observe")), dns);
    auto env_enforce = environment_of(enforce);
    env_enforce.observer = &metrics;
    auto env_observe = environment_of(observe);
    env_observe.observer = &metrics;
    {
        policy::Session s(env_enforce);
        smtp(s, "192.0.2.7", "<alice@example.com>");   // registered, SPF pass: accepted
        smtp(s, "192.0.2.66", "<alice@example.com>");  // unregistered: 550 at MAIL FROM
        smtp(s, "192.0.2.7", "<eve@fail.example>");    // SPF fail: 550 5.7.23
    }
    {
        policy::Session s(env_observe);
        smtp(s, "192.0.2.66", "<alice@example.com>");  // would reject, accepted
        smtp(s, "192.0.2.7", "<eve@fail.example>");    // would reject, accepted
    }
    std::string text = metrics.render();
    check_samples(
        text,
        {
            {"regmilter_sessions_total", 5},
            {R"(regmilter_verdicts_total{stage="connect",policy="none",result="none",action="continue"})", 5},
            {R"(regmilter_verdicts_total{stage="helo",policy="none",result="none",action="continue"})", 5},
            {R"(regmilter_verdicts_total{stage="mail",policy="spf",result="pass",action="continue"})", 1},
            {R"(regmilter_verdicts_total{stage="mail",policy="registry",result="unregistered",action="reject"})",
             1},
            {R"(regmilter_verdicts_total{stage="mail",policy="spf",result="fail",action="reject"})", 1},
            {R"(regmilter_verdicts_total{stage="mail",policy="registry",result="unregistered",action="continue"})",
             1},
            {R"(regmilter_verdicts_total{stage="mail",policy="spf",result="fail",action="continue"})", 1},
            {R"(regmilter_verdicts_total{stage="rcpt",policy="none",result="none",action="continue"})", 3},
            {R"(regmilter_verdicts_total{stage="data",policy="none",result="none",action="continue"})", 1},
            {R"(regmilter_verdicts_total{stage="data",policy="registry",result="unregistered",action="continue"})",
             1},
            {R"(regmilter_verdicts_total{stage="data",policy="spf",result="fail",action="continue"})", 1},
            {R"(regmilter_would_reject_total{stage="mail",policy="registry",result="unregistered",action="reject"})",
             1},
            {R"(regmilter_would_reject_total{stage="mail",policy="spf",result="fail",action="reject"})", 1},
            {R"(regmilter_policy_results_total{policy="registry",result="listed"})", 3},
            {R"(regmilter_policy_results_total{policy="registry",result="unlisted"})", 2},
            {R"(regmilter_policy_results_total{policy="spf",result="pass"})", 3},
            {R"(regmilter_policy_results_total{policy="spf",result="fail"})", 2},
            // Each stage's latency is observed once per answer: end of headers and
            // end of message make one data answer.
            {R"(regmilter_stage_duration_seconds_count{stage="connect"})", 5},
            {R"(regmilter_stage_duration_seconds_count{stage="mail"})", 5},
            {R"(regmilter_stage_duration_seconds_count{stage="rcpt"})", 3},
            {R"(regmilter_stage_duration_seconds_count{stage="data"})", 3},
            {R"(regmilter_stage_duration_seconds_bucket{stage="data",le="+Inf"})", 3},
        });
    INFO(text);
    CHECK(text.find("regmilter_would_reject_total{stage=\"data\"") == std::string::npos);
    CHECK(text.find("# TYPE regmilter_stage_duration_seconds histogram\n") != std::string::npos);
    CHECK(text.find("regmilter_build_info{version=\"") != std::string::npos);
    CHECK(text.find("regmilter_dns_") == std::string::npos);  // no ScrapeFacts given
}

TEST_CASE("stats: greylisting and rate-limit tempfails are counted as verdicts, observe mode's as would-be",
          "[stats][session][throttle]") {
    dns::MemoryResolver dns;
    zones(dns);
    stats::Metrics metrics;
    const std::string throttled =
        "[registry reg]\nzone = reg.example\nunregistered = greylist\n[spf]\ncheck_helo = no\n"
        "[ratelimit]\nunregistered_messages = 1\n";
    auto store = std::make_shared<state::MemoryStore>();
    auto run = [&](const char* mode, const char* ip, policy::Action want_mail, policy::Action want_rcpt) {
        auto rt = runtime_of(
            cfg_of("[milter]\nauthserv_id = mx.example.org\nmode = " + std::string(mode) + "\n" + throttled),
            dns);
        auto env = environment_of(rt);
        env.observer = &metrics;
        env.store = [held = store]() -> std::shared_ptr<state::Store> { return held; };
        policy::Session s(env);
        const policy::Macros none;
        s.connect(client(ip));
        s.helo("mail.example.com", none);
        policy::Reply mail = s.mail("<alice@example.com>", none);
        INFO(mode << " " << ip << ": MAIL FROM " << mail.log);
        CHECK(mail.action == want_mail);
        if (!policy::refuses(mail.action)) CHECK(s.rcpt("<bob@example.org>", none).action == want_rcpt);
        s.close();
    };
    using A = policy::Action;
    run("enforce", "192.0.2.66", A::continue_, A::tempfail);   // greylisted at RCPT
    run("enforce", "192.0.2.66", A::tempfail, A::continue_);   // the 2nd message: over the limit of 1
    store = std::make_shared<state::MemoryStore>();            // observe mode starts afresh
    run("observe", "192.0.2.66", A::continue_, A::continue_);  // would greylist
    run("observe", "192.0.2.66", A::continue_, A::continue_);  // would be rate-limited; greylisted again
    check_samples(
        metrics.render(),
        {
            {R"(regmilter_verdicts_total{stage="rcpt",policy="greylist",result="unregistered",action="tempfail"})",
             1},
            {R"(regmilter_verdicts_total{stage="mail",policy="ratelimit",result="unregistered_messages",action="tempfail"})",
             1},
            {R"(regmilter_verdicts_total{stage="rcpt",policy="greylist",result="unregistered",action="continue"})",
             2},
            {R"(regmilter_verdicts_total{stage="mail",policy="ratelimit",result="unregistered_messages",action="continue"})",
             1},
            {R"(regmilter_would_reject_total{stage="rcpt",policy="greylist",result="unregistered",action="tempfail"})",
             2},
            {R"(regmilter_would_reject_total{stage="mail",policy="ratelimit",result="unregistered_messages",action="tempfail"})",
             1},
        });
}

TEST_CASE("stats: a refusal at end of headers is the message's one answer", "[stats][session]") {
    dns::MemoryResolver dns;
    zones(dns);
    auto table = bulk::Table::parse("bob@example.org reject\n", "t.table");
    REQUIRE(table.value);
    stats::Metrics metrics;
    auto rt = runtime_of(cfg_of("[milter]\nauthserv_id = mx.example.org\n[spf]\ncheck_helo = no\n"), dns,
                         table.value);
    auto env = environment_of(rt);
    env.observer = &metrics;
    policy::Session s(env);
    const policy::Macros none;
    s.connect(client("192.0.2.7"));
    s.helo("mail.example.com", none);
    s.mail("<alice@example.com>", none);
    s.rcpt("<bob@example.org>", none);
    s.header("Precedence", "bulk");
    CHECK(s.end_of_headers(none).action == policy::Action::reject);
    s.close();
    std::string text = metrics.render();
    INFO(text);
    CHECK(sample(text,
                 R"(regmilter_verdicts_total{stage="data",policy="bulk",result="reject",action="reject"})") ==
          1);
    CHECK(sample(text, R"(regmilter_stage_duration_seconds_count{stage="data"})") == 1);
}

TEST_CASE("stats: opt-out zone verdicts at RCPT count under bulk, a failed zone as bulk/error",
          "[stats][session][optout]") {
    dns::MemoryResolver dns;
    zones(dns);
    dns.add(bulk::optout_label("bob@example.org") + ".optout.example", dns::RrType::a, "127.0.0.2");
    dns.add_failure(bulk::optout_label("slow@example.org") + ".optout.example", dns::DnsStatus::timeout);
    dns.set_strict(false);  // every other label: NXDOMAIN
    const std::string cfg =
        "[milter]\nauthserv_id = mx.example.org\nmode = %s\n[spf]\ncheck_helo = no\n[bulk]\n"
        "senders = example.com\nzone = optout.example\non_error = tempfail\n";
    for (const char* mode : {"enforce", "observe"}) {
        INFO(mode);
        char text[512];
        std::snprintf(text, sizeof text, cfg.c_str(), mode);
        stats::Metrics metrics;
        auto env = environment_of(runtime_of(cfg_of(text), dns));
        env.observer = &metrics;
        policy::Session s(env);
        const policy::Macros none;
        s.connect(client("192.0.2.7"));
        s.helo("mail.example.com", none);
        s.mail("<news@example.com>", none);
        s.rcpt("<bob@example.org>", none);
        s.rcpt("<slow@example.org>", none);
        s.rcpt("<nobody@example.org>", none);
        s.close();
        std::string out = metrics.render();
        INFO(out);
        bool enforce = std::string(mode) == "enforce";
        const char* reject = enforce ? "reject" : "continue";
        const char* tempfail = enforce ? "tempfail" : "continue";
        CHECK(sample(out, std::string(
                              R"(regmilter_verdicts_total{stage="rcpt",policy="bulk",result="opted-out",)") +
                              "action=\"" + reject + "\"}") == 1);
        CHECK(sample(out,
                     std::string(R"(regmilter_verdicts_total{stage="rcpt",policy="bulk",result="error",)") +
                         "action=\"" + tempfail + "\"}") == 1);
        CHECK(
            sample(
                out,
                R"(regmilter_verdicts_total{stage="rcpt",policy="none",result="none",action="continue"})") ==
            1);
        double would_reject = sample(
            out,
            R"(regmilter_would_reject_total{stage="rcpt",policy="bulk",result="opted-out",action="reject"})");
        double would_tempfail = sample(
            out,
            R"(regmilter_would_reject_total{stage="rcpt",policy="bulk",result="error",action="tempfail"})");
        CHECK(would_reject == (enforce ? -1 : 1));
        CHECK(would_tempfail == (enforce ? -1 : 1));
    }
}

TEST_CASE("stats: the shared cache and the upstream count hits, misses and queries by outcome",
          "[stats][dns]") {
    auto counters = std::make_shared<dns::Counters>();
    auto cache = std::make_shared<dns::Cache>(dns::CacheOptions{}, &dns::Clock::now, counters);
    dns::MemoryResolver upstream;
    upstream.add("a.example", dns::RrType::a, "192.0.2.1");
    dns::CachingResolver r(upstream, cache);
    r.query("a.example", dns::RrType::a, dns::no_deadline());
    r.query("a.example", dns::RrType::a, dns::no_deadline());
    r.query("a.example", dns::RrType::a, dns::no_deadline());
    CHECK(counters->cache_misses.value() == 1);
    CHECK(counters->cache_hits.value() == 2);
    CHECK(cache->get("b.example", dns::RrType::a) == std::nullopt);
    CHECK(counters->cache_misses.value() == 2);

    counters->upstream_answered(dns::DnsStatus::timeout);
    counters->upstream_answered(dns::DnsStatus::ok);
    counters->upstream_answered(dns::DnsStatus::ok);
    stats::Metrics m;
    stats::ScrapeFacts sf;
    sf.dns = counters.get();
    sf.dns_cache_entries = 7;
    sf.open_connections = 2;
    sf.config_generation = 3;
    std::string text = m.render(sf);
    INFO(text);
    CHECK(sample(text, "regmilter_dns_cache_hits_total") == 2);
    CHECK(sample(text, "regmilter_dns_cache_misses_total") == 2);
    CHECK(sample(text, R"(regmilter_dns_upstream_queries_total{result="ok"})") == 2);
    CHECK(sample(text, R"(regmilter_dns_upstream_queries_total{result="timeout"})") == 1);
    CHECK(sample(text, R"(regmilter_dns_upstream_queries_total{result="servfail"})") == 0);
    CHECK(sample(text, "regmilter_dns_cache_entries") == 7);
    CHECK(sample(text, "regmilter_connections_open") == 2);
    CHECK(sample(text, "regmilter_config_generation") == 3);
}

TEST_CASE("stats: a reload hands the DNS counters on, with or without the cache", "[stats][dns]") {
    auto first = policy::make_runtime(cfg_of("[resolver]\nnameservers = 127.0.0.1\n"), nullptr);
    REQUIRE(first.runtime);
    REQUIRE(first.runtime->dns_counters);
    CHECK(first.runtime->resolver.counters == first.runtime->dns_counters);
    auto same = policy::make_runtime(cfg_of("[resolver]\nnameservers = 127.0.0.1\n"), first.runtime);
    auto other = policy::make_runtime(cfg_of("[resolver]\nnameservers = 127.0.0.2\n"), first.runtime);
    CHECK(same.runtime->dns_counters == first.runtime->dns_counters);
    CHECK(same.runtime->cache == first.runtime->cache);
    CHECK(other.runtime->dns_counters == first.runtime->dns_counters);
    CHECK(other.runtime->cache != first.runtime->cache);
}

TEST_CASE("stats: an HTTP request head is read as it arrives, and bad ones are refused early",
          "[stats][http]") {
    using State = stats::http::Request::State;
    struct Case {
        std::string in;
        State state;
        const char* method;
        const char* path;
    } cases[] = {
        {"", State::incomplete, "", ""},
        {"GET /metrics HTTP/1.1\r\n", State::incomplete, "GET", "/metrics"},
        {"GET /metrics HTTP/1.1\r\nHost: x\r\n", State::incomplete, "GET", "/metrics"},
        {"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", State::complete, "GET", "/metrics"},
        {"GET /metrics HTTP/1.0\n\n", State::complete, "GET", "/metrics"},
        {"\r\nGET /metrics?x=1 HTTP/1.1\r\n\r\n", State::complete, "GET", "/metrics"},
        {"GET http://127.0.0.1:9100/metrics HTTP/1.1\r\n\r\n", State::complete, "GET", "/metrics"},
        {"HEAD / HTTP/1.1\r\n\r\n", State::complete, "HEAD", "/"},
        {"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", State::complete, "POST", "/metrics"},
        {"GET /metrics HTTP/2.0\r\n\r\n", State::bad_version, "GET", "/metrics"},
        {"garbage\r\n", State::bad, "", ""},
        {"GET /metrics\r\n", State::bad, "", ""},
        {"GET metrics HTTP/1.1\r\n", State::bad, "", ""},
        {"GET /a b HTTP/1.1\r\n", State::bad, "", ""},
        {"GET /metrics HTTP/1.1x\r\n", State::bad, "", ""},
        {"G(T /metrics HTTP/1.1\r\n", State::bad, "", ""},
        {std::string("GET /met\0rics", 13), State::bad, "", ""},
        {"\x16\x03\x01\x02", State::bad, "", ""},  // a TLS ClientHello
        {"GET /metrics HTTP/1.1\r\n folded\r\n\r\n", State::bad, "", ""},
        {"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n", State::bad, "", ""},
        {"GET /metrics HTTP/1.1\r", State::incomplete, "", ""},
        {"GET /" + std::string(9000, 'a'), State::too_large, "", ""},
        {"GET / HTTP/1.1\r\n" + std::string(200, '\n'), State::complete, "GET", "/"},
        {"GET / HTTP/1.1\r\nX: " + std::string(9000, 'a') + "\r\n\r\n", State::too_large, "", ""},
        {std::string(9000, '\n'), State::too_large, "", ""},
    };
    for (const auto& c : cases) {
        auto r = stats::http::parse_request(c.in);
        INFO("request \"" << c.in.substr(0, 60) << "\": state " << int(r.state) << " " << r.error);
        CHECK(r.state == c.state);
        if (c.state == State::complete || c.state == State::bad_version) {
            CHECK(r.method == c.method);
            CHECK(r.path == c.path);
        }
    }
}

TEST_CASE("stats: the endpoint answers /metrics, and 404, 405, 400, 431, 505, 408 otherwise",
          "[stats][http]") {
    auto body = [] { return std::string("regmilter_sessions_total 1\n"); };
    auto status_of = [&](const std::string& req) {
        std::string out = stats::http::respond(stats::http::parse_request(req), body);
        return out.substr(0, out.find("\r\n"));
    };
    CHECK(status_of("GET /metrics HTTP/1.1\r\n\r\n") == "HTTP/1.1 200 OK");
    CHECK(status_of("GET / HTTP/1.1\r\n\r\n") == "HTTP/1.1 404 Not Found");
    CHECK(status_of("POST /metrics HTTP/1.1\r\n\r\n") == "HTTP/1.1 405 Method Not Allowed");
    CHECK(status_of("garbage\r\n") == "HTTP/1.1 400 Bad Request");
    CHECK(status_of(std::string(9000, 'x')) == "HTTP/1.1 431 Request Header Fields Too Large");
    CHECK(status_of("GET /metrics HTTP/3.0\r\n\r\n") == "HTTP/1.1 505 HTTP Version Not Supported");
    CHECK(stats::http::timeout_response().substr(0, 25) == "HTTP/1.1 408 Request Time");

    std::string get = stats::http::respond(stats::http::parse_request("GET /metrics HTTP/1.0\r\n\r\n"), body);
    CHECK(
        get ==
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: 27\r\n"
        "Connection: close\r\n\r\nregmilter_sessions_total 1\n");
    std::string head =
        stats::http::respond(stats::http::parse_request("HEAD /metrics HTTP/1.1\r\n\r\n"), body);
    CHECK(head.find("Content-Length: 27\r\n") != std::string::npos);
    CHECK(head.substr(head.size() - 4) == "\r\n\r\n");
    std::string post =
        stats::http::respond(stats::http::parse_request("PUT /metrics HTTP/1.1\r\n\r\n"), body);
    CHECK(post.find("\r\nAllow: GET, HEAD\r\n") != std::string::npos);
}

TEST_CASE("stats: [stats] listen takes IP:PORT; empty is off; others warn", "[stats][config]") {
    CHECK_FALSE(cfg_of("")->stats.listen);
    auto c = cfg_of("[stats]\nlisten = 127.0.0.1:9100\n");
    REQUIRE(c->stats.listen);
    CHECK(c->stats.listen->str() == "127.0.0.1:9100");
    CHECK(stats::listen_warning(*c->stats.listen).empty());
    auto v6 = cfg_of("[stats]\nlisten = [::1]:9100\n");
    REQUIRE(v6->stats.listen);
    CHECK(stats::listen_warning(*v6->stats.listen).empty());
    auto wide = cfg_of("[stats]\nlisten = 0.0.0.0:9100\n");
    CHECK(stats::listen_warning(*wide->stats.listen).find("not a loopback address") != std::string::npos);
    struct Bad {
        const char* value;
        const char* says;
    } bad[] = {
        {"localhost:9100", "not an IP address"},
        {"127.0.0.1", "a port is required"},
        {"127.0.0.1:0", "is not a number 1..65535"},
        {"127.0.0.1:99999", "is not a number 1..65535"},
    };
    for (const auto& b : bad) {
        auto r = config::load_string(std::string("[stats]\nlisten = ") + b.value + "\n", "t.ini");
        INFO(b.value);
        REQUIRE(r.problems.size() == 1);
        CHECK(r.problems[0].str().find("t.ini:2: [stats] listen") != std::string::npos);
        CHECK(r.problems[0].str().find(b.says) != std::string::npos);
    }
}
