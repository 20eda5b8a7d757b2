// policy: every branch of the decision table. decide_*() are pure, so the
// facts are built by hand; gather_*() are covered with a strict MemoryResolver.
#include <catch2/catch.hpp>

#include "../support/config_fixture.hpp"

#include <algorithm>
#include <atomic>

#include "dns/memory_resolver.hpp"
#include "policy/auth_results.hpp"
#include "policy/checks.hpp"
#include "policy/policy.hpp"

using namespace regmilter;
using policy::Action;
using regmilter::testing::cfg_of;

namespace {

std::chrono::system_clock::time_point utc(const char* date, int seconds_into_day = 0) {
    return std::chrono::system_clock::time_point(
        std::chrono::seconds(*util::parse_date(date) * 86400 + seconds_into_day));
}

registry::Entry entry(const char* name, const char* zone, registry::Status st, const char* code = "",
                      registry::Meaning m = registry::Meaning::registered) {
    registry::Entry e;
    e.name = name;
    e.zone = zone;
    e.meaning = m;
    e.status = st;
    e.code = code;
    if (st == registry::Status::error) e.error = "timeout";
    return e;
}

spf::Outcome spf_outcome(spf::Result r, const char* identity = "mailfrom",
                         const char* domain = "example.com") {
    spf::Outcome o;
    o.result = r;
    o.identity = identity;
    o.domain = domain;
    o.sender = std::string(identity) == "helo" ? std::string("postmaster@") + domain
                                               : std::string("alice@") + domain;
    if (r == spf::Result::permerror) o.problem = "two SPF records";
    if (r == spf::Result::temperror) o.problem = "timeout";
    return o;
}

policy::Facts base_facts() {
    policy::Facts f;
    f.now = utc("2026-06-01", 12 * 3600);
    f.authserv_id = "mx.example.org";
    f.connect.ip = net::Address::parse("192.0.2.7");
    f.mail.mail_from = "alice@example.com";
    f.mail.helo = "mail.example.com";
    return f;
}

std::string header_text(const std::vector<policy::Header>& hs) {
    std::string s;
    for (const auto& h : hs) s += h.name + ": " + h.value + "\n";
    return s;
}

bool has_header(const policy::Reply& v, const std::string& name, const std::string& part) {
    return std::any_of(v.add_headers.begin(), v.add_headers.end(), [&](const policy::Header& h) {
        return h.name == name && h.value.find(part) != std::string::npos;
    });
}

policy::Recipient rcpt_of(const char* addr, bulk::Choice c) {
    policy::Recipient r;
    r.arg = std::string("<") + addr + ">";
    r.rcpt = addr;
    r.bulk.choice = c;
    r.bulk.key = c == bulk::Choice::reject ? addr : "default";
    return r;
}

}  // namespace

TEST_CASE("registry meaning=registered: each action for each result", "[policy]") {
    struct Case {
        const char* name;
        const char* action;  // unregistered = ...
        const char* on_error;
        registry::Status status;
        Action want;
        const char* code;
        const char* xcode;
    };
    const Case cases[] = {
        {"listed, reject configured", "reject", "accept", registry::Status::listed, Action::continue_, "",
         ""},
        {"unlisted accept", "accept", "accept", registry::Status::unlisted, Action::continue_, "", ""},
        {"unlisted tag", "tag", "accept", registry::Status::unlisted, Action::tag, "", ""},
        {"unlisted tempfail", "tempfail", "accept", registry::Status::unlisted, Action::tempfail, "451",
         "4.7.1"},
        {"unlisted reject", "reject", "accept", registry::Status::unlisted, Action::reject, "550", "5.7.1"},
        {"error, on_error accept", "reject", "accept", registry::Status::error, Action::continue_, "", ""},
        {"error, on_error tempfail", "reject", "tempfail", registry::Status::error, Action::tempfail, "451",
         "4.4.3"},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        auto cfg = cfg_of(std::string("[registry reg]\nzone = reg.example\nunregistered = ") + c.action +
                          "\non_error = " + c.on_error + "\n");
        auto f = base_facts();
        f.connect.registry = {
            entry("reg", "reg.example", c.status, c.status == registry::Status::listed ? "127.0.0.2" : "")};
        auto v = policy::decide_mail(f, *cfg);
        INFO("got " << policy::to_string(v.action) << " " << v.code << " " << v.xcode << " " << v.text);
        CHECK(v.action == c.want);
        CHECK(v.code == c.code);
        CHECK(v.xcode == c.xcode);
    }
}

TEST_CASE("registry texts: default, reject_text placeholders, tag header", "[policy]") {
    auto cfg = cfg_of("[registry reg]\nzone = reg.example\nunregistered = reject\n");
    auto f = base_facts();
    f.connect.registry = {entry("reg", "reg.example", registry::Status::unlisted)};
    auto v = policy::decide_mail(f, *cfg);
    CHECK(v.text == "192.0.2.7 is not a registered mail server (not in reg.example)");
    CHECK(v.reason == "registry:unregistered:reg.example");

    auto cfg2 = cfg_of(
        "[registry reg]\nzone = reg.example\nunregistered = tag\n"
        "reject_text = %{ip} is not registered in %{zone}; see https://reg.example/register\n");
    auto d = policy::decide_data(f, *cfg2);
    CHECK(has_header(
        d, "X-Regmilter",
        "unregistered 192.0.2.7 (not in reg.example); 192.0.2.7 is not registered in reg.example; see "
        "https://reg.example/register"));
    auto cfg3 = cfg_of(
        "[registry reg]\nzone = reg.example\nunregistered = reject\n"
        "reject_text = %{ip} is not registered; see https://reg.example/register\n");
    CHECK(policy::decide_mail(f, *cfg3).text ==
          "192.0.2.7 is not registered; see https://reg.example/register");
}

