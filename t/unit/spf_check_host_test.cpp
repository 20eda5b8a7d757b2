// spf: the check_host() evaluator (RFC 7208 §4-§6) over the strict in-memory
// resolver: each mechanism, include/redirect/exp, the §4.6.4 limits counted
// with MemoryResolver::count(), void lookups, temperror, the deadline,
// identities (§2.3, §2.4, §4.3), hostile input and the trace.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "dns/memory_resolver.hpp"
#include "spf/check_host.hpp"

using namespace regmilter;
using namespace regmilter::spf;
using dns::DnsStatus;
using dns::RrType;

namespace {

struct Rr {
    std::string name;
    RrType type;
    std::string rdata;
};

struct Env {
    dns::MemoryResolver dns;
    Request req;
    Options opt;
    std::vector<std::string> lines;

    explicit Env(const char* ip = "192.0.2.3") {
        req.ip = *net::Address::parse(ip);
        req.sender = "user@example.com";
        req.helo = "mail.example.com";
    }
    void add(const std::vector<Rr>& rrs) {
        for (const auto& r : rrs) dns.add(r.name, r.type, r.rdata);
    }
    void spf(const std::string& name, const std::string& record) { dns.add(name, RrType::txt, record); }
    Outcome mailfrom() { return check_mailfrom(dns, req, opt); }
    void tracing() {
        opt.trace = [this](std::string_view l) { lines.emplace_back(l); };
    }
    bool traced(const std::string& line) const {
        for (const auto& l : lines)
            if (l == line) return true;
        return false;
    }
};

std::string joined(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
    return out;
}

}  // namespace

