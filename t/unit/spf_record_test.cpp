// spf: record selection (RFC 7208 §4.5), the record parser with its permerror
// reasons (§4.6, §5, §6, §7.1) and the domain rules (§4.3, §7.3).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "spf/domain.hpp"
#include "spf/record.hpp"

using namespace regmilter::spf;

namespace {

// "+a(example.com/24//64) -ip4(192.0.2.0/24) redirect=x exp=y mod(name=value)"
std::string render(const Record& r) {
    std::string out;
    auto add = [&](const std::string& s) { out += (out.empty() ? "" : " ") + s; };
    for (const Term& t : r.terms) {
        std::string s(1, char(t.qualifier));
        s += to_string(t.mechanism);
        switch (t.mechanism) {
            case Mechanism::all:
                break;
            case Mechanism::ip4:
            case Mechanism::ip6:
                s += "(" + t.network.str() + "/" + std::to_string(t.prefix) + ")";
                break;
            case Mechanism::a:
            case Mechanism::mx:
                s += "(" + t.domain_spec + "/" + std::to_string(t.cidr4) + "//" + std::to_string(t.cidr6) +
                     ")";
                break;
            default:
                s += "(" + t.domain_spec + ")";
                break;
        }
        add(s);
    }
    if (r.redirect) add("redirect=" + *r.redirect);
    if (r.exp) add("exp=" + *r.exp);
    for (const auto& m : r.unknown) add("mod(" + m.name + "=" + m.value + ")");
    return out;
}

}  // namespace

TEST_CASE("spf: record selection: v=spf1 then a space or the end", "[spf]") {
    struct Case {
        std::string txt;
        bool spf;
    };
    // clang-format off
    const std::vector<Case> cases = {
        {"v=spf1", true},          {"v=spf1 ", true},        {"V=SpF1 -all", true},
        {"v=spf1 a mx -all", true}, {"v=spf10", false},      {"v=spf1-all", false},
        {"v=spf", false},          {"spf1 -all", false},     {"", false},
        {" v=spf1 -all", false},   {"v=spf2.0/pra", false},  {std::string("v=spf1\0", 7), false},
    };
    // clang-format on
    for (const auto& c : cases) {
        INFO("record \"" << c.txt << "\": got " << is_spf_record(c.txt) << ", want " << c.spf);
        CHECK(is_spf_record(c.txt) == c.spf);
    }
}

TEST_CASE("spf: parser: valid records and their terms", "[spf]") {
    struct Case {
        std::string record, want;
    };
    // clang-format off
    const std::vector<Case> cases = {
        {"v=spf1", ""},
        {"v=spf1 -all", "-all"},
        {"V=SPF1 ?ALL", "?all"},
        {"v=spf1  a   -all ", "+a(/32//128) -all"},
        {"v=spf1 a/24//64", "+a(/24//64)"},
        {"v=spf1 a//0", "+a(/32//0)"},
        {"v=spf1 ~mx/0", "~mx(/0//128)"},
        {"v=spf1 a:example.com", "+a(example.com/32//128)"},
        {"v=spf1 a:example.com.", "+a(example.com./32//128)"},
        {"v=spf1 mx:foo.example.com/24", "+mx(foo.example.com/24//128)"},
        {"v=spf1 mx:foo:bar/baz.example.com", "+mx(foo:bar/baz.example.com/32//128)"},
        {"v=spf1 a:foo.example.xn--zckzah", "+a(foo.example.xn--zckzah/32//128)"},
        {"v=spf1 a:%{d}", "+a(%{d}/32//128)"},
        {"v=spf1 a:mail.example...com", "+a(mail.example...com/32//128)"},
        {"v=spf1 ip4:192.0.2.1/24", "+ip4(192.0.2.1/24)"},
        {"v=spf1 -ip4:0.0.0.0/0", "-ip4(0.0.0.0/0)"},
        {"v=spf1 ip6:2001:db8::/32", "+ip6(2001:db8::/32)"},
        {"v=spf1 ip6:::FFFF:1.2.3.4", "+ip6(::ffff:1.2.3.4/128)"},
        {"v=spf1 IP6:Cafe:Babe:8000::/33", "+ip6(cafe:babe:8000::/33)"},
        {"v=spf1 include:_spf.example.com ptr ptr:example.org exists:%{i}.bl.example.com",
         "+include(_spf.example.com) +ptr() +ptr(example.org) +exists(%{i}.bl.example.com)"},
        {"v=spf1 redirect=_spf.example.com", "redirect=_spf.example.com"},
        {"v=spf1 -all exp=explain.%{d}", "-all exp=explain.%{d}"},
        {"v=spf1 exp=x.example.com redirect=y.example.com", "redirect=y.example.com exp=x.example.com"},
        {"v=spf1 moo.cow-far_out=man:dog/cat -all", "-all mod(moo.cow-far_out=man:dog/cat)"},
        {"v=spf1 default=+ other=", "mod(default=+) mod(other=)"},
        {"v=spf1 a:macro%%percent%_%_space%-url.example.com",
         "+a(macro%%percent%_%_space%-url.example.com/32//128)"},
        {"v=spf1 exists:%{l2r+-}.user.%{d2}", "+exists(%{l2r+-}.user.%{d2})"},
        {"v=spf1 exists:x.example.com%%", "+exists(x.example.com%%)"},
    };
    // clang-format on
    for (const auto& c : cases) {
        ParsedRecord p = parse_record(c.record);
        INFO("record \"" << c.record << "\": error \"" << p.error << "\"");
        REQUIRE(p.record);
        std::string got = render(*p.record);
        INFO("got \"" << got << "\", want \"" << c.want << "\"");
        CHECK(got == c.want);
    }
}

