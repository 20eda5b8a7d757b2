// policy::Session: the SMTP stage sequence the milter and regmilter-query
// both drive — replies and log lines per stage, QUIT_NC reconnects with the
// current snapshot, RSET/abort, recipients removed at end of message by the
// MTA's own argument, on_internal_error at every stage, draining. Over a
// strict MemoryResolver.
#include <catch2/catch.hpp>

#include "../support/config_fixture.hpp"
#include "../support/session_fixture.hpp"

#include <stdexcept>

#include "policy/replies.hpp"
#include "policy/session.hpp"

using namespace regmilter;
using policy::Action;
using policy::Stage;
using regmilter::testing::cfg_of;
using regmilter::testing::environment_of;
using regmilter::testing::runtime_of;

namespace {

const char* const registry_cfg =
    "[milter]\nauthserv_id = mx.example.org\n[registry reg]\nzone = reg.example\nunregistered = reject\n"
    "reject_text = %{ip} is not registered; see https://reg.example/\n[spf]\ncheck_helo = no\n";

// A registered client (192.0.2.7), an unregistered one (192.0.2.66), SPF for example.com.
void registry_zone(dns::MemoryResolver& dns) {
    dns.add("192-0-2-7.reg.example", dns::RrType::a, "127.0.0.2");
    dns.add("192-0-2-7.reg.example", dns::RrType::txt, "registered=2025-01-01");
    dns.add_empty("192-0-2-66.reg.example");
    dns.add("example.com", dns::RrType::txt, "v=spf1 ip4:192.0.2.0/24 -all");
}

policy::ConnectInfo client(const char* ip) {
    policy::ConnectInfo c;
    c.ip = net::Address::parse(ip);
    c.hostname = "mail.example.com";
    return c;
}

const policy::Macros no_macros;

bool has_header(const policy::Reply& r, const std::string& name, const std::string& part) {
    for (const auto& h : r.add_headers)
        if (h.name == name && h.value.find(part) != std::string::npos) return true;
    return false;
}

}  // namespace

// A log line without its leading "session=... " field (unique per session).
std::string without_session(const std::string& line) {
    REQUIRE(line.rfind("session=", 0) == 0);
    return line.substr(line.find(' ') + 1);
}

TEST_CASE("session: every stage answers; mail and data are logged with the queue id", "[session]") {
    dns::MemoryResolver dns;
    registry_zone(dns);
    policy::Session s(environment_of(runtime_of(cfg_of(registry_cfg), dns)));
    CHECK(s.connect(client("192.0.2.7")).action == Action::continue_);
    CHECK(s.helo("mail.example.com", no_macros).log.empty());
    auto m = s.mail("<alice@example.com>", {{"i", "Q1"}});
    CHECK(m.action == Action::continue_);
    CHECK(without_session(m.log).rfind("id=Q1 stage=mail ip=192.0.2.7 ", 0) == 0);
    CHECK(m.log.find("spf=pass") != std::string::npos);
    CHECK(m.log.find("registry=reg:listed:127.0.0.2") != std::string::npos);
    auto r = s.rcpt("<bob@example.org>", no_macros);
    CHECK(r.action == Action::continue_);
    CHECK(r.log.empty());  // nothing to say about an accepted recipient
    s.header("Subject", "hello");
    CHECK(s.end_of_headers(no_macros).action == Action::continue_);
    auto e = s.end_of_message(no_macros);
    CHECK(e.action == Action::continue_);
    CHECK(
        has_header(e, "Authentication-Results", "mx.example.org; spf=pass smtp.mailfrom=alice@example.com"));
    CHECK(has_header(e, "Authentication-Results", "dnswl=pass dns.zone=reg.example policy.ip=127.0.0.2"));
    CHECK(without_session(e.log).rfind("id=Q1 stage=data ", 0) == 0);
    // The same session names every line, before the queue id is known and after.
    CHECK(m.log.substr(0, m.log.find(' ')) == e.log.substr(0, e.log.find(' ')));
    s.close();
    CHECK(dns.unexpected().empty());
}

