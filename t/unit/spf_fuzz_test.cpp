// spf: robustness — thousands of generated records and macro strings (fixed
// seed, so every run is the same) through the parser, the expander and the
// evaluator: no crash, errors always explained, outputs and queries bounded.
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "dns/memory_resolver.hpp"
#include "spf/check_host.hpp"
#include "spf/domain.hpp"
#include "spf/macro.hpp"
#include "spf/record.hpp"

using namespace regmilter;
using namespace regmilter::spf;

namespace {

class Gen {
public:
    explicit Gen(uint32_t seed) : rng_(seed) {}
    size_t below(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
    bool chance(int percent) { return int(below(100)) < percent; }
    template <class T>
    const T& pick(const std::vector<T>& v) {
        return v[below(v.size())];
    }
    char byte() { return char(below(256)); }

    std::string macro_string(size_t pieces) {
        static const std::vector<std::string> parts = {
            "%{",   "}",     "%",           "%%",    "%_",   "%-",   "s",    "l",       "o",    "d", "i", "p",
            "v",    "h",     "c",           "r",     "t",    "S",    "L",    "D",       "I",    "H", "0", "1",
            "2",    "9",     "99999999999", "r",     "R",    ".",    "-",    "+",       ",",    "/", "_", "=",
            "%{d}", "%{ir}", "%{l2r-}",     "%{D3}", "%{s}", "%{p}", "%{c}", "example", ".com", "a", " ",
        };
        std::string s;
        for (size_t i = 0; i < pieces; ++i) s += chance(4) ? std::string(1, byte()) : pick(parts);
        return s;
    }

    std::string record() {
        static const std::vector<std::string> names = {
            "all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists", "redirect", "exp", "foo", "v", "",
        };
        static const std::vector<std::string> args = {
            "",
            ":",
            ":example.com",
            ":x.example.net",
            "/24",
            "//64",
            "/33",
            "//129",
            "/0",
            ":192.0.2.1",
            ":192.0.2.0/24",
            ":2001:db8::/32",
            ":1.2.3",
            "=",
            "=example.net",
            "=x.example.net",
            ":%{d}",
            ":%{ir}.bl.example.org",
            "/024",
            ":::1",
            ":a.b.c/24//64",
            ":museum",
            ":abc.123",
        };
        static const std::vector<std::string> quals = {"", "", "+", "-", "~", "?"};
        std::string r =
            chance(90) ? "v=spf1" : pick(std::vector<std::string>{"v=spf10", "V=SPF1", "v=spf1 "});
        size_t terms = below(14);
        for (size_t i = 0; i < terms; ++i) {
            r += chance(10) ? "  " : " ";
            if (chance(15)) {
                r += macro_string(1 + below(6));
                continue;
            }
            r += pick(quals) + pick(names) + pick(args);
            if (chance(10)) r += macro_string(1 + below(4));
            if (chance(3)) r += byte();
        }
        return r;
    }

private:
    std::mt19937 rng_;
};

}  // namespace

TEST_CASE("spf: fuzz: generated records parse to terms or explained errors", "[spf]") {
    Gen g(20261201);
    int parsed = 0, failed = 0;
    for (int n = 0; n < 4000; ++n) {
        std::string rec = g.record();
        ParsedRecord p = parse_record(rec);
        INFO("record \"" << rec << "\"");
        if (!p.record) {
            ++failed;
            CHECK_FALSE(p.error.empty());
            continue;
        }
        ++parsed;
        for (const Term& t : p.record->terms) {
            CHECK(t.cidr4 >= 0);
            CHECK(t.cidr4 <= 32);
            CHECK(t.cidr6 >= 0);
            CHECK(t.cidr6 <= 128);
            if (t.mechanism == Mechanism::ip4) CHECK((t.network.is_v4() && t.prefix <= 32));
            if (t.mechanism == Mechanism::ip6) CHECK((t.network.is_v6() && t.prefix <= 128));
            if (!t.domain_spec.empty()) CHECK(domain_spec_error(t.domain_spec).empty());
        }
    }
    // The generator must exercise both paths.
    CHECK(parsed > 200);
    CHECK(failed > 200);
}

TEST_CASE("spf: fuzz: generated macro strings expand within bounds", "[spf]") {
    Gen g(7208);
    int ok = 0;
    for (int n = 0; n < 4000; ++n) {
        std::string text = g.macro_string(1 + g.below(40));
        std::string sender_local;
        size_t local_len = g.chance(10) ? 5000 + g.below(5000) : g.below(40);
        for (size_t i = 0; i < local_len; ++i)
            sender_local += g.chance(90) ? char('a' + g.below(26)) : g.byte();
        std::string sender = sender_local + "@example.com";
        std::string helo;
        for (size_t i = 0, len = g.below(300); i < len; ++i) helo += g.byte();
        MacroInputs in;
        in.sender = sender;
        in.local_part = sender_local;
        in.sender_domain = "example.com";
        in.domain = "example.com";
        in.helo = helo;
        in.ip = *net::Address::parse(g.chance(50) ? "192.0.2.3" : "2001:db8::cb01");
        in.validated_name = [] { return std::string("mx.example.com"); };
        for (MacroUse use : {MacroUse::domain, MacroUse::explanation}) {
            Expansion ex = expand_macros(text, use, in, 512);
            INFO("macro string \"" << text << "\"");
            CHECK(ex.ok == macro_syntax_error(text, use).empty());
            if (!ex.ok) {
                CHECK_FALSE(ex.error.empty());
                continue;
            }
            ++ok;
            if (use == MacroUse::explanation) {
                CHECK(ex.text.size() <= 512);
                continue;
            }
            CHECK(ex.text.size() <= 4096);
            std::string name;
            if (query_name(ex.text, name)) CHECK(name.size() <= 253);
        }
    }
    CHECK(ok > 500);
}

TEST_CASE("spf: fuzz: generated records evaluate within the query limits", "[spf]") {
    Gen g(4408);
    dns::MemoryResolver dns;
    dns.set_strict(false);
    dns.add("x.example.net", dns::RrType::a, "192.0.2.1");
    dns.add("x.example.net", dns::RrType::txt, "v=spf1 a mx ptr include:example.com -all");
    dns.add("example.net", dns::RrType::txt, "v=spf1 redirect=example.com");
    for (int k = 0; k < 10; ++k)
        dns.add("example.com", dns::RrType::mx, std::to_string(k) + " x.example.net");
    for (int k = 0; k < 12; ++k)
        dns.add("3.2.0.192.in-addr.arpa", dns::RrType::ptr, "h" + std::to_string(k) + ".example.com");
    int results[7] = {};
    for (int n = 0; n < 1500; ++n) {
        std::string rec = g.record();
        dns.add("t" + std::to_string(n) + ".example.org", dns::RrType::txt, rec);
        dns.clear_log();
        Request req;
        req.ip = *net::Address::parse("192.0.2.3");
        req.sender = "user@t" + std::to_string(n) + ".example.org";
        req.helo = "mail.example.org";
        Outcome o = check_mailfrom(dns, req, Options{});
        INFO("record \"" << rec << "\": " << to_string(o.result) << " (" << o.problem << "), " << dns.count()
                         << " queries");
        // TXT, 10 terms of at most 1 + 10 queries each, %{p} (PTR + 10) for
        // each of at most 11 domains, and one exp= lookup.
        CHECK(dns.count() <= 1 + 10 * 11 + 11 * 11 + 1);
        CHECK(o.dns_terms <= 11);
        CHECK(o.void_lookups <= 3);
        results[int(o.result)]++;
    }
    // Several outcomes are reached, not only permerror.
    int kinds = 0;
    for (int r : results) kinds += r > 0;
    CHECK(kinds >= 4);
}

TEST_CASE("spf: fuzz: hostile identities give a defined result", "[spf]") {
    Gen g(5321);
    dns::MemoryResolver dns;
    dns.set_strict(false);
    dns.add("example.com", dns::RrType::txt, "v=spf1 exists:%{l}.%{h}.x.example.net a:%{H} -all exp=e.%{o}");
    dns.add("e.example.com", dns::RrType::txt, "%{s} %{L} %{h} %{c}");
    static const std::vector<std::string> domains = {
        "example.com", "", ".", "[192.0.2.1]", "192.0.2.1", "example", "a..example.com", "example.com.",
    };
    for (int n = 0; n < 2000; ++n) {
        std::string local, helo;
        for (size_t i = 0, len = g.below(g.chance(5) ? 2000 : 30); i < len; ++i)
            local += g.chance(80) ? char('a' + g.below(26)) : g.byte();
        for (size_t i = 0, len = g.below(g.chance(5) ? 400 : 30); i < len; ++i)
            helo += g.chance(80) ? char('a' + g.below(26)) : g.pick(std::vector<char>{'.', '-', ' ', '\0'});
        if (g.chance(30)) helo += ".example.com";
        Request req;
        req.ip = *net::Address::parse(g.chance(50) ? "192.0.2.3" : "::ffff:192.0.2.3");
        req.sender = g.chance(10) ? std::string() : local + "@" + g.pick(domains);
        req.helo = helo;
        dns.clear_log();
        Outcome m = check_mailfrom(dns, req, Options{});
        Outcome h = check_helo(dns, req, Options{});
        INFO("sender \"" << req.sender << "\" helo \"" << req.helo << "\": " << to_string(m.result) << "/"
                         << to_string(h.result));
        CHECK(dns.count() <= 2 * (1 + 10 * 11 + 1));
        for (const Outcome* o : {&m, &h}) {
            for (unsigned char c : o->explanation) CHECK((c >= 0x20 && c < 0x7f));
            CHECK(o->explanation.size() <= 512);
            if (o->result == Result::none) CHECK_FALSE(o->problem.empty());
        }
        for (const auto& q : dns.log()) {
            CHECK(q.find('\0') == std::string::npos);
            CHECK(q.size() <= 253 + 6);  // name + "/" + type
        }
    }
}
