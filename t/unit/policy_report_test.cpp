// policy: a whole simulated session (simulate() through policy::Session)
// and its JSON (to_json), against a strict MemoryResolver.
#include <catch2/catch.hpp>

#include "../support/config_fixture.hpp"
#include "../support/session_fixture.hpp"

#include "dns/memory_resolver.hpp"
#include "policy/report.hpp"

using namespace regmilter;
using regmilter::testing::cfg_of;
using regmilter::testing::environment_of;
using regmilter::testing::runtime_of;

namespace {

bool contains(const std::string& hay, const std::string& needle) {
    INFO("want " << needle << " in " << hay);
    return hay.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("session: registered bulk sender, one recipient opted out, one in", "[policy]") {
    auto cfg = cfg_of(
        "[milter]\nauthserv_id = mx.example.org\n[registry reg]\nzone = reg.example\n"
        "unregistered = reject\n[spf]\ncheck_helo = no\n");
    dns::MemoryResolver dns;
    dns.add("192-0-2-7.reg.example", dns::RrType::a, "127.0.0.3");
    dns.add("192-0-2-7.reg.example", dns::RrType::txt, "bulk sender since 2025");
    dns.add("news.example", dns::RrType::txt, "v=spf1 ip4:192.0.2.0/24 -all");
    auto table = bulk::Table::parse("out@example.org reject\n", "t").value;

    policy::Scenario in;
    in.ip = net::Address::parse("192.0.2.7");
    in.helo = "mail.news.example";
    in.mail_from = "promo@news.example";
    in.rcpts = {"out@example.org", "in@example.org"};
    policy::Session s(environment_of(runtime_of(cfg, dns, table)));
    auto t = policy::simulate(s, in);
    CHECK(dns.unexpected().empty());
    REQUIRE(t.replies.size() == 6);  // connect helo mail rcpt rcpt data
    CHECK(t.replies[3].reply.action == policy::Action::reject);
    CHECK(t.replies[3].reply.xcode == "5.7.1");
    CHECK(t.replies[4].reply.action == policy::Action::continue_);
    CHECK(s.facts().rcpts.size() == 1);

    std::string j = policy::to_json(s, t);
    CHECK(contains(j, "\"spf\":{\"identity\":\"mailfrom\",\"domain\":\"news.example\""));
    CHECK(contains(j, "\"result\":\"pass\""));
    CHECK(contains(
        j,
        "\"registry\":[{\"name\":\"reg\",\"zone\":\"reg.example\",\"query\":\"192-0-2-7.reg.example\","
        "\"status\":\"listed\",\"code\":\"127.0.0.3\",\"meaning\":\"bulk\",\"info\":\"bulk sender since "
        "2025\",\"error\":\"\"}]"));
    CHECK(contains(j, "\"bulk\":{\"bulk\":true,\"signals\":[\"registry:bulk:reg.example\"]"));
    CHECK(contains(j,
                   "{\"stage\":\"rcpt\",\"rcpt\":\"out@example.org\",\"action\":\"reject\",\"code\":\"550\","
                   "\"xcode\":\"5.7.1\",\"text\":\"out@example.org does not accept bulk mail\""));
    CHECK(contains(
        j,
        "\"headers\":[\"Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=promo@news.example; "
        "dnswl=pass dns.zone=reg.example policy.ip=127.0.0.3 policy.txt=\\\"bulk sender since 2025\\\"\"]"));
}

TEST_CASE("session: a refusal at MAIL FROM ends it there", "[policy]") {
    auto cfg = cfg_of("[registry reg]\nzone = reg.example\nunregistered = reject\n[spf]\ncheck_helo = no\n");
    dns::MemoryResolver dns;
    dns.add_empty("192-0-2-8.reg.example");
    dns.add("example.com", dns::RrType::txt, "v=spf1 -all");
    policy::Scenario in;
    in.ip = net::Address::parse("192.0.2.8");
    in.mail_from = "a@example.com";
    in.rcpts = {"b@example.org"};
    policy::Session s(environment_of(runtime_of(cfg, dns)));
    auto t = policy::simulate(s, in);
    REQUIRE(t.replies.size() == 3);
    CHECK(t.replies[2].reply.action == policy::Action::reject);
    CHECK(t.replies[2].reply.reason == "registry:unregistered:reg.example");
    std::string j = policy::to_json(s, t);
    CHECK(contains(j, "\"headers\":[]"));
    CHECK(contains(j, "\"status\":\"unlisted\""));
}

TEST_CASE("session: header-known bulk removes the opted-out recipient at end of message", "[policy]") {
    auto cfg = cfg_of("[trust]\nnetworks = 192.0.2.0/24\n");
    dns::MemoryResolver dns;  // trusted: no query at all
    auto table = bulk::Table::parse("@example.org reject\n", "t").value;
    policy::Scenario in;
    in.ip = net::Address::parse("192.0.2.9");
    in.mail_from = "list@lists.example";
    in.rcpts = {"a@example.org", "b@example.net"};
    in.headers = {{"List-Id", "<x.lists.example>"}, {"Subject", "hi"}};
    policy::Session s(environment_of(runtime_of(cfg, dns, table)));
    auto t = policy::simulate(s, in);
    CHECK(dns.count() == 0);
    REQUIRE(t.replies.back().stage == policy::Stage::data);
    CHECK(t.replies.back().reply.remove_rcpts == std::vector<std::string>{"<a@example.org>"});
    std::string j = policy::to_json(s, t);
    CHECK(contains(j, "\"trust\":\"network\""));
    CHECK(contains(j, "\"skipped\":\"trusted:network\""));
    CHECK(contains(j, "\"rcpts_to_remove\":[\"a@example.org\"]"));
    CHECK(contains(j, "\"signals\":[\"header:list-id\"]"));
}