TEST_CASE("session: a refusal carries the codes of DESIGN's table and the configured text", "[session]") {
    dns::MemoryResolver dns;
    registry_zone(dns);
    policy::Session s(environment_of(runtime_of(cfg_of(registry_cfg), dns)));
    s.connect(client("192.0.2.66"));
    s.helo("mail.example.com", no_macros);
    auto m = s.mail("<alice@example.com>", no_macros);
    CHECK(m.action == Action::reject);
    CHECK(m.code == policy::replies::policy.reject.code);
    CHECK(m.xcode == policy::replies::policy.reject.xcode);
    CHECK(m.text == "192.0.2.66 is not registered; see https://reg.example/");
    CHECK(without_session(m.log).find("id=NOQUEUE stage=mail") == 0);
    CHECK(m.log.find("action=reject code=\"550 5.7.1\" reason=registry:unregistered:reg.example") !=
          std::string::npos);
}

TEST_CASE("session: QUIT_NC — a second connect is a new SMTP session with the current snapshot",
          "[session]") {
    dns::MemoryResolver dns;
    registry_zone(dns);
    auto first = runtime_of(cfg_of(registry_cfg), dns);
    auto second = runtime_of(cfg_of(std::string(registry_cfg) + "[bulk]\nsenders = example.com\n"), dns);
    second->generation = 2;
    std::shared_ptr<const policy::Runtime> current = first;
    policy::Environment env = environment_of(first);
    env.runtime = [&current] { return current; };
    policy::Session s(env);

    s.connect(client("192.0.2.66"));
    s.helo("a.example", no_macros);
    CHECK(s.mail("<alice@example.com>", no_macros).action == Action::reject);
    CHECK(s.runtime()->generation == 1);

    current = second;  // a reload between the two SMTP sessions
    s.connect(client("192.0.2.7"));
    CHECK(s.runtime()->generation == 2);
    CHECK(s.context().helo.empty());  // nothing of the first client remains
    s.helo("b.example", no_macros);
    auto m = s.mail("<alice@example.com>", no_macros);
    CHECK(m.action == Action::continue_);
    CHECK(s.facts().connect.ip->str() == "192.0.2.7");
    CHECK(s.facts().mail.envelope_bulk.signals == std::vector<std::string>{"sender:domain:example.com"});
}

TEST_CASE("session: RSET and abort end the transaction; the connection facts stay", "[session]") {
    dns::MemoryResolver dns;
    registry_zone(dns);
    auto table = bulk::Table::parse("out@example.org reject\n", "t").value;
    policy::Session s(environment_of(runtime_of(cfg_of(registry_cfg), dns, table)));
    s.connect(client("192.0.2.7"));
    s.helo("mail.example.com", no_macros);
    s.mail("<alice@example.com>", no_macros);
    s.rcpt("<out@example.org>", no_macros);
    s.header("Precedence", "bulk");
    s.header("Authentication-Results", "mx.example.org; spf=pass");
    REQUIRE(s.facts().rcpts.size() == 1);
    s.abort();
    CHECK(s.facts().rcpts.empty());
    CHECK(s.facts().data.forged_ar.empty());
    CHECK(s.context().mail_from.empty());
    CHECK(s.facts().connect.registry.size() == 1);  // the registry answer is the connection's

    // The next transaction sees none of the first one's headers.
    s.mail("<alice@example.com>", no_macros);
    s.rcpt("<out@example.org>", no_macros);
    s.end_of_headers(no_macros);
    auto e = s.end_of_message(no_macros);
    CHECK(e.remove_rcpts.empty());
    CHECK(e.remove_headers.empty());
    CHECK(dns.unexpected().empty());
}

TEST_CASE("session: recipients removed at end of message by the MTA's own argument, in one pass",
          "[session]") {
    dns::MemoryResolver dns;
    registry_zone(dns);
    auto table = bulk::Table::parse("@example.org reject\n", "t").value;
    policy::Session s(environment_of(runtime_of(cfg_of(registry_cfg), dns, table)));
    s.connect(client("192.0.2.7"));
    s.helo("mail.example.com", no_macros);
    s.mail("<alice@example.com>", no_macros);
    // The same mailbox twice, in different spellings, an opted-in one between.
    for (const char* arg : {"<Bob@Example.ORG>", "<ok@example.net>", " <bob@example.org> "})
        CHECK(s.rcpt(arg, no_macros).action == Action::continue_);
    s.header("List-Id", "<news.example.com>");
    CHECK(s.end_of_headers(no_macros).action == Action::continue_);
    auto e = s.end_of_message(no_macros);
    CHECK(e.action == Action::continue_);
    CHECK(e.remove_rcpts == std::vector<std::string>{"<Bob@Example.ORG>", " <bob@example.org> "});
    CHECK(e.log.find("removed=\"<Bob@Example.ORG>, <bob@example.org> \"") != std::string::npos);

    // 20,000 recipients, all but one opted out: removed in one linear pass.
    s.mail("<alice@example.com>", no_macros);
    for (int i = 0; i < 20000; ++i) s.rcpt("<r" + std::to_string(i) + "@example.org>", no_macros);
    s.rcpt("<keep@example.net>", no_macros);
    s.header("Precedence", "bulk");
    s.end_of_headers(no_macros);
    CHECK(s.end_of_message(no_macros).remove_rcpts.size() == 20000);
}