TEST_CASE("spf: check_host: each mechanism", "[spf]") {
    struct Case {
        const char* what;
        const char* ip;
        std::string record;  // at example.com
        std::vector<Rr> rrs;
        Result want;
        std::string mechanism;
        size_t queries;
        int terms;
        int voids;
    };
    // clang-format off
    const std::vector<Case> cases = {
        {"ip4 match", "192.0.2.3", "v=spf1 ip4:192.0.2.0/24 -all", {},
         Result::pass, "ip4:192.0.2.0/24", 1, 0, 0},
        {"ip4 miss", "192.0.2.3", "v=spf1 ip4:192.0.2.4 -all", {}, Result::fail, "-all", 1, 0, 0},
        {"ip4 /0", "198.51.100.1", "v=spf1 ~ip4:0.0.0.0/0", {}, Result::softfail, "~ip4:0.0.0.0/0", 1, 0, 0},
        {"ip6 match", "2001:db8::cb01", "v=spf1 ip6:2001:db8::/32 -all", {}, Result::pass,
         "ip6:2001:db8::/32", 1, 0, 0},
        {"ip6 client vs ip4", "2001:db8::cb01", "v=spf1 ip4:0.0.0.0/0 -all", {}, Result::fail, "-all", 1, 0,
         0},
        {"ip4 client vs ip6 /0", "192.0.2.3", "v=spf1 ip6:::/0 -all", {}, Result::fail, "-all", 1, 0, 0},
        {"mapped client is ip4", "::ffff:192.0.2.3", "v=spf1 -ip6:::/0 ip4:192.0.2.3 -all", {}, Result::pass,
         "ip4:192.0.2.3", 1, 0, 0},
        {"a", "192.0.2.3", "v=spf1 a -all", {{"example.com", RrType::a, "192.0.2.3"}}, Result::pass, "a", 2,
         1, 0},
        {"a:domain/24", "192.0.2.3", "v=spf1 a:mail.example.com/24 -all",
         {{"mail.example.com", RrType::a, "192.0.2.200"}}, Result::pass, "a:mail.example.com/24", 2, 1, 0},
        {"a/32 miss", "192.0.2.3", "v=spf1 a:mail.example.com -all",
         {{"mail.example.com", RrType::a, "192.0.2.200"}}, Result::fail, "-all", 2, 1, 0},
        {"a//64 for ip6", "2001:db8::cb01", "v=spf1 a/0//64 -all",
         {{"example.com", RrType::aaaa, "2001:db8::1"}, {"example.com", RrType::a, "192.0.2.3"}},
         Result::pass, "a/0//64", 2, 1, 0},
        {"a on mapped client asks A", "::ffff:192.0.2.3", "v=spf1 a -all",
         {{"example.com", RrType::a, "192.0.2.3"}}, Result::pass, "a", 2, 1, 0},
        {"a nodata is void", "192.0.2.3", "v=spf1 a -all", {{"example.com", RrType::aaaa, "2001:db8::1"}},
         Result::fail, "-all", 2, 1, 1},
        {"mx", "192.0.2.3", "v=spf1 mx -all",
         {{"example.com", RrType::mx, "10 mx1.example.com"},
          {"example.com", RrType::mx, "20 mx2.example.com"},
          {"mx1.example.com", RrType::a, "192.0.2.9"},
          {"mx2.example.com", RrType::a, "192.0.2.3"}},
         Result::pass, "mx", 4, 1, 0},
        {"mx host without A is not void", "192.0.2.3", "v=spf1 mx -all",
         {{"example.com", RrType::mx, "10 mx1.example.com"},
          {"mx1.example.com", RrType::aaaa, "2001:db8::1"}},
         Result::fail, "-all", 3, 1, 0},
        {"null mx", "192.0.2.3", "v=spf1 mx -all", {{"example.com", RrType::mx, "0 "}}, Result::fail,
         "-all", 2, 1, 0},
        {"ptr validated", "192.0.2.3", "v=spf1 ptr -all",
         {{"3.2.0.192.in-addr.arpa", RrType::ptr, "mail.example.com"},
          {"mail.example.com", RrType::a, "192.0.2.3"}},
         Result::pass, "ptr", 3, 1, 0},
        {"ptr other domain: no address lookup", "192.0.2.3", "v=spf1 ptr:example.org -all",
         {{"3.2.0.192.in-addr.arpa", RrType::ptr, "mail.example.com"}}, Result::fail, "-all", 2, 1, 0},
        {"ptr not validated", "192.0.2.3", "v=spf1 ptr -all",
         {{"3.2.0.192.in-addr.arpa", RrType::ptr, "mail.example.com"},
          {"mail.example.com", RrType::a, "192.0.2.99"}},
         Result::fail, "-all", 3, 1, 0},
        {"ptr ip6", "2001:db8::cb01", "v=spf1 ptr -all",
         {{"1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
           RrType::ptr, "MX.Example.COM."},
          {"mx.example.com", RrType::aaaa, "2001:db8::cb01"}},
         Result::pass, "ptr", 3, 1, 0},
        {"exists", "192.0.2.3", "v=spf1 exists:%{ir}.bl.example.com -all",
         {{"3.2.0.192.bl.example.com", RrType::a, "127.0.0.2"}},
         Result::pass, "exists:%{ir}.bl.example.com", 2, 1, 0},
        {"exists asks A for ip6 clients", "2001:db8::cb01", "v=spf1 exists:%{v}.example.com -all",
         {{"ip6.example.com", RrType::a, "127.0.0.2"}}, Result::pass, "exists:%{v}.example.com", 2, 1, 0},
        {"include pass matches", "192.0.2.3", "v=spf1 include:_spf.example.net -all",
         {{"_spf.example.net", RrType::txt, "v=spf1 ip4:192.0.2.0/24 -all"}}, Result::pass,
         "include:_spf.example.net", 2, 1, 0},
        {"include fail does not match", "192.0.2.3", "v=spf1 include:_spf.example.net ?all",
         {{"_spf.example.net", RrType::txt, "v=spf1 -all"}}, Result::neutral, "?all", 2, 1, 0},
        {"include sets <domain>", "192.0.2.3", "v=spf1 include:_spf.example.net -all",
         {{"_spf.example.net", RrType::txt, "v=spf1 a -all"}, {"_spf.example.net", RrType::a, "192.0.2.3"}},
         Result::pass, "include:_spf.example.net", 3, 2, 0},
        {"redirect", "192.0.2.3", "v=spf1 ip4:198.51.100.1 redirect=_spf.example.net",
         {{"_spf.example.net", RrType::txt, "v=spf1 a ~all"}, {"_spf.example.net", RrType::a, "192.0.2.99"}},
         Result::softfail, "~all", 3, 2, 0},
        {"redirect unused after a match", "192.0.2.3", "v=spf1 redirect=_spf.example.net -all", {},
         Result::fail, "-all", 1, 0, 0},
        {"empty record", "192.0.2.3", "v=spf1", {}, Result::neutral, "default", 1, 0, 0},
        {"non-SPF TXT ignored", "192.0.2.3", "v=spf1 +all",
         {{"example.com", RrType::txt, "google-site-verification=x"}},
         Result::pass, "+all", 1, 0, 0},
    };
    // clang-format on
    for (const auto& c : cases) {
        Env env(c.ip);
        env.spf("example.com", c.record);
        env.add(c.rrs);
        Outcome o = env.mailfrom();
        INFO(c.what << ": \"" << c.record << "\": got " << to_string(o.result) << " by \"" << o.mechanism
                    << "\" (" << o.problem << "), want " << to_string(c.want) << " by \"" << c.mechanism
                    << "\"; queries " << joined(env.dns.log()));
        CHECK(o.result == c.want);
        CHECK(o.mechanism == c.mechanism);
        CHECK(env.dns.count() == c.queries);
        CHECK(o.dns_terms == c.terms);
        CHECK(o.void_lookups == c.voids);
        CHECK(env.dns.unexpected().empty());
    }
}