TEST_CASE("spf: parser: permerror reasons", "[spf]") {
    struct Case {
        std::string record, reason;
    };
    // clang-format off
    const std::vector<Case> cases = {
        {"v=spf1 foo", "unknown mechanism \"foo\""},
        {"v=spf1 ip4:1.2.3.4 -all moo", "unknown mechanism \"moo\""},
        {"v=spf1 -all.", "unknown mechanism \"all.\""},
        {"v=spf1 redirect:example.com", "unknown mechanism \"redirect\""},
        {"v=spf1 moo.cow/far_out=man:dog/cat", "unknown mechanism \"moo.cow\""},
        {"v=spf1 -", "missing mechanism name"},
        {"v=spf1 -all:foobar", "all takes no argument"},
        {"v=spf1 -all/8", "all takes no argument"},
        {"v=spf1 ip4:1.2.3", "bad ip4 network \"1.2.3\""},
        {"v=spf1 ip4:1.2.3.4:8080", "bad ip4 network \"1.2.3.4:8080\""},
        {"v=spf1 ip4:2001:db8::1", "bad ip4 network \"2001:db8::1\""},
        {"v=spf1 ip4:01.2.3.4", "bad ip4 network \"01.2.3.4\""},
        {"v=spf1 ip4", "ip4 needs a network"},
        {"v=spf1 ip4:", "ip4 needs a network"},
        {"v=spf1 ip4:1.2.3.4/33", "bad ip4 prefix length \"/33\""},
        {"v=spf1 ip4:1.2.3.4/032", "bad ip4 prefix length \"/032\""},
        {"v=spf1 ip4:1.2.3.4//32", "bad ip4 prefix length \"//32\""},
        {"v=spf1 ip4:1.2.3.4/", "bad ip4 prefix length \"/\""},
        {"v=spf1 ip6", "ip6 needs a network"},
        {"v=spf1 ip6:1.2.3.4", "bad ip6 network \"1.2.3.4\""},
        {"v=spf1 ip6::CAFE::BABE", "bad ip6 network \":CAFE::BABE\""},
        {"v=spf1 ip6:::1.1.1.1/129", "bad ip6 prefix length \"/129\""},
        {"v=spf1 ip6:::1.1.1.1//33", "bad ip6 prefix length \"//33\""},
        {"v=spf1 a/33", "bad ip4 prefix length \"/33\""},
        {"v=spf1 a//129", "bad ip6 prefix length \"//129\""},
        {"v=spf1 mx/24/64", "bad ip4 prefix length \"/64\""},
        {"v=spf1 a/24/16", "bad argument \"/24\""},
        {"v=spf1 a:", "empty domain-spec"},
        {"v=spf1 mx: -all", "empty domain-spec"},
        {"v=spf1 include", "include needs \":\" and a domain"},
        {"v=spf1 include: -all", "empty domain-spec"},
        {"v=spf1 exists", "exists needs \":\" and a domain"},
        {"v=spf1 exists:mail.example.com/24", "bad top label \"com/24\""},
        {"v=spf1 include:ip5.example.com/24", "bad top label \"com/24\""},
        {"v=spf1 ptr/0", "bad argument \"/0\""},
        {"v=spf1 ptr:", "empty domain-spec"},
        {"v=spf1 a:museum", "does not end in \".\" and a top label"},
        {"v=spf1 a:museum.", "does not end in \".\" and a top label"},
        {"v=spf1 a:foo-bar", "does not end in \".\" and a top label"},
        {"v=spf1 a:abc.123", "bad top label \"123\""},
        {"v=spf1 a:111.222.33.44", "bad top label \"44\""},
        {"v=spf1 a:example.-com", "bad top label \"-com\""},
        {"v=spf1 a:example.com-", "bad top label \"com-\""},
        {"v=spf1 a:example.com:8080", "bad top label \"com:8080\""},
        {"v=spf1 a:%{d}com", "does not end in \".\" and a top label"},
        {"v=spf1 -exists:%(ir).sbl.example.com", "invalid macro \"%(\""},
        {"v=spf1 exists:foo%.sbl.example.com", "invalid macro \"%.\""},
        {"v=spf1 exists:%{d", "unterminated macro"},
        {"v=spf1 exists:%{}.example.com", "empty macro"},
        {"v=spf1 a:%{a}.example.com", "unknown macro letter \"a\""},
        {"v=spf1 a:%{c}.example.com", "allowed only in exp= text"},
        {"v=spf1 a:%{r}.example.com", "allowed only in exp= text"},
        {"v=spf1 a:%{t}.example.com", "allowed only in exp= text"},
        {"v=spf1 a:%{d0}.example.com", "zero part count"},
        {"v=spf1 a:%{d2x}.example.com", "bad character \"x\""},
        {"v=spf1 a:example.com%", "\"%\" at the end"},
        {"v=spf1 1up=foo", "bad modifier name \"1up\""},
        {"v=spf1 =all", "modifier without a name"},
        {"v=spf1 foo=%abc", "bad value in modifier \"foo=%abc\""},
        {"v=spf1 redirect=a.example.com redirect=b.example.com", "redirect= appears twice"},
        {"v=spf1 exp=a.example.com -all exp=b.example.com", "exp= appears twice"},
        {"v=spf1 exp= -all", "bad exp= target: empty domain-spec"},
        {"v=spf1 exp=-all", "bad exp= target"},
        {"v=spf1 redirect=-all ?all", "bad redirect= target"},
        {"v=spf1 ?all redirect=", "bad redirect= target: empty domain-spec"},
        {"v=spf1 a:ctrl.example.com\rptr -all", "control character 0x0d at offset 25"},
        {"v=spf1 ip4:192.0.2.5\n include:x.example.com", "control character 0x0a"},
        {"v=spf1 a\tmx", "control character 0x09"},
        {std::string("v=spf1 a:foo.example.com\0", 25), "control character 0x00"},
        {"v=spf1 \x80" "a:example.net -all", "non-ASCII character 0x80"},
        {"v=spf1 a:\xEF\xBB\xBFgarbage.example.net -all", "non-ASCII character 0xef"},
        {"v=spf1 a:example.net \x96" "all", "non-ASCII character 0x96"},
        {"v=spf10 -all", "not an SPF record"},
    };
    // clang-format on
    for (const auto& c : cases) {
        ParsedRecord p = parse_record(c.record);
        INFO("record \"" << c.record << "\": got error \"" << p.error << "\", want one containing \""
                         << c.reason << "\"");
        CHECK_FALSE(p.record);
        CHECK(p.error.find(c.reason) != std::string::npos);
    }
}