TEST_CASE("session: every recipient opted out — refused at end of headers, never an empty message",
          "[session]") {
    dns::MemoryResolver dns;
    registry_zone(dns);
    auto table = bulk::Table::parse("@example.org reject\n", "t").value;
    policy::Session s(environment_of(runtime_of(cfg_of(registry_cfg), dns, table)));
    s.connect(client("192.0.2.7"));
    s.helo("mail.example.com", no_macros);
    s.mail("<alice@example.com>", no_macros);
    s.rcpt("<a@example.org>", no_macros);
    s.rcpt("<b@example.org>", no_macros);
    s.header("Precedence", "bulk");
    auto h = s.end_of_headers(no_macros);
    CHECK(h.action == Action::reject);
    CHECK(h.code == "550");
    CHECK(h.xcode == "5.7.1");
    CHECK(h.remove_rcpts.empty());
}

TEST_CASE("session: on_internal_error at every stage, tempfail and accept; forged headers still go",
          "[session]") {
    const Stage stages[] = {Stage::connect, Stage::helo, Stage::mail, Stage::rcpt, Stage::data};
    for (const char* mode : {"tempfail", "accept"}) {
        for (Stage failing : stages) {
            INFO(mode << " at " << policy::to_string(failing));
            dns::MemoryResolver dns;
            registry_zone(dns);
            auto cfg = cfg_of(
                std::string("[milter]\nauthserv_id = mx.example.org\non_internal_error = ") + mode +
                "\n[registry reg]\nzone = reg.example\nunregistered = reject\n[spf]\ncheck_helo = no\n");
            auto env = environment_of(runtime_of(cfg, dns));
            bool armed = true;
            env.before_stage = [&](Stage st) {
                if (armed && st == failing) throw std::runtime_error("injected");
            };
            policy::Session s(env);
            std::vector<policy::Reply> replies;
            replies.push_back(s.connect(client("192.0.2.7")));
            replies.push_back(s.helo("mail.example.com", no_macros));
            replies.push_back(s.mail("<alice@example.com>", no_macros));
            replies.push_back(s.rcpt("<bob@example.org>", no_macros));
            s.header("Authentication-Results", "mx.example.org; spf=pass");  // forged
            replies.push_back(s.end_of_headers(no_macros));
            replies.push_back(s.end_of_message(no_macros));
            // The first stage that failed answers the fallback, with an error line.
            const policy::Reply* failed = nullptr;
            for (const auto& r : replies)
                if (r.log_level == policy::LogLevel::error) {
                    failed = &r;
                    break;
                }
            REQUIRE(failed);
            CHECK(failed->log.find("error=\"internal: injected\"") != std::string::npos);
            CHECK(failed->log.find(std::string("stage=") + policy::to_string(failing)) != std::string::npos);
            if (std::string(mode) == "tempfail") {
                CHECK(failed->action == Action::tempfail);
                CHECK(failed->code == "451");
                CHECK(failed->xcode == "4.3.0");
            } else {
                // accept: this message passes, and the end of message
                // still runs and removes the forged header.
                CHECK(failed->action == Action::continue_);
                for (const auto& r : replies) CHECK_FALSE(policy::refuses(r.action));
                CHECK(replies.back().remove_headers ==
                      std::vector<policy::HeaderRef>{{"Authentication-Results", 1}});
            }
        }
    }
}