TEST_CASE("spf: check_host: errors and the records that cause them", "[spf]") {
    struct Case {
        const char* what;
        std::vector<Rr> rrs;
        std::vector<std::pair<std::string, DnsStatus>> failures;
        Result want;
        std::string problem;  // substring
    };
    // clang-format off
    const std::vector<Case> cases = {
        {"no TXT at all", {{"example.com", RrType::a, "192.0.2.1"}}, {}, Result::none,
         "no SPF record at example.com"},
        {"only other TXT", {{"example.com", RrType::txt, "v=spf10 -all"}}, {}, Result::none, "no SPF record"},
        {"two records",
         {{"example.com", RrType::txt, "v=spf1 -all"}, {"example.com", RrType::txt, "V=SPF1 +all"}},
         {}, Result::permerror, "2 SPF records at example.com"},
        {"TXT timeout", {}, {{"example.com", DnsStatus::timeout}}, Result::temperror,
         "TXT lookup for example.com: timeout"},
        {"TXT servfail", {}, {{"example.com", DnsStatus::servfail}}, Result::temperror, "servfail"},
        {"TXT malformed", {}, {{"example.com", DnsStatus::malformed}}, Result::temperror, "malformed"},
        {"syntax error after a match", {{"example.com", RrType::txt, "v=spf1 +all foo"}}, {},
         Result::permerror, "example.com: unknown mechanism \"foo\""},
        {"include of no record", {{"example.com", RrType::txt, "v=spf1 include:nospf.example.net -all"},
                                  {"nospf.example.net", RrType::txt, "hello"}},
         {}, Result::permerror, "include:nospf.example.net: no SPF record"},
        {"include temperror", {{"example.com", RrType::txt, "v=spf1 include:_spf.example.net -all"}},
         {{"_spf.example.net", DnsStatus::timeout}}, Result::temperror, "_spf.example.net"},
        {"include permerror", {{"example.com", RrType::txt, "v=spf1 include:_spf.example.net +all"},
                               {"_spf.example.net", RrType::txt, "v=spf1 ip4:1.2.3"}},
         {}, Result::permerror, "bad ip4 network"},
        {"redirect to no record", {{"example.com", RrType::txt, "v=spf1 redirect=nospf.example.net"},
                                   {"nospf.example.net", RrType::a, "192.0.2.1"}},
         {}, Result::permerror, "redirect=nospf.example.net"},
        {"a temperror", {{"example.com", RrType::txt, "v=spf1 a:dns.example.net -all"}},
         {{"dns.example.net", DnsStatus::servfail}}, Result::temperror, "A lookup for dns.example.net"},
        {"mx temperror",
         {{"example.com", RrType::txt, "v=spf1 mx -all"}, {"example.com", RrType::mx, "10 mx.example.net"}},
         {{"mx.example.net", DnsStatus::timeout}}, Result::temperror, "MX host mx.example.net"},
        {"exists temperror", {{"example.com", RrType::txt, "v=spf1 exists:err.example.net -all"}},
         {{"err.example.net", DnsStatus::timeout}}, Result::temperror, "A lookup for err.example.net"},
        {"ptr lookup error is no match (§5.5)", {{"example.com", RrType::txt, "v=spf1 ptr -all"}},
         {{"3.2.0.192.in-addr.arpa", DnsStatus::servfail}}, Result::fail, ""},
        {"ptr name error is skipped (§5.5)", {{"example.com", RrType::txt, "v=spf1 ptr -all"},
                                              {"3.2.0.192.in-addr.arpa", RrType::ptr, "a.example.com"},
                                              {"3.2.0.192.in-addr.arpa", RrType::ptr, "b.example.com"},
                                              {"b.example.com", RrType::a, "192.0.2.3"}},
         {{"a.example.com", DnsStatus::timeout}}, Result::pass, ""},
    };
    // clang-format on
    for (const auto& c : cases) {
        Env env;
        env.add(c.rrs);
        for (const auto& [name, st] : c.failures) env.dns.add_failure(name, st);
        Outcome o = env.mailfrom();
        INFO(c.what << ": got " << to_string(o.result) << " (" << o.problem << "), want " << to_string(c.want)
                    << " (" << c.problem << ")");
        CHECK(o.result == c.want);
        CHECK(o.problem.find(c.problem) != std::string::npos);
        CHECK(env.dns.unexpected().empty());
    }
}