TEST_CASE("registry meaning=blocked: each action when listed", "[policy]") {
    struct Case {
        const char* action;
        Action want;
        const char* code;
        const char* xcode;
    };
    const Case cases[] = {
        {"accept", Action::continue_, "", ""},
        {"tag", Action::tag, "", ""},
        {"tempfail", Action::tempfail, "451", "4.7.1"},
        {"reject", Action::reject, "550", "5.7.1"},
    };
    for (const auto& c : cases) {
        INFO(c.action);
        auto cfg = cfg_of(std::string("[registry bl]\nzone = bl.example\nmeaning = blocked\nlisted = ") +
                          c.action + "\n");
        auto f = base_facts();
        auto e = entry("bl", "bl.example", registry::Status::listed, "127.0.0.2", registry::Meaning::blocked);
        e.info = "spam source";
        f.connect.registry = {e};
        auto v = policy::decide_mail(f, *cfg);
        CHECK(v.action == c.want);
        CHECK(v.code == c.code);
        CHECK(v.xcode == c.xcode);
        if (c.want == Action::reject)
            CHECK(v.text == "192.0.2.7 is listed in bl.example (127.0.0.2: spam source)");
        // Unlisted in a block-list: nothing to say.
        f.connect.registry = {
            entry("bl", "bl.example", registry::Status::unlisted, "", registry::Meaning::blocked)};
        CHECK(policy::decide_mail(f, *cfg).action == Action::continue_);
    }
}

TEST_CASE("enforce_after: before the date reject and tempfail become tag; from 00:00 UTC enforced",
          "[policy]") {
    struct Case {
        const char* action;
        const char* now;
        int secs;
        Action want;
    };
    const Case cases[] = {
        {"reject", "2026-02-28", 86399, Action::tag},    {"reject", "2026-03-01", 0, Action::reject},
        {"reject", "2026-03-02", 0, Action::reject},     {"tempfail", "2026-02-28", 43200, Action::tag},
        {"tempfail", "2026-03-01", 1, Action::tempfail}, {"tag", "2026-01-01", 0, Action::tag},
        {"accept", "2026-01-01", 0, Action::continue_},
    };
    for (const auto& c : cases) {
        INFO(c.action << " at " << c.now << " +" << c.secs << "s");
        auto cfg = cfg_of(
            std::string("[registry reg]\nzone = reg.example\nenforce_after = 2026-03-01\nunregistered = ") +
            c.action + "\n");
        auto f = base_facts();
        f.now = utc(c.now, c.secs);
        f.connect.registry = {entry("reg", "reg.example", registry::Status::unlisted)};
        auto v = policy::decide_mail(f, *cfg);
        CHECK(v.action == c.want);
        if (c.want == Action::tag && std::string(c.action) != "tag") {
            auto d = policy::decide_data(f, *cfg);
            CHECK(has_header(d, "X-Regmilter",
                             "unregistered 192.0.2.7 (not in reg.example) (enforced from 2026-03-01)"));
        }
    }
    // The same for a block-list.
    auto bl = cfg_of("[registry bl]\nzone = bl.example\nmeaning = blocked\nenforce_after = 2026-03-01\n");
    auto f = base_facts();
    f.now = utc("2026-02-01");
    f.connect.registry = {
        entry("bl", "bl.example", registry::Status::listed, "127.0.0.2", registry::Meaning::blocked)};
    CHECK(policy::decide_mail(f, *bl).action == Action::tag);
    f.now = utc("2026-03-01");
    CHECK(policy::decide_mail(f, *bl).action == Action::reject);
}

TEST_CASE("several registered zones: listed in any one counts; an error caps the others at tag", "[policy]") {
    auto cfg = cfg_of(
        "[registry a]\nzone = a.example\nunregistered = reject\n"
        "[registry b]\nzone = b.example\nunregistered = reject\n");
    auto f = base_facts();
    f.connect.registry = {entry("a", "a.example", registry::Status::unlisted),
                          entry("b", "b.example", registry::Status::listed, "127.0.0.2")};
    CHECK(policy::decide_mail(f, *cfg).action == Action::continue_);

    f.connect.registry = {entry("a", "a.example", registry::Status::unlisted),
                          entry("b", "b.example", registry::Status::unlisted)};
    auto v = policy::decide_mail(f, *cfg);
    CHECK(v.action == Action::reject);
    CHECK(v.text == "192.0.2.7 is not a registered mail server (not in a.example)");  // first zone's text

    // b could not be asked: "unregistered" is not certain, no permanent reject.
    f.connect.registry = {entry("a", "a.example", registry::Status::unlisted),
                          entry("b", "b.example", registry::Status::error)};
    CHECK(policy::decide_mail(f, *cfg).action == Action::tag);
}

TEST_CASE("require_fcrdns: a listed server without FCrDNS is unregistered", "[policy]") {
    auto cfg = cfg_of("[registry reg]\nzone = reg.example\nunregistered = reject\nrequire_fcrdns = yes\n");
    auto f = base_facts();
    auto e = entry("reg", "reg.example", registry::Status::listed, "127.0.0.2");
    e.fcrdns_checked = true;
    e.fcrdns_ok = false;
    f.connect.registry = {e};
    auto v = policy::decide_mail(f, *cfg);
    CHECK(v.action == Action::reject);
    CHECK(v.text ==
          "192.0.2.7 is not a registered mail server (in reg.example without forward-confirmed reverse DNS)");
    f.connect.registry[0].fcrdns_ok = true;
    CHECK(policy::decide_mail(f, *cfg).action == Action::continue_);
}