TEST_CASE("session: a failure while carrying out the end of message still removes forged headers",
          "[session]") {
    dns::MemoryResolver dns;
    registry_zone(dns);
    policy::Session s(environment_of(runtime_of(cfg_of(registry_cfg), dns)));
    s.connect(client("192.0.2.7"));
    s.mail("<alice@example.com>", no_macros);
    s.rcpt("<bob@example.org>", no_macros);
    s.header("Authentication-Results", "(x) MX.EXAMPLE.ORG; spf=pass");
    s.end_of_headers(no_macros);
    s.end_of_message(no_macros);
    auto r = s.internal_error(Stage::data, "smfi_delrcpt failed");
    CHECK(r.action == Action::tempfail);
    CHECK(r.remove_headers == std::vector<policy::HeaderRef>{{"Authentication-Results", 1}});
}

TEST_CASE(
    "session: forged Authentication-Results cost at most max_forged_ar positions; more refuse the message",
    "[session]") {
    dns::MemoryResolver dns;
    registry_zone(dns);
    auto rt = runtime_of(cfg_of(registry_cfg), dns);
    for (size_t forged : {policy::max_forged_ar, policy::max_forged_ar + 1}) {
        INFO(forged << " forged headers");
        policy::Session s(environment_of(rt));
        s.connect(client("192.0.2.7"));
        s.mail("<alice@example.com>", no_macros);
        s.rcpt("<bob@example.org>", no_macros);
        s.header("Authentication-Results", "other.example; spf=pass");  // another host's: kept
        for (size_t i = 0; i < forged; ++i) s.header("Authentication-Results", "mx.example.org; spf=pass");
        auto eoh = s.end_of_headers(no_macros);
        if (forged <= policy::max_forged_ar) {
            CHECK(eoh.action == Action::continue_);
            auto eom = s.end_of_message(no_macros);
            REQUIRE(eom.remove_headers.size() == forged);
            CHECK(eom.remove_headers.front() == policy::HeaderRef{"Authentication-Results", 2});
            CHECK(eom.remove_headers.back().index == int(forged) + 1);
        } else {
            CHECK(eoh.action == Action::reject);
            CHECK(eoh.code == "550");
            CHECK(eoh.xcode == "5.7.1");
            CHECK(eoh.text == "more than 1000 Authentication-Results headers claim mx.example.org");
            CHECK(eoh.reason == "headers:forged-authentication-results");
        }
    }
}

TEST_CASE("session: draining turns new SMTP sessions away with 451 4.3.2", "[session]") {
    dns::MemoryResolver dns;
    bool draining = false;
    auto env = environment_of(runtime_of(cfg_of(registry_cfg), dns));
    env.draining = [&] { return draining; };
    policy::Session s(env);
    CHECK(s.connect(client("192.0.2.7")).action == Action::continue_);
    s.close();
    draining = true;
    auto r = s.connect(client("192.0.2.7"));
    CHECK(r.action == Action::tempfail);
    CHECK(r.code == policy::replies::shutting_down.code);
    CHECK(r.xcode == policy::replies::shutting_down.xcode);
    CHECK(r.text == policy::replies::shutting_down_text);
    CHECK(r.log.find("reason=shutting-down") != std::string::npos);
}

TEST_CASE("session: a client without an address — trusted, or accepted whole, without DNS", "[session]") {
    for (const char* mode : {"trust", "accept"}) {
        INFO(mode);
        dns::MemoryResolver dns;  // strict: any query is unexpected
        auto cfg = cfg_of(std::string(registry_cfg) + "[trust]\nunknown_client = " + mode + "\n");
        policy::Session s(environment_of(runtime_of(cfg, dns)));
        policy::ConnectInfo none;
        auto c = s.connect(none);
        if (std::string(mode) == "accept") {
            CHECK(c.action == Action::accept);
            CHECK(s.mail("<a@example.com>", no_macros).action == Action::accept);
        } else {
            CHECK(c.action == Action::continue_);
            auto m = s.mail("<a@example.com>", no_macros);
            CHECK(m.action == Action::continue_);
            CHECK(m.log.find("trust=unknown-client") != std::string::npos);
        }
        CHECK(dns.count() == 0);
    }
}

TEST_CASE("session: stages out of order are internal errors, never a crash", "[session]") {
    dns::MemoryResolver dns;
    policy::Session s(environment_of(runtime_of(cfg_of(registry_cfg), dns)));
    CHECK(s.mail("<a@example.com>", no_macros).action == Action::tempfail);
    CHECK(s.rcpt("<b@example.com>", no_macros).action == Action::tempfail);
    CHECK(s.end_of_message(no_macros).action == Action::tempfail);
    policy::Environment empty;  // no snapshot at all
    policy::Session t(empty);
    auto r = t.connect(client("192.0.2.7"));
    CHECK(r.action == Action::tempfail);
    CHECK(r.code == "451");
}