TEST_CASE("spf: limits: 10 DNS-querying terms, then permerror (§4.6.4)", "[spf]") {
    std::string ten = "v=spf1", eleven;
    for (int i = 0; i < 10; ++i) ten += " a:h" + std::to_string(i) + ".example.com";
    eleven = ten + " a:h10.example.com";
    Env env;
    for (int i = 0; i <= 10; ++i)
        env.dns.add("h" + std::to_string(i) + ".example.com", RrType::a, "198.51.100.1");
    env.dns.add("h9.example.com", RrType::a, "192.0.2.3");
    env.spf("example.com", ten + " -all");
    Outcome o = env.mailfrom();
    CHECK(o.result == Result::pass);
    CHECK(o.dns_terms == 10);
    CHECK(env.dns.count() == 11);

    Env env2;
    for (int i = 0; i <= 10; ++i)
        env2.dns.add("h" + std::to_string(i) + ".example.com", RrType::a, "198.51.100.1");
    env2.dns.add("h10.example.com", RrType::a, "192.0.2.3");
    env2.spf("example.com", eleven + " -all");
    o = env2.mailfrom();
    INFO("problem: " << o.problem);
    CHECK(o.result == Result::permerror);
    CHECK(o.problem.find("more than 10 DNS-querying terms") != std::string::npos);
    CHECK(env2.dns.count() == 11);  // the 11th term makes no query

    // Configurable.
    Env env3;
    env3.opt.limits.dns_terms = 2;
    env3.spf("example.com", "v=spf1 a:h0.example.com a:h1.example.com a:h2.example.com -all");
    for (int i = 0; i < 3; ++i)
        env3.dns.add("h" + std::to_string(i) + ".example.com", RrType::a, "198.51.100.1");
    CHECK(env3.mailfrom().result == Result::permerror);
    CHECK(env3.dns.count() == 3);
}

TEST_CASE("spf: limits: include and redirect loops stop at the term limit", "[spf]") {
    Env env;
    env.spf("example.com", "v=spf1 include:loop.example.net -all");
    env.spf("loop.example.net", "v=spf1 include:example.com");
    Outcome o = env.mailfrom();
    CHECK(o.result == Result::permerror);
    CHECK(o.dns_terms == 11);
    CHECK(env.dns.count() <= 11);

    Env env2;
    env2.spf("example.com", "v=spf1 ip4:198.51.100.1 redirect=example.com");
    o = env2.mailfrom();
    CHECK(o.result == Result::permerror);
    CHECK(env2.dns.count() <= 11);
}

TEST_CASE("spf: limits: no record makes more queries than the RFC allows", "[spf]") {
    // Worst case: 10 mx terms, each with 10 MX names of no use.
    Env env("2001:db8::cb01");
    std::string rec = "v=spf1";
    for (int i = 0; i < 10; ++i) {
        std::string d = "m" + std::to_string(i) + ".example.com";
        rec += " mx:" + d;
        for (int k = 0; k < 10; ++k)
            env.dns.add(d, RrType::mx, std::to_string(k) + " h" + std::to_string(k) + "." + d);
    }
    env.spf("example.com", rec + " mx:one-more.example.com -all");
    env.dns.set_strict(false);
    Outcome o = env.mailfrom();
    INFO("queries: " << env.dns.count() << ", problem " << o.problem);
    CHECK(o.result == Result::permerror);  // the 11th term
    CHECK(env.dns.count() <= 1 + 10 * (1 + 10));
    CHECK(o.void_lookups == 0);  // empty AAAA answers of MX hosts are not void (pyspf #44)
}