TEST_CASE("SPF: each action for each result, with its codes", "[policy]") {
    struct Case {
        spf::Result r;
        const char* key;
        const char* action;
        Action want;
        const char* code;
        const char* xcode;
    };
    using R = spf::Result;
    const Case cases[] = {
        {R::pass, "pass", "accept", Action::continue_, "", ""},
        {R::pass, "pass", "tag", Action::tag, "", ""},
        {R::fail, "fail", "reject", Action::reject, "550", "5.7.23"},
        {R::fail, "fail", "tempfail", Action::tempfail, "451", "4.7.23"},
        {R::fail, "fail", "tag", Action::tag, "", ""},
        {R::fail, "fail", "accept", Action::continue_, "", ""},
        {R::softfail, "softfail", "reject", Action::reject, "550", "5.7.23"},
        {R::softfail, "softfail", "tempfail", Action::tempfail, "451", "4.7.23"},
        {R::softfail, "softfail", "tag", Action::tag, "", ""},
        {R::neutral, "neutral", "reject", Action::reject, "550", "5.7.23"},
        {R::neutral, "neutral", "accept", Action::continue_, "", ""},
        {R::none, "none", "reject", Action::reject, "550", "5.7.23"},
        {R::none, "none", "tag", Action::tag, "", ""},
        {R::permerror, "permerror", "reject", Action::reject, "550", "5.7.24"},
        {R::permerror, "permerror", "tempfail", Action::tempfail, "451", "4.7.24"},
        {R::permerror, "permerror", "tag", Action::tag, "", ""},
        {R::temperror, "temperror", "tempfail", Action::tempfail, "451", "4.7.24"},
        // A temporary failure never becomes a permanent reject.
        {R::temperror, "temperror", "reject", Action::reject, "550", "5.7.24"},  // only when configured
        {R::temperror, "temperror", "accept", Action::continue_, "", ""},
    };
    for (const auto& c : cases) {
        INFO(c.key << " = " << c.action);
        auto cfg = cfg_of(std::string("[spf]\n") + c.key + " = " + c.action + "\n");
        auto f = base_facts();
        f.mail.spf_mail = spf_outcome(c.r);
        auto v = policy::decide_mail(f, *cfg);
        INFO("got " << policy::to_string(v.action) << " " << v.code << " " << v.xcode << " " << v.text);
        CHECK(v.action == c.want);
        CHECK(v.code == c.code);
        CHECK(v.xcode == c.xcode);
        // The enhanced code's class always matches the reply's.
        if (!v.code.empty()) CHECK(v.xcode[0] == v.code[0]);
    }
}

TEST_CASE("SPF texts: exp= explanation, default, permerror, temperror", "[policy]") {
    auto cfg = cfg_of("[spf]\npermerror = reject\n");
    auto f = base_facts();
    f.mail.spf_mail = spf_outcome(spf::Result::fail);
    CHECK(policy::decide_mail(f, *cfg).text ==
          "192.0.2.7 is not allowed to send mail for example.com (SPF fail)");
    f.mail.spf_mail->explanation = "See https://example.com/why for 192.0.2.7";
    CHECK(policy::decide_mail(f, *cfg).text == "See https://example.com/why for 192.0.2.7");
    f.mail.spf_mail = spf_outcome(spf::Result::permerror);
    CHECK(policy::decide_mail(f, *cfg).text == "SPF record of example.com is invalid: two SPF records");
    // A temperror's reply names the lookup, never the resolver or timings (the log line has them).
    f.mail.spf_mail = spf_outcome(spf::Result::temperror);
    f.mail.spf_mail->problem =
        "TXT lookup for example.com: servfail (rcode REFUSED from 127.0.0.1:5353, 1 tries, 0 ms)";
    f.mail.spf_mail->public_problem = "TXT lookup for example.com: servfail";
    CHECK(policy::decide_mail(f, *cfg).text ==
          "cannot check SPF of example.com (TXT lookup for example.com: servfail), try again later");
    CHECK(policy::decide_mail(f, *cfg).add_headers.empty());
    CHECK(
        policy::log_line({}, f, *cfg, policy::Stage::mail, policy::decide_mail(f, *cfg))
            .find("spf_problem=\"TXT lookup for example.com: servfail (rcode REFUSED from 127.0.0.1:5353") !=
        std::string::npos);
}

TEST_CASE("SPF HELO: a HELO fail acts like a MAIL FROM fail, even when MAIL FROM passes", "[policy]") {
    auto f = base_facts();
    f.mail.spf_mail = spf_outcome(spf::Result::pass);
    f.mail.spf_helo = spf_outcome(spf::Result::fail, "helo", "mail.example.com");
    auto v = policy::decide_mail(f, *cfg_of(""));
    CHECK(v.action == Action::reject);
    CHECK(v.code == "550");
    CHECK(v.xcode == "5.7.23");
    CHECK(v.text == "192.0.2.7 is not allowed to send mail for HELO mail.example.com (SPF fail)");
    CHECK(v.reason == "spf:helo:fail");
    // check_helo = no: the HELO result is not acted on.
    CHECK(policy::decide_mail(f, *cfg_of("[spf]\ncheck_helo = no\n")).action == Action::continue_);
    // Other HELO results are only reported.
    f.mail.spf_helo = spf_outcome(spf::Result::softfail, "helo", "mail.example.com");
    CHECK(policy::decide_mail(f, *cfg_of("")).action == Action::continue_);
}

TEST_CASE("several verdicts: the strongest wins; at equal strength the registry gives the text", "[policy]") {
    struct Case {
        const char* reg;
        spf::Result spf;
        Action want;
        const char* reason;
    };
    const Case cases[] = {
        {"tag", spf::Result::fail, Action::reject, "spf:mailfrom:fail"},
        {"reject", spf::Result::fail, Action::reject, "registry:unregistered:reg.example"},
        {"tempfail", spf::Result::fail, Action::reject, "spf:mailfrom:fail"},
        {"reject", spf::Result::temperror, Action::reject, "registry:unregistered:reg.example"},
        {"tempfail", spf::Result::temperror, Action::tempfail, "registry:unregistered:reg.example"},
        {"accept", spf::Result::temperror, Action::tempfail, "spf:mailfrom:temperror"},
        {"tag", spf::Result::softfail, Action::tag, "registry:unregistered:reg.example"},
        {"accept", spf::Result::pass, Action::continue_, "registry:unregistered:reg.example"},
    };
    for (const auto& c : cases) {
        INFO(c.reg << " + spf " << spf::to_string(c.spf));
        auto cfg = cfg_of(std::string("[registry reg]\nzone = reg.example\nunregistered = ") + c.reg + "\n");
        auto f = base_facts();
        f.connect.registry = {entry("reg", "reg.example", registry::Status::unlisted)};
        f.mail.spf_mail = spf_outcome(c.spf);
        auto v = policy::decide_mail(f, *cfg);
        INFO("got " << policy::to_string(v.action) << " " << v.reason);
        CHECK(v.action == c.want);
        CHECK(v.reason == c.reason);
    }
}