TEST_CASE("session: cold registry lookups run beside the HELO and give what cached ones give",
          "[session][threads]") {
    dns::MemoryResolver dns;
    registry_zone(dns);
    dns.add("192-0-2-7.other.example", dns::RrType::a, "127.0.0.2");
    auto cfg = cfg_of(std::string(registry_cfg) + "[registry other]\nzone = other.example\n");
    auto rt = runtime_of(cfg, dns);
    std::vector<std::string> logs;
    for (int round = 0; round < 2; ++round) {  // cold (threads), then warm (in line)
        policy::Session s(environment_of(rt));
        s.connect(client("192.0.2.7"));
        s.helo("mail.example.com", no_macros);
        auto m = s.mail("<alice@example.com>", no_macros);
        REQUIRE(s.facts().connect.registry.size() == 2);
        CHECK(s.facts().connect.registry[0].name == "reg");
        CHECK(s.facts().connect.registry[1].name == "other");
        logs.push_back(without_session(m.log));
    }
    CHECK(logs[0] == logs[1]);
    CHECK(dns.unexpected().empty());
}

TEST_CASE("session: exempt recipients reach a refused client's mail; the refusal moves to RCPT",
          "[session]") {
    dns::MemoryResolver dns;
    registry_zone(dns);
    auto cfg =
        cfg_of(std::string(registry_cfg) + "[policy]\nexempt_recipients = postmaster@ Abuse@Example.ORG\n");
    policy::Session s(environment_of(runtime_of(cfg, dns)));
    s.connect(client("192.0.2.66"));
    s.helo("mail.example.com", no_macros);
    auto m = s.mail("<alice@example.com>", no_macros);
    CHECK(m.action == Action::continue_);
    CHECK(m.log.find("reason=deferred-to-rcpt:registry:unregistered:reg.example") != std::string::npos);
    struct Case {
        const char* rcpt;
        bool exempt;
    };
    const Case cases[] = {
        {"<postmaster@example.org>", true},   {"<POSTMASTER@other.example>", true},
        {"<postmaster+x@example.org>", true}, {"<Postmaster>", true},
        {"<abuse@example.org>", true},        {"<ABUSE@EXAMPLE.org>", true},
        {"<abuse@other.example>", false},     {"<bob@example.org>", false},
        {"<postmasterx@example.org>", false}, {"<\"postmaster\"@example.org>", true},
    };
    for (const auto& c : cases) {
        INFO(c.rcpt);
        auto r = s.rcpt(c.rcpt, no_macros);
        if (c.exempt) {
            CHECK(r.action == Action::continue_);
        } else {
            CHECK(r.action == Action::reject);
            CHECK(r.code == "550");
            CHECK(r.xcode == "5.7.1");
            CHECK(r.text == "192.0.2.66 is not registered; see https://reg.example/");
            CHECK(r.log.find("reason=registry:unregistered:reg.example") != std::string::npos);
        }
    }
    s.header("Subject", "to the postmaster");
    CHECK(s.end_of_headers(no_macros).action == Action::continue_);
    auto e = s.end_of_message(no_macros);
    CHECK(e.action == Action::tag);
    CHECK(
        has_header(e, "Authentication-Results", "mx.example.org; spf=pass smtp.mailfrom=alice@example.com"));
    CHECK(has_header(e, "X-Regmilter",
                     "for exempt recipients only; others got 550 5.7.1 192.0.2.66 is not registered; see "
                     "https://reg.example/"));
    // A registered client is untouched by the list: MAIL passes, every recipient too.
    s.connect(client("192.0.2.7"));
    s.helo("mail.example.com", no_macros);
    CHECK(s.mail("<alice@example.com>", no_macros).log.find("deferred") == std::string::npos);
    CHECK(s.rcpt("<bob@example.org>", no_macros).action == Action::continue_);
    s.close();
}

TEST_CASE("session: without exempt recipients a refused client is refused at MAIL", "[session]") {
    dns::MemoryResolver dns;
    registry_zone(dns);
    policy::Session s(environment_of(runtime_of(cfg_of(registry_cfg), dns)));
    s.connect(client("192.0.2.66"));
    s.helo("mail.example.com", no_macros);
    CHECK(s.mail("<alice@example.com>", no_macros).action == Action::reject);
    s.close();
}