TEST_CASE("spf: domain-spec endings (RFC 7208 §7.1 toplabel)", "[spf]") {
    struct Case {
        std::string label;
        bool ok;
    };
    // clang-format off
    const std::vector<Case> cases = {
        {"com", true},   {"xn--zckzah", true}, {"a1", true},  {"1a", true},   {"1-2", true},
        {"123", false},  {"-com", false},      {"com-", false}, {"", false},  {"co_m", false},
        {"c:m", false},  {"a-b-c", true},
    };
    // clang-format on
    for (const auto& c : cases) {
        INFO("toplabel \"" << c.label << "\": got " << is_toplabel(c.label) << ", want " << c.ok);
        CHECK(is_toplabel(c.label) == c.ok);
    }
    CHECK(domain_spec_error("%{d}").empty());
    CHECK(domain_spec_error("%{ir}.%{v}._spf.%{d2}").empty());
    CHECK(domain_spec_error("x.%{d}.").find("top label") != std::string::npos);
    CHECK(domain_spec_error("a.%%").empty());  // ends in a macro-expand ("%%")
}

TEST_CASE("spf: identity domains (RFC 7208 §4.3)", "[spf]") {
    const std::string label63(63, 'a'), label64(64, 'a');
    struct Case {
        std::string domain;
        bool ok;
    };
    // clang-format off
    const std::vector<Case> cases = {
        {"example.com", true},
        {"example.com.", true},
        {"mail.example.org", true},
        {label63 + ".example.com", true},
        {label64 + ".example.com", false},
        {"example", false},
        {"example.", false},
        {"", false},
        {".", false},
        {"a..example.com", false},
        {".example.com", false},
        {"example.com..", false},
        {"[192.0.2.1]", false},
        {"192.0.2.1", false},
        {"exa mple.com", false},
        {std::string("exa\0mple.com", 12), false},
        {"ex\xc3\xa4mple.com", false},
        {"ex\x7fmple.com", false},
        {"exa\\mple.com", false},
        {std::string(200, 'a') + "." + std::string(60, 'b') + ".com", false},  // > 253
        {"xn--bcher-kva.example", true},
        {"_spf.example.com", true},
    };
    // clang-format on
    for (const auto& c : cases) {
        std::string why;
        bool got = valid_identity_domain(c.domain, &why);
        INFO("domain \"" << c.domain << "\": got " << got << " (" << why << "), want " << c.ok);
        CHECK(got == c.ok);
        if (!got) CHECK_FALSE(why.empty());
    }
}