TEST_CASE("observe mode refuses nothing and says what enforce would do", "[policy]") {
    auto cfg = cfg_of(
        "[milter]\nmode = observe\n[registry reg]\nzone = reg.example\nunregistered = reject\n"
        "[bulk]\nsenders = news.example\n");
    auto f = base_facts();
    f.connect.registry = {entry("reg", "reg.example", registry::Status::unlisted)};
    f.mail.spf_mail = spf_outcome(spf::Result::temperror);
    auto v = policy::decide_mail(f, *cfg);
    CHECK(v.action == Action::continue_);
    CHECK(v.code.empty());
    CHECK(v.reason == "observe:registry:unregistered:reg.example");
    auto d = policy::decide_data(f, *cfg);
    CHECK(d.action == Action::continue_);
    CHECK(
        has_header(d, "X-Regmilter",
                   "would reject: 550 5.7.1 192.0.2.7 is not a registered mail server (not in reg.example)"));
    CHECK(has_header(d, "X-Regmilter", "would tempfail: 451 4.7.24 cannot check SPF of example.com"));

    // Bulk: nobody refused at RCPT or removed at end of message.
    f.mail.envelope_bulk.signals = {"sender:domain:news.example"};
    auto out = rcpt_of("bob@example.org", bulk::Choice::reject);
    CHECK(policy::decide_rcpt(f, out, *cfg).action == Action::continue_);
    f.rcpts = {out};
    auto d2 = policy::decide_data(f, *cfg);
    CHECK(d2.action == Action::continue_);
    CHECK(d2.remove_rcpts.empty());
    CHECK(has_header(d2, "X-Regmilter",
                     "would reject bulk mail (sender:domain:news.example) for 1 recipient(s)"));
}

TEST_CASE("trust bypasses registry and SPF, not the bulk opt-out", "[policy]") {
    auto cfg = cfg_of(
        "[trust]\nnetworks = 10.0.0.0/8\ntls_issuers = Example CA\n"
        "[registry reg]\nzone = reg.example\nunregistered = reject\n[bulk]\nsenders = news.example\n");
    struct Case {
        const char* name;
        const char* ip;
        std::vector<std::pair<std::string, std::string>> macros;
        policy::TrustReason want;
    };
    const Case cases[] = {
        {"trusted network", "10.1.2.3", {}, policy::TrustReason::network},
        {"SMTP AUTH", "192.0.2.7", {{"auth_authen", "alice"}}, policy::TrustReason::authenticated},
        {"empty auth_authen", "192.0.2.7", {{"auth_authen", ""}}, policy::TrustReason::none},
        {"verified cert from a trusted issuer",
         "192.0.2.7",
         {{"cert_issuer", "Example CA"}, {"verify", "OK"}},
         policy::TrustReason::tls},
        {"unverified cert",
         "192.0.2.7",
         {{"cert_issuer", "Example CA"}, {"verify", "FAIL"}},
         policy::TrustReason::none},
        {"other issuer",
         "192.0.2.7",
         {{"cert_issuer", "Other CA"}, {"verify", "OK"}},
         policy::TrustReason::none},
        {"nothing", "192.0.2.7", {}, policy::TrustReason::none},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        dns::MemoryResolver dns;  // strict: a trusted client causes no SPF query
        dns.add("192-0-2-7.reg.example", dns::RrType::a, "127.0.0.3");  // registered bulk sender
        dns.add("192-0-2-7.reg.example", dns::RrType::txt, "bulk sender");
        dns.add("example.com", dns::RrType::txt, "v=spf1 -all");
        policy::Context ctx;
        ctx.ip = net::Address::parse(c.ip);
        ctx.helo = "";
        for (const auto& m : c.macros) ctx.set_macro(m.first, m.second);
        ctx.mail_from = "alice@example.com";
        policy::Facts f = base_facts();
        f.connect = policy::gather_connect(ctx, *cfg, dns, dns::no_deadline());
        f.mail = policy::gather_mail(ctx, f, *cfg, dns, dns::no_deadline());
        CHECK(dns.unexpected().empty());
        CHECK(f.mail.trust == c.want);
        auto v = policy::decide_mail(f, *cfg);
        if (c.want == policy::TrustReason::none) {
            CHECK(v.action == Action::reject);  // SPF -all
            CHECK(f.mail.spf_mail);
        } else {
            CHECK(v.action == Action::continue_);
            CHECK_FALSE(f.mail.spf_mail);
            // The bulk opt-out still applies (registry bulk code, or [bulk] senders).
            f.mail.envelope_bulk.signals.push_back("sender:domain:news.example");
            CHECK(policy::decide_rcpt(f, rcpt_of("bob@example.org", bulk::Choice::reject), *cfg).action ==
                  Action::reject);
        }
    }
}

TEST_CASE("trusted network: the registry is not asked at all", "[policy]") {
    auto cfg = cfg_of("[registry reg]\nzone = reg.example\n");
    dns::MemoryResolver dns;
    policy::Context ctx;
    ctx.ip = net::Address::parse("127.0.0.1");
    auto c = policy::gather_connect(ctx, *cfg, dns, dns::no_deadline());
    CHECK(c.network_trusted);
    CHECK(c.registry.empty());
    CHECK(dns.count() == 0);
}