TEST_CASE("spf: limits: mx names and ptr names", "[spf]") {
    Env env;
    env.spf("example.com", "v=spf1 mx -all");
    for (int k = 0; k < 11; ++k)
        env.dns.add("example.com", RrType::mx, std::to_string(k) + " mx.example.com");
    env.dns.add("mx.example.com", RrType::a, "192.0.2.3");
    Outcome o = env.mailfrom();
    CHECK(o.result == Result::permerror);
    CHECK(o.problem.find("11 MX names") != std::string::npos);
    CHECK(env.dns.count() == 2);  // no address lookups once over the limit

    env.dns.clear_log();
    env.opt.limits.mx_names = 11;
    CHECK(env.mailfrom().result == Result::pass);

    // ptr: only the first 10 names are looked at; the 11th would validate.
    Env p;
    p.spf("example.com", "v=spf1 ptr -all");
    for (int k = 0; k < 10; ++k)
        p.dns.add("3.2.0.192.in-addr.arpa", RrType::ptr, "h" + std::to_string(k) + ".example.org");
    p.dns.add("3.2.0.192.in-addr.arpa", RrType::ptr, "mail.example.com");
    p.dns.add("mail.example.com", RrType::a, "192.0.2.3");
    o = p.mailfrom();
    CHECK(o.result == Result::fail);
    CHECK(p.dns.count() == 2);
    p.dns.clear_log();
    p.opt.limits.ptr_names = 11;
    CHECK(p.mailfrom().result == Result::pass);
}

TEST_CASE("spf: limits: void lookups (§4.6.4)", "[spf]") {
    const std::string three = "v=spf1 a:n1.example.net a:n2.example.net a:n3.example.net ?all";
    Env env;
    env.dns.set_strict(false);
    env.spf("example.com", three);
    Outcome o = env.mailfrom();
    CHECK(o.result == Result::permerror);
    CHECK(o.void_lookups == 3);
    CHECK(o.problem.find("more than 2 void") != std::string::npos);

    Env two;
    two.dns.set_strict(false);
    two.spf("example.com", "v=spf1 a:n1.example.net mx:n2.example.net ?all");
    o = two.mailfrom();
    CHECK(o.result == Result::neutral);
    CHECK(o.void_lookups == 2);

    Env conf;
    conf.dns.set_strict(false);
    conf.opt.limits.void_lookups = 3;
    conf.spf("example.com", three);
    CHECK(conf.mailfrom().result == Result::neutral);

    // exists and ptr count too; an empty (NODATA) answer counts like NXDOMAIN.
    Env mixed;
    mixed.dns.set_strict(false);
    mixed.dns.add_empty("empty.example.net");
    mixed.spf("example.com", "v=spf1 exists:empty.example.net ptr exists:nx.example.net ?all");
    o = mixed.mailfrom();
    CHECK(o.result == Result::permerror);
    CHECK(o.void_lookups == 3);
}

TEST_CASE("spf: deadline: past it, no query is made and the result is temperror", "[spf]") {
    Env env;
    env.spf("example.com", "v=spf1 -all");
    env.opt.deadline = dns::Clock::now() - std::chrono::seconds(1);
    Outcome o = env.mailfrom();
    CHECK(o.result == Result::temperror);
    CHECK(o.problem.find("deadline") != std::string::npos);
    CHECK(env.dns.count() == 0);

    // A timeout answer is a temperror even where other errors are not (ptr).
    Env p;
    p.spf("example.com", "v=spf1 ip4:198.51.100.1 ptr -all");
    p.opt.deadline = dns::Clock::now() + std::chrono::hours(1);
    p.dns.add_failure("3.2.0.192.in-addr.arpa", DnsStatus::timeout);
    CHECK(p.mailfrom().result == Result::fail);  // §5.5: a PTR error is no match
}