TEST_CASE("spf: query names: trailing dot, 253-character truncation, bad labels", "[spf]") {
    std::string out;
    CHECK(query_name("example.com.", out));
    CHECK(out == "example.com");
    CHECK(query_name("macro%percent  space%20url.example.com", out));  // %_ may make spaces
    CHECK_FALSE(query_name("mail.example...com", out));
    CHECK_FALSE(query_name(std::string(64, 'a') + ".example.com", out));
    CHECK_FALSE(query_name(std::string("a\0b.example.com", 15), out));
    CHECK_FALSE(query_name("a\xff.example.com", out));
    CHECK_FALSE(query_name("a\\.b.example.com", out));  // would be an escape to a resolver
    CHECK_FALSE(query_name("", out));
    CHECK_FALSE(query_name(".", out));

    // RFC 7208 §7.3: labels are removed from the left until <= 253 characters.
    std::string label(50, 'x');
    std::string name;
    for (int i = 0; i < 10; ++i) name += label + ".";
    name += "example.com";  // 10*51 + 11 = 521
    REQUIRE(query_name(name, out));
    INFO("got \"" << out << "\" (" << out.size() << " characters)");
    CHECK(out.size() <= 253);
    CHECK(out.size() == 4 * 51 + 11);
    CHECK(out.substr(out.size() - 11) == "example.com");
    CHECK(out.substr(0, 50) == label);

    // Exactly 253 stays; 254 loses its first label.
    std::string n253 = std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') + "." +
                       std::string(61, 'd');
    REQUIRE(n253.size() == 253);
    REQUIRE(query_name(n253, out));
    CHECK(out == n253);
    REQUIRE(query_name("e" + n253, out));
    CHECK(out == n253.substr(64));
    // A last label that alone is longer than 253: nothing can be kept.
    CHECK_FALSE(query_name("a." + std::string(300, 'z'), out));
}

TEST_CASE("spf: subdomain test is case-insensitive and on label boundaries", "[spf]") {
    CHECK(is_same_or_subdomain("mx.Example.com", "example.COM"));
    CHECK(is_same_or_subdomain("example.com.", "example.com"));
    CHECK(is_same_or_subdomain("example.com", "example.com."));
    CHECK_FALSE(is_same_or_subdomain("badexample.com", "example.com"));
    CHECK_FALSE(is_same_or_subdomain("com", "example.com"));
    CHECK_FALSE(is_same_or_subdomain("example.com", ""));
}