TEST_CASE("unknown client address: trust or accept, never a crash", "[policy]") {
    dns::MemoryResolver dns;
    policy::Context ctx;  // no ip
    ctx.hostname = "unknown";
    ctx.mail_from = "alice@example.com";
    for (const char* mode : {"trust", "accept"}) {
        INFO(mode);
        auto cfg = cfg_of(std::string("[trust]\nunknown_client = ") + mode +
                          "\n[registry reg]\nzone = reg.example\n");
        policy::Facts f;
        f.connect = policy::gather_connect(ctx, *cfg, dns, dns::no_deadline());
        CHECK(f.connect.unknown_client);
        auto c = policy::decide_connect(f, *cfg);
        CHECK(c.action == (std::string(mode) == "accept" ? Action::accept : Action::continue_));
        f.mail = policy::gather_mail(ctx, f, *cfg, dns, dns::no_deadline());
        CHECK(f.mail.trust == policy::TrustReason::unknown_client);
        CHECK(policy::decide_mail(f, *cfg).action == Action::continue_);
        auto d = policy::decide_data(f, *cfg);
        CHECK(d.action == Action::continue_);
        CHECK(policy::log_line(ctx, f, *cfg, policy::Stage::data, d).find("ip=unknown") != std::string::npos);
    }
    CHECK(dns.count() == 0);
}

TEST_CASE("bulk known at envelope time: per recipient at RCPT", "[policy]") {
    struct Case {
        const char* action;
        bulk::Choice choice;
        Action want;
    };
    using C = bulk::Choice;
    const Case cases[] = {
        {"reject", C::reject, Action::reject},
        {"reject", C::accept, Action::continue_},
        {"discard", C::reject, Action::continue_},
        {"tag", C::reject, Action::continue_},
    };
    for (const auto& c : cases) {
        INFO(c.action << " " << util::name_of(c.choice));
        auto cfg = cfg_of(std::string("[bulk]\naction = ") + c.action + "\n");
        auto f = base_facts();
        f.mail.envelope_bulk.signals = {"registry:bulk:reg.example"};
        auto v = policy::decide_rcpt(f, rcpt_of("Bob@Example.org", c.choice), *cfg);
        CHECK(v.action == c.want);
        if (c.want == Action::reject) {
            CHECK(v.code == "550");
            CHECK(v.xcode == "5.7.1");
            CHECK(v.text == "bob@example.org does not accept bulk mail");
        }
        // Not bulk: nobody is refused.
        f.mail.envelope_bulk.signals.clear();
        CHECK(policy::decide_rcpt(f, rcpt_of("bob@example.org", c.choice), *cfg).action == Action::continue_);
    }
}

TEST_CASE("bulk at end of message: remove, reject or discard when none is left, tag", "[policy]") {
    using C = bulk::Choice;
    struct Case {
        const char* name;
        const char* action;
        bool envelope;  // else header-known
        std::vector<C> rcpts;
        Action want;
        size_t removed;
    };
    const Case cases[] = {
        {"header bulk, reject, some opted out",
         "reject",
         false,
         {C::accept, C::reject},
         Action::continue_,
         1},
        {"header bulk, reject, all opted out", "reject", false, {C::reject, C::reject}, Action::reject, 0},
        {"header bulk, discard, some", "discard", false, {C::reject, C::accept}, Action::continue_, 1},
        {"header bulk, discard, all", "discard", false, {C::reject}, Action::discard, 0},
        {"envelope bulk, discard, some", "discard", true, {C::reject, C::accept}, Action::continue_, 1},
        {"envelope bulk, discard, all", "discard", true, {C::reject}, Action::discard, 0},
        {"header bulk, tag", "tag", false, {C::reject, C::accept}, Action::tag, 0},
        {"header bulk, nobody opted out", "reject", false, {C::accept}, Action::continue_, 0},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        auto cfg = cfg_of(std::string("[bulk]\naction = ") + c.action + "\n");
        auto f = base_facts();
        if (c.envelope)
            f.mail.envelope_bulk.signals = {"sender:domain:news.example"};
        else
            f.data.header_bulk.observe("List-Id", "<news.example>");
        int i = 0;
        for (auto ch : c.rcpts) {
            std::string a = "r" + std::to_string(i++) + "@example.org";
            f.rcpts.push_back(rcpt_of(a.c_str(), ch));
        }
        auto v = policy::decide_data(f, *cfg);
        INFO("got " << policy::to_string(v.action) << " removed " << v.remove_rcpts.size());
        CHECK(v.action == c.want);
        CHECK(v.remove_rcpts.size() == c.removed);
        if (c.want == Action::reject) {
            CHECK(v.code == "550");
            CHECK(v.xcode == "5.7.1");
            CHECK(v.text == "no recipient accepts bulk mail (header:list-id)");
        }
        if (std::string(c.action) == "tag")
            CHECK(has_header(v, "X-Regmilter", "bulk (header:list-id); 1 recipient(s) opted out"));
        if (c.removed) {
            for (const auto& r : v.remove_rcpts) {
                auto it = std::find_if(f.rcpts.begin(), f.rcpts.end(),
                                       [&](const policy::Recipient& x) { return x.arg == r; });
                REQUIRE(it != f.rcpts.end());
                CHECK(it->bulk.choice == C::reject);
            }
        }
    }
}

TEST_CASE("gather_rcpt and observe_header: table lookup, header signals, forged A-R", "[policy]") {
    auto cfg = cfg_of("[milter]\nauthserv_id = mx.example.org\n");
    auto t = bulk::Table::parse("bob@example.org reject\n", "t").value;
    policy::Facts f = base_facts();
    auto r = policy::gather_rcpt("<Bob+x@example.org>", *cfg, t.get());
    CHECK(r.arg == "<Bob+x@example.org>");
    CHECK(r.rcpt == "Bob+x@example.org");
    CHECK(r.bulk.choice == bulk::Choice::reject);
    CHECK(r.bulk.key == "bob@example.org");

    policy::DataFacts d;
    const std::vector<policy::Header> headers = {
        {"Authentication-Results", "other.example; spf=pass"},
        {"Authentication-Results", " MX.example.org; spf=pass smtp.mailfrom=x@y"},
        {"authentication-results", "(comment) mx.example.org; dkim=pass"},
        {"Authentication-Results", "\"mx.example.org\"; spf=pass"},
        {"List-Id", "<x.example>"}};
    for (const auto& h : headers) policy::observe_header(d, h.name, h.value, "mx.example.org");
    CHECK(d.header_bulk.signals(cfg->bulk).signals == std::vector<std::string>{"header:list-id"});
    REQUIRE(d.forged_ar.size() == 3);
    CHECK(d.forged_ar[0] == policy::HeaderRef{"Authentication-Results", 2});
    CHECK(d.forged_ar[1] == policy::HeaderRef{"authentication-results", 3});
    CHECK(d.forged_ar[2] == policy::HeaderRef{"Authentication-Results", 4});
    f.data = d;
    CHECK(policy::decide_data(f, *cfg).remove_headers == d.forged_ar);
}