TEST_CASE("spf: exp= explanations (§6.2)", "[spf]") {
    Env env;
    env.req.receiver = "mx.receiver.example";
    env.spf("example.com", "v=spf1 -all exp=explain._spf.%{d}");
    env.spf("explain._spf.example.com", "%{c} is not allowed to send for %{d} (%{s}, checked by %{r})");
    Outcome o = env.mailfrom();
    CHECK(o.result == Result::fail);
    CHECK(o.explanation ==
          "192.0.2.3 is not allowed to send for example.com (user@example.com, checked by "
          "mx.receiver.example)");

    struct Case {
        const char* what;
        std::vector<Rr> rrs;
        std::string want;
    };
    // clang-format off
    const std::vector<Case> cases = {
        {"two TXT", {{"x.example.com", RrType::txt, "one"}, {"x.example.com", RrType::txt, "two"}}, ""},
        {"non-ASCII", {{"x.example.com", RrType::txt, "\xEF\xBB\xBF" "Explanation"}}, ""},
        {"syntax error", {{"x.example.com", RrType::txt, "The %{x}-files."}}, ""},
        {"exp-only letters fine", {{"x.example.com", RrType::txt, "%{v} %{t1r}"}}, ""},
        {"plain", {{"x.example.com", RrType::txt, "See http://example.com/why?%{L}"}},
         "See http://example.com/why?user"},
        {"trailing dot kept", {{"x.example.com", RrType::txt, "This is a test."}}, "This is a test."},
    };
    // clang-format on
    for (const auto& c : cases) {
        Env e;
        e.spf("example.com", "v=spf1 -all exp=x.example.com");
        e.add(c.rrs);
        Outcome r = e.mailfrom();
        INFO(c.what << ": got \"" << r.explanation << "\", want \"" << c.want << "\"");
        CHECK(r.result == Result::fail);
        if (std::string(c.what) == "exp-only letters fine")
            CHECK(r.explanation.rfind("in-addr ", 0) == 0);
        else
            CHECK(r.explanation == c.want);
    }

    // Missing exp target: no explanation, and not a void lookup (exp-void).
    Env nx;
    nx.dns.set_strict(false);
    nx.spf("example.com", "v=spf1 a:n1.example.net a:n2.example.net exp=nx.example.net -all");
    o = nx.mailfrom();
    CHECK(o.result == Result::fail);
    CHECK(o.explanation.empty());
    CHECK(o.void_lookups == 2);

    // Only after a fail: softfail fetches nothing.
    Env soft;
    soft.spf("example.com", "v=spf1 ~all exp=x.example.com");
    o = soft.mailfrom();
    CHECK(o.result == Result::softfail);
    CHECK(o.explanation.empty());
    CHECK(soft.dns.count() == 1);

    // A timeout fetching it: no explanation, still fail.
    Env slow;
    slow.spf("example.com", "v=spf1 -all exp=x.example.com");
    slow.dns.add_failure("x.example.com", DnsStatus::timeout);
    o = slow.mailfrom();
    CHECK(o.result == Result::fail);
    CHECK(o.explanation.empty());

    // Control bytes from the local part never reach the explanation.
    Env crlf;
    crlf.req.sender = "evil\r\n250 ok@example.com";
    crlf.spf("example.com", "v=spf1 -all exp=x.example.com");
    crlf.spf("x.example.com", "%{l} denied");
    o = crlf.mailfrom();
    CHECK(o.result == Result::fail);
    CHECK(o.explanation.empty());
}

TEST_CASE("spf: exp= follows redirect, not include (§6.2)", "[spf]") {
    Env env;
    env.spf("example.com", "v=spf1 include:inc.example.com -all exp=top.example.com");
    env.spf("inc.example.com", "v=spf1 -all exp=inc-exp.example.com");
    env.spf("top.example.com", "Correct!");
    env.spf("inc-exp.example.com", "Wrong");
    Outcome o = env.mailfrom();
    CHECK(o.result == Result::fail);
    CHECK(o.explanation == "Correct!");
    CHECK(env.dns.unexpected().empty());

    Env r;
    r.spf("example.com", "v=spf1 exp=old.example.com redirect=new.example.com");
    r.spf("new.example.com", "v=spf1 -all exp=new-exp.%{d}");
    r.spf("new-exp.new.example.com", "From %{d} for %{o}");
    o = r.mailfrom();
    CHECK(o.result == Result::fail);
    CHECK(o.explanation == "From new.example.com for example.com");
    CHECK(r.dns.unexpected().empty());  // old.example.com is never asked
}

TEST_CASE("spf: %{p} is a validated PTR name (§7.3)", "[spf]") {
    Env env;
    env.spf("example.com", "v=spf1 exists:%{p}.ok.example.net -all");
    env.dns.add("3.2.0.192.in-addr.arpa", RrType::ptr, "spoof.example.com");
    env.dns.add("3.2.0.192.in-addr.arpa", RrType::ptr, "other.example.org");
    env.dns.add("spoof.example.com", RrType::a, "198.51.100.1");  // does not validate
    env.dns.add("other.example.org", RrType::a, "192.0.2.3");     // validates
    env.dns.add("other.example.org.ok.example.net", RrType::a, "127.0.0.2");
    Outcome o = env.mailfrom();
    CHECK(o.result == Result::pass);
    CHECK(env.dns.unexpected().empty());

    Env none;
    none.dns.set_strict(false);
    none.spf("example.com", "v=spf1 exists:%{p}.ok.example.net -all");
    o = none.mailfrom();
    CHECK(o.result == Result::fail);
    bool asked_unknown = false;
    for (const auto& q : none.dns.log()) asked_unknown = asked_unknown || q == "unknown.ok.example.net/A";
    CHECK(asked_unknown);
}