TEST_CASE("Authentication-Results authserv-id: any bytes, never out of bounds", "[policy]") {
    struct Case {
        std::string value, want;
    };
    const Case cases[] = {
        {"mx.example.org; spf=pass", "mx.example.org"},
        {"  mx.example.org", "mx.example.org"},
        {"(a) (b (nested)) mx.example.org; x", "mx.example.org"},
        {"(\\\\) mx.example.org", "mx.example.org"},  // an escaped backslash, then ')'
        {"(\\) mx.example.org", ""},                  // an escaped ')': the comment never ends
        {"(\\", ""},  // a comment ending in a backslash (it once threw out_of_range)
        {"(", ""},
        {"\\", ""},
        {"(a\\)b) c", "c"},
        {"\"mx.example.org\" ; spf=pass", "mx.example.org"},
        {"\"mx\\.example", "mx.example"},
        {"\"", ""},
        {"", ""},
        {"((((((((", ""},
        {std::string(100000, '('), ""},
        {std::string("a\0b", 3), "a"},
    };
    for (const auto& c : cases) {
        INFO("value \"" << c.value.substr(0, 40) << "\"");
        CHECK(policy::ar_authserv_id(c.value) == c.want);
    }
    // Every prefix of a hostile value: bounded, no throw.
    std::string hostile = "(c\\(d\\\\)e\"(\\";
    for (size_t n = 0; n <= hostile.size(); ++n) CHECK_NOTHROW(policy::ar_authserv_id(hostile.substr(0, n)));
}

TEST_CASE("headers: Authentication-Results with spf and dnswl, Received-SPF", "[policy]") {
    auto f = base_facts();
    auto e = entry("reg", "reg.example", registry::Status::listed, "127.0.0.2");
    e.info = "since 2025";
    f.connect.registry = {
        e, entry("bl", "bl.example", registry::Status::unlisted, "", registry::Meaning::blocked)};
    f.mail.spf_mail = spf_outcome(spf::Result::pass);
    f.mail.spf_mail->mechanism = "ip4:192.0.2.0/24";
    f.mail.spf_helo = spf_outcome(spf::Result::none, "helo", "mail.example.com");
    auto both = cfg_of(
        "[registry reg]\nzone = reg.example\n[registry bl]\nzone = bl.example\nmeaning = blocked\n"
        "[spf]\nheaders = both\n");
    auto d = policy::decide_data(f, *both);
    REQUIRE(d.add_headers.size() >= 2);
    CHECK(d.add_headers[0].name == "Authentication-Results");
    CHECK(d.add_headers[0].value ==
          "mx.example.org; spf=pass smtp.mailfrom=alice@example.com; spf=none smtp.helo=mail.example.com; "
          "dnswl=pass dns.zone=reg.example policy.ip=127.0.0.2 policy.txt=\"since 2025\"");
    CHECK(d.add_headers[1].name == "Received-SPF");
    CHECK(d.add_headers[1].value ==
          "pass (mx.example.org: domain of alice@example.com designates 192.0.2.7 as permitted sender) "
          "client-ip=192.0.2.7; envelope-from=\"alice@example.com\"; helo=mail.example.com; "
          "receiver=mx.example.org; "
          "identity=mailfrom; mechanism=\"ip4:192.0.2.0/24\"");

    // Unregistered: dnswl=none; received-spf only: A-R keeps dnswl but no spf=.
    f.connect.registry = {entry("reg", "reg.example", registry::Status::unlisted)};
    auto rs = cfg_of("[registry reg]\nzone = reg.example\n[spf]\nheaders = received-spf\n");
    auto d2 = policy::decide_data(f, *rs);
    CHECK(d2.add_headers[0].value == "mx.example.org; dnswl=none dns.zone=reg.example");
    CHECK(d2.add_headers[1].name == "Received-SPF");

    // No registry, headers = none: no result header at all.
    f.connect.registry.clear();
    CHECK(header_text(policy::decide_data(f, *cfg_of("[spf]\nheaders = none\n")).add_headers) == "");
    // Trusted by SMTP AUTH: A-R says so, and nothing about SPF.
    f.mail.trust = policy::TrustReason::authenticated;
    f.mail.spf_mail.reset();
    f.mail.spf_helo.reset();
    CHECK(policy::decide_data(f, *cfg_of("")).add_headers.at(0).value == "mx.example.org; auth=pass");
    f.mail.trust = policy::TrustReason::network;
    CHECK(policy::decide_data(f, *cfg_of("")).add_headers.at(0).value == "mx.example.org; none");
}

TEST_CASE("header values are quoted: hostile sender and registry text", "[policy]") {
    auto f = base_facts();
    f.mail.spf_mail = spf_outcome(spf::Result::fail);
    f.mail.spf_mail->sender = "\"a b;c\"@example.com";
    auto e = entry("reg", "reg.example", registry::Status::listed, "127.0.0.2");
    e.info = "x\"y\\z";
    f.connect.registry = {e};
    auto hs = policy::result_headers(f, *cfg_of("[registry reg]\nzone = reg.example\n"));
    REQUIRE(hs.size() == 1);
    CHECK(hs[0].value ==
          "mx.example.org; spf=fail smtp.mailfrom=\"\\\"a b;c\\\"@example.com\"; dnswl=pass "
          "dns.zone=reg.example "
          "policy.ip=127.0.0.2 policy.txt=\"x\\\"y\\\\z\"");
    for (const auto& h : hs) CHECK(h.value.find_first_of("\r\n") == std::string::npos);
}

TEST_CASE("tag headers: one X-Regmilter per policy", "[policy]") {
    auto cfg = cfg_of("[registry reg]\nzone = reg.example\n[spf]\nsoftfail = tag\n");
    auto f = base_facts();
    f.connect.registry = {entry("reg", "reg.example", registry::Status::unlisted)};
    f.mail.spf_mail = spf_outcome(spf::Result::softfail);
    auto d = policy::decide_data(f, *cfg);
    CHECK(d.action == Action::tag);
    size_t n = std::count_if(d.add_headers.begin(), d.add_headers.end(),
                             [](const policy::Header& h) { return h.name == "X-Regmilter"; });
    CHECK(n == 2);
    CHECK(has_header(d, "X-Regmilter", "unregistered 192.0.2.7 (not in reg.example)"));
    CHECK(has_header(d, "X-Regmilter", "spf softfail for example.com (192.0.2.7)"));
}

TEST_CASE("internal errors answer on_internal_error", "[policy]") {
    auto t = policy::internal_error_reply(cfg_of("").get());
    CHECK(t.action == Action::tempfail);
    CHECK(t.code == "451");
    CHECK(t.xcode == "4.3.0");
    CHECK(policy::internal_error_reply(cfg_of("[milter]\non_internal_error = accept\n").get()).action ==
          Action::accept);
    CHECK(policy::internal_error_reply(nullptr).action == Action::tempfail);
}

TEST_CASE("several transactions: begin_transaction keeps the connection facts", "[policy]") {
    policy::Context ctx;
    ctx.ip = net::Address::parse("192.0.2.7");
    ctx.helo = "mail.example.com";
    ctx.mail_from = "a@example.com";
    auto f = base_facts();
    f.connect.registry = {entry("reg", "reg.example", registry::Status::listed, "127.0.0.2")};
    f.mail.spf_mail = spf_outcome(spf::Result::pass);
    f.rcpts = {rcpt_of("b@example.org", bulk::Choice::accept)};
    f.data.header_bulk.observe("List-Id", "<x>");
    policy::begin_transaction(ctx, f);
    CHECK(ctx.helo == "mail.example.com");
    CHECK(ctx.mail_from.empty());
    CHECK(f.connect.registry.size() == 1);
    CHECK_FALSE(f.mail.spf_mail);
    CHECK(f.rcpts.empty());
    bulk::Settings on;
    on.header_signals = true;
    CHECK_FALSE(f.data.header_bulk.signals(on).any());
}

TEST_CASE("log line: key=value, queue id first, hostile values quoted", "[policy]") {
    policy::Context ctx;
    ctx.session_id = "S1";
    ctx.set_macro("i", "4XyZ12");
    ctx.helo = "evil\"helo\r\n";
    ctx.mail_from = "a b@example.com";
    auto f = base_facts();
    auto e = entry("reg", "reg.example", registry::Status::listed, "127.0.0.3");
    e.bulk = true;
    f.connect.registry = {e};
    f.mail.spf_mail = spf_outcome(spf::Result::fail);
    f.mail.envelope_bulk.signals = {"registry:bulk:reg.example"};
    policy::Reply v;
    v.action = Action::reject;
    v.code = "550";
    v.xcode = "5.7.23";
    v.reason = "spf:mailfrom:fail";
    CHECK(policy::log_line(ctx, f, *cfg_of(""), policy::Stage::rcpt, v, "bob@example.org") ==
          "session=S1 id=4XyZ12 stage=rcpt ip=192.0.2.7 helo=\"evil\\\"helo\\x0d\\x0a\" from=\"<a "
          "b@example.com>\" "
          "rcpt=<bob@example.org> spf=fail registry=reg:listed:127.0.0.3:bulk bulk=registry:bulk:reg.example "
          "action=reject code=\"550 5.7.23\" reason=spf:mailfrom:fail");
}

TEST_CASE("hostile DNS text in replies and headers: printable and bounded", "[policy]") {
    auto f = base_facts();
    f.mail.spf_mail = spf_outcome(spf::Result::fail);
    f.mail.spf_mail->explanation = "line1\r\nX-Injected: yes\r\n" + std::string(2000, 'x');
    auto v = policy::decide_mail(f, *cfg_of(""));
    CHECK(v.text.find_first_of("\r\n") == std::string::npos);
    CHECK(v.text.size() <= 400);
    CHECK(v.text.rfind("line1??X-Injected: yes??xxx", 0) == 0);
    auto d = policy::decide_data(f, *cfg_of("[spf]\nfail = tag\n"));
    for (const auto& h : d.add_headers) {
        CHECK(h.value.find_first_of("\r\n") == std::string::npos);
        CHECK(h.value.size() < 998);
    }
}

TEST_CASE("trusted forwarders skip SPF: by network, by HELO name confirmed by A", "[policy]") {
    auto cfg =
        cfg_of("[spf]\ntrusted_forwarders = 198.51.100.0/24\ntrusted_forwarder_helos = Fwd.Example.NET\n");
    struct Case {
        const char* name;
        const char* ip;
        const char* helo;
        bool skipped;
    };
    const Case cases[] = {
        {"forwarder network", "198.51.100.3", "x.example", true},
        {"HELO name with matching A", "192.0.2.50", "fwd.example.net", true},
        {"HELO name, other address", "192.0.2.51", "FWD.example.net.", false},
        {"other HELO", "192.0.2.50", "mail.example.com", false},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        dns::MemoryResolver dns;
        dns.set_strict(false);
        dns.add("fwd.example.net", dns::RrType::a, "192.0.2.50");
        dns.add("example.com", dns::RrType::txt, "v=spf1 -all");
        policy::Context ctx;
        ctx.ip = net::Address::parse(c.ip);
        ctx.helo = c.helo;
        ctx.mail_from = "a@example.com";
        auto f = base_facts();
        f.connect = policy::gather_connect(ctx, *cfg, dns, dns::no_deadline());
        f.mail = policy::gather_mail(ctx, f, *cfg, dns, dns::no_deadline());
        CHECK(f.mail.spf_skipped_forwarder == c.skipped);
        CHECK(bool(f.mail.spf_mail) == !c.skipped);
        CHECK(policy::decide_mail(f, *cfg).action == (c.skipped ? Action::continue_ : Action::reject));
    }
}