TEST_CASE("spf: identities: MAIL FROM, null sender, HELO (§2.3, §2.4, §4.3)", "[spf]") {
    Env env;
    env.spf("example.com", "v=spf1 -all exp=x.example.com");
    env.spf("x.example.com", "%{l} at %{o}");
    env.spf("mail.example.com", "v=spf1 a -all");
    env.dns.add("mail.example.com", RrType::a, "192.0.2.3");

    Outcome o = env.mailfrom();
    CHECK(o.identity == "mailfrom");
    CHECK(o.domain == "example.com");
    CHECK(o.sender == "user@example.com");
    CHECK(o.explanation == "user at example.com");

    env.req.sender = "@example.com";
    o = env.mailfrom();
    CHECK(o.sender == "postmaster@example.com");
    CHECK(o.explanation == "postmaster at example.com");

    env.req.sender = "";
    o = env.mailfrom();
    CHECK(o.sender == "postmaster@mail.example.com");
    CHECK(o.domain == "mail.example.com");
    CHECK(o.result == Result::pass);

    o = check_helo(env.dns, env.req, env.opt);
    CHECK(o.identity == "helo");
    CHECK(o.domain == "mail.example.com");
    CHECK(o.sender == "postmaster@mail.example.com");
    CHECK(o.result == Result::pass);

    env.req.sender = "user@example.com.";
    o = env.mailfrom();
    CHECK(o.domain == "example.com");
    CHECK(o.result == Result::fail);

    o = check_host(env.dns, env.req, "mail.example.com", env.opt);
    CHECK(o.result == Result::pass);
    CHECK(o.domain == "mail.example.com");
    CHECK(env.dns.unexpected().empty());
}

TEST_CASE("spf: identities that are not checkable give none without DNS", "[spf]") {
    struct Case {
        std::string sender, helo;
    };
    // clang-format off
    const std::vector<Case> cases = {
        {"", "[192.0.2.3]"},
        {"", "OEMCOMPUTER"},
        {"", ""},
        {"", "192.0.2.3"},
        {"foo@[192.0.2.3]", "mail.example.com"},
        {"foo@" + std::string(64, 'a') + ".example.com", "mail.example.com"},
        {"foo@a...example.com", "mail.example.com"},
        {"foo@example", "mail.example.com"},
        {std::string("foo@exa\0mple.com", 16), "mail.example.com"},
        {"foo@ex\xc3\xa4mple.com", "mail.example.com"},
        {"foo@example.com\r\n", "mail.example.com"},
        {"foo@" + std::string(300, 'a'), "mail.example.com"},
    };
    // clang-format on
    for (const auto& c : cases) {
        Env env;
        env.req.sender = c.sender;
        env.req.helo = c.helo;
        Outcome o = env.mailfrom();
        INFO("sender \"" << c.sender << "\" helo \"" << c.helo << "\": got " << to_string(o.result) << " ("
                         << o.problem << ")");
        CHECK(o.result == Result::none);
        CHECK_FALSE(o.problem.empty());
        CHECK(env.dns.count() == 0);
        if (c.sender.empty()) {
            CHECK(check_helo(env.dns, env.req, env.opt).result == Result::none);
            CHECK(env.dns.count() == 0);
        }
    }
}

TEST_CASE("spf: hostile macro values never reach DNS as bad names", "[spf]") {
    // A NUL in the local part: that target is treated as non-existent (no
    // query), the record still evaluates. Spaces are legal label bytes
    // (%_ makes them too), so the raw HELO may be asked as it is.
    Env env;
    env.req.sender = std::string("a\0b@example.com", 15);
    env.req.helo = "JUMPIN' JUPITER";
    env.spf("example.com", "v=spf1 exists:%{l}.example.net a:%{h}.example.net a:%{H} -all");
    env.dns.set_strict(false);
    Outcome o = env.mailfrom();
    CHECK(o.result == Result::fail);
    for (const auto& q : env.dns.log()) {
        INFO("query " << q);
        CHECK(q.find('\0') == std::string::npos);
        CHECK(q.find("a.example.net") == std::string::npos);
    }
    bool escaped = false;
    for (const auto& q : env.dns.log()) escaped = escaped || q == "jumpin%27%20jupiter/A";
    CHECK(escaped);  // %{H} is URL-escaped and may be queried

    // A long local part repeated: the name is cut to 253 from the left.
    Env big;
    big.req.sender = std::string(60, 'x') + "@example.com";
    big.spf("example.com", "v=spf1 exists:%{l}.%{l}.%{l}.%{l}.%{l}.%{l}.%{l}.bl.example.net -all");
    big.dns.set_strict(false);
    o = big.mailfrom();
    CHECK(o.result == Result::fail);
    REQUIRE(big.dns.count() == 2);
    std::string asked = big.dns.log()[1];
    CHECK(asked.size() - 2 <= 253);  // minus "/A"
    // 7 * 61 + 14 = 441 characters; keeping four labels would be 258, three fit.
    CHECK(asked == std::string(60, 'x') + "." + std::string(60, 'x') + "." + std::string(60, 'x') +
                       ".bl.example.net/A");
}