TEST_CASE("Authentication-Results: a sender without a domain is quoted", "[policy]") {
    auto f = base_facts();
    f.mail.spf_mail = spf_outcome(spf::Result::none);
    f.mail.spf_mail->sender = "postmaster@";
    auto hs = policy::result_headers(f, *cfg_of(""));
    REQUIRE(hs.size() == 1);
    CHECK(hs[0].value == "mx.example.org; spf=none smtp.mailfrom=\"postmaster@\"");
}

TEST_CASE("gather_connect with a resolver per zone: same entries, in file order", "[policy]") {
    auto cfg = cfg_of(
        "[registry a]\nzone = a.example\n[registry b]\nzone = b.example\nformat = reversed\n"
        "[registry c]\nzone = c.example\nmeaning = blocked\n");
    dns::MemoryResolver fixture;
    fixture.add("192-0-2-7.a.example", dns::RrType::a, "127.0.0.2");
    fixture.add("192-0-2-7.a.example", dns::RrType::txt, "a info");
    fixture.add("7.2.0.192.b.example", dns::RrType::a, "127.0.0.3");
    fixture.add_failure("192-0-2-7.c.example", dns::DnsStatus::timeout);
    policy::Context ctx;
    ctx.ip = net::Address::parse("192.0.2.7");
    auto one = policy::gather_connect(ctx, *cfg, fixture, dns::no_deadline());
    std::atomic<int> made{0};
    policy::ResolverFactory make = [&]() -> std::unique_ptr<dns::Resolver> {
        ++made;  // called from the lookup threads at once
        return std::make_unique<dns::MemoryResolver>(fixture);
    };
    auto many = policy::gather_connect(ctx, *cfg, make, dns::no_deadline());
    CHECK(made == 3);
    REQUIRE(many.registry.size() == 3);
    for (size_t i = 0; i < 3; ++i) {
        INFO(i);
        CHECK(many.registry[i].name == one.registry[i].name);
        CHECK(many.registry[i].status == one.registry[i].status);
        CHECK(many.registry[i].code == one.registry[i].code);
        CHECK(many.registry[i].info == one.registry[i].info);
        CHECK(many.registry[i].bulk == one.registry[i].bulk);
    }
    CHECK(many.registry[0].info == "a info");
    CHECK(many.registry[1].bulk);
    CHECK(many.registry[2].status == registry::Status::error);
    // A factory that gives nothing: errors, not a crash.
    auto none = policy::gather_connect(
        ctx, *cfg, policy::ResolverFactory([] { return std::unique_ptr<dns::Resolver>(); }),
        dns::no_deadline());
    REQUIRE(none.registry.size() == 3);
    CHECK(none.registry[0].status == registry::Status::error);
    CHECK(none.registry[0].error == "no resolver");
}

TEST_CASE("log line: who was trusted: the AUTH user, the certificate's issuer", "[policy]") {
    auto cfg = cfg_of("");
    auto f = base_facts();
    policy::Context ctx;
    ctx.session_id = "S2";
    ctx.set_macro("auth_authen", "alice");
    ctx.set_macro("cert_issuer", "/O=Example/CN=Example+20Internal+20CA");
    policy::Reply v;
    f.mail.trust = policy::TrustReason::authenticated;
    std::string line = policy::log_line(ctx, f, *cfg, policy::Stage::mail, v);
    CHECK(line.find(" trust=authenticated auth_user=alice ") != std::string::npos);
    CHECK(line.find("tls_issuer") == std::string::npos);
    f.mail.trust = policy::TrustReason::tls;
    line = policy::log_line(ctx, f, *cfg, policy::Stage::mail, v);
    CHECK(line.find(" trust=tls tls_issuer=\"/O=Example/CN=Example+20Internal+20CA\" ") != std::string::npos);
    CHECK(line.find("auth_user") == std::string::npos);
    f.mail.trust = policy::TrustReason::network;
    line = policy::log_line(ctx, f, *cfg, policy::Stage::mail, v);
    CHECK(line.find("auth_user") == std::string::npos);
    CHECK(line.find("tls_issuer") == std::string::npos);
}

TEST_CASE("stage_needs: what the MTA may leave out, per configuration", "[policy][negotiate]") {
    struct Case {
        const char* ini;
        bool rcpt_reply, eoh;
    };
    const Case cases[] = {
        {"", false, false},
        {"[bulk]\ndefault = reject\n", true, true},
        {"[bulk]\ndefault = reject\naction = tag\n", false, true},
        {"[bulk]\ndefault = reject\n[milter]\nmode = observe\n", false, true},
        {"[policy]\nexempt_recipients = postmaster@\n", true, false},
        {"[registry r]\nzone = r.example\nunregistered = greylist\n", true, false},
        {"[registry r]\nzone = r.example\nmeaning = blocked\nlisted = greylist\n", true, false},
        {"[registry r]\nzone = r.example\nunregistered = greylist\n[milter]\nmode = observe\n", true, false},
        {"[registry r]\nzone = r.example\nunregistered = tempfail\n", false, false},
        {"[ratelimit]\nunregistered_messages = 10\n", true, false},
        {"[ratelimit]\nunregistered_recipients = 10\n", true, false},
        {"[ratelimit]\nregistered_messages = 10\n", true, false},
        {"[ratelimit]\nregistered_recipients = 10\n", true, false},
        {"[ratelimit]\nwindow = 60\n", false, false},
        {"[bulk]\nzone = optout.example\n", true, true},
        {"[bulk]\nzone = optout.example\naction = tag\n", true, true},
        {"[bulk]\nzone = optout.example\non_error = tempfail\n", true, true},
        {"[bulk]\nzone = optout.example\n[milter]\nmode = observe\n", true, true},
    };
    for (const auto& c : cases) {
        INFO(c.ini);
        auto cfg = cfg_of(c.ini);
        policy::StageNeeds n = policy::stage_needs(*cfg);
        CHECK_FALSE(n.helo_reply);
        CHECK(n.rcpt_reply == c.rcpt_reply);
        CHECK(n.eoh == c.eoh);
    }
}