TEST_CASE("spf: a huge record is evaluated within the limits", "[spf]") {
    std::string rec = "v=spf1";
    for (int i = 0; i < 5000; ++i) rec += " ip4:198.51.100." + std::to_string(i % 256);
    Env env;
    env.spf("example.com", rec + " a a a a a a a a a a a -all");
    env.dns.add("example.com", RrType::a, "198.51.100.1");
    Outcome o = env.mailfrom();
    CHECK(o.result == Result::permerror);
    CHECK(env.dns.count() == 11);
}

TEST_CASE("spf: trace names each term and each query with its answer", "[spf]") {
    Env env;
    env.tracing();
    env.spf("example.com", "v=spf1 ip4:198.51.100.0/24 a -all");
    env.dns.add("example.com", RrType::a, "192.0.2.3");
    Outcome o = env.mailfrom();
    CHECK(o.result == Result::pass);
    INFO("trace: " << joined(env.lines));
    CHECK(env.traced("query TXT example.com -> ok [\"v=spf1 ip4:198.51.100.0/24 a -all\"]"));
    CHECK(env.traced("example.com: ip4:198.51.100.0/24 -> no match"));
    CHECK(env.traced("query A example.com -> ok [\"192.0.2.3\"]"));
    CHECK(env.traced("example.com: a -> match"));

    Env v;
    v.tracing();
    v.dns.set_strict(false);
    v.spf("example.com", "v=spf1 a:nx.example.net ?all");
    CHECK(v.mailfrom().result == Result::neutral);
    INFO("trace: " << joined(v.lines));
    CHECK(v.traced("query A nx.example.net -> nxdomain"));
    CHECK(v.traced("example.com: a:nx.example.net -> no match (void lookup 1 of at most 2)"));

    Env err;
    err.tracing();
    err.spf("example.com", "v=spf1 a:nx.example.net foo");
    o = err.mailfrom();
    CHECK(o.result == Result::permerror);
    INFO("trace: " << joined(err.lines));
    CHECK(err.traced("example.com: permerror (example.com: unknown mechanism \"foo\")"));
}

TEST_CASE("spf: a temperror's public problem leaves out the resolver's details", "[spf]") {
    // The upstream resolver's own words ("from 127.0.0.1:5353", tries, ms)
    // belong in the log, never in the reply to the SMTP client.
    struct Detailed : dns::Resolver {
        dns::MemoryResolver inner;
        dns::DnsAnswer query(std::string_view name, RrType type, dns::Deadline deadline) override {
            auto a = inner.query(name, type, deadline);
            if (a.status != DnsStatus::ok && a.status != DnsStatus::nxdomain && a.status != DnsStatus::nodata)
                a.detail = "rcode REFUSED from 127.0.0.1:5353 (1 tries, 0 ms)";
            return a;
        }
    };
    struct Case {
        const char* what;
        std::vector<Rr> rrs;
        const char* failing;
        std::string problem, public_problem;
    };
    const std::vector<Case> cases = {
        {"the record itself",
         {},
         "example.com",
         "TXT lookup for example.com: servfail (rcode REFUSED from 127.0.0.1:5353",
         "TXT lookup for example.com: servfail"},
        {"an a: target",
         {{"example.com", RrType::txt, "v=spf1 a:a.example.com -all"}},
         "a.example.com",
         "A lookup for a.example.com: servfail (rcode REFUSED",
         "A lookup for a.example.com: servfail"},
        {"an include",
         {{"example.com", RrType::txt, "v=spf1 include:inc.example.com -all"}},
         "inc.example.com",
         "TXT lookup for inc.example.com: servfail (rcode",
         "TXT lookup for inc.example.com: servfail"},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        Detailed dns;
        for (const auto& r : c.rrs) dns.inner.add(r.name, r.type, r.rdata);
        dns.inner.add_failure(c.failing, DnsStatus::servfail);
        Request req;
        req.ip = *net::Address::parse("192.0.2.3");
        req.sender = "user@example.com";
        req.helo = "mail.example.com";
        Outcome o = check_mailfrom(dns, req, Options{});
        CHECK(o.result == Result::temperror);
        CHECK(o.problem.find(c.problem) != std::string::npos);
        CHECK(o.public_problem == c.public_problem);
    }
}
