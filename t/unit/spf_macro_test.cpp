// spf: macro expansion (RFC 7208 §7): every example of §7.4, each letter,
// transformers, delimiters, URL escaping, %% %_ %-, syntax errors, bounds.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "spf/domain.hpp"
#include "spf/macro.hpp"

using namespace regmilter;
using namespace regmilter::spf;

namespace {

// RFC 7208 §7.4: sender strong-bad@email.example.com, IPv4 192.0.2.3,
// IPv6 2001:db8::cb01, <domain> email.example.com, PTR mx.example.org.
MacroInputs rfc_inputs(const char* ip = "192.0.2.3") {
    MacroInputs in;
    in.sender = "strong-bad@email.example.com";
    in.local_part = "strong-bad";
    in.sender_domain = "email.example.com";
    in.domain = "email.example.com";
    in.helo = "mx.example.org";
    in.receiver = "mx.receiver.example";
    in.ip = *net::Address::parse(ip);
    in.validated_name = [] { return std::string("mx.example.org"); };
    in.now = 1700000000;
    return in;
}

std::string expand(const std::string& text, const MacroInputs& in, MacroUse use = MacroUse::domain) {
    Expansion ex = expand_macros(text, use, in);
    INFO("expanding \"" << text << "\": " << ex.error);
    REQUIRE(ex.ok);
    return ex.text;
}

struct Case {
    std::string macro, want;
};

void check_table(const std::vector<Case>& cases, const MacroInputs& in, MacroUse use = MacroUse::domain) {
    for (const auto& c : cases) {
        std::string got = expand(c.macro, in, use);
        INFO(c.macro << ": got \"" << got << "\", want \"" << c.want << "\"");
        CHECK(got == c.want);
    }
}

}  // namespace

TEST_CASE("spf: macros: RFC 7208 §7.4 single macros", "[spf]") {
    // clang-format off
    check_table({
        {"%{s}", "strong-bad@email.example.com"},
        {"%{o}", "email.example.com"},
        {"%{d}", "email.example.com"},
        {"%{d4}", "email.example.com"},
        {"%{d3}", "email.example.com"},
        {"%{d2}", "example.com"},
        {"%{d1}", "com"},
        {"%{dr}", "com.example.email"},
        {"%{d2r}", "example.email"},
        {"%{l}", "strong-bad"},
        {"%{l-}", "strong.bad"},
        {"%{lr}", "strong-bad"},
        {"%{lr-}", "bad.strong"},
        {"%{l1r-}", "strong"},
    }, rfc_inputs());
    // clang-format on
}

TEST_CASE("spf: macros: RFC 7208 §7.4 macro strings, IPv4 and IPv6", "[spf]") {
    // clang-format off
    check_table({
        {"%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"},
        {"%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"},
        {"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
        {"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"},
        {"%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"},
    }, rfc_inputs());
    // clang-format on
    // clang-format off
    check_table({
        {"%{ir}.%{v}._spf.%{d2}",
         "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"},
    }, rfc_inputs("2001:db8::cb01"));
    // clang-format on
}

TEST_CASE("spf: macros: every letter", "[spf]") {
    MacroInputs v4 = rfc_inputs();
    // clang-format off
    check_table({
        {"%{i}", "192.0.2.3"},
        {"%{v}", "in-addr"},
        {"%{h}", "mx.example.org"},
        {"%{p}", "mx.example.org"},
        {"%{p2}", "example.org"},
    }, v4);
    // clang-format on
    // c r t only in explanations (§7.2); c is the readable address (§7.3).
    // clang-format off
    check_table({
        {"%{c}", "192.0.2.3"},
        {"%{r}", "mx.receiver.example"},
        {"%{t}", "1700000000"},
        {"%{c} from %{s}", "192.0.2.3 from strong-bad@email.example.com"},
    }, v4, MacroUse::explanation);
    // clang-format on
    MacroInputs v6 = rfc_inputs("2001:db8::cb01");
    // clang-format off
    check_table({
        {"%{i}", "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.b.0.1"},
        {"%{v}", "ip6"},
    }, v6);
    // clang-format on
    check_table({{"%{c}", "2001:db8::cb01"}}, v6, MacroUse::explanation);

    MacroInputs none = rfc_inputs();
    none.validated_name = nullptr;
    none.receiver = "";
    check_table({{"%{p}", "unknown"}}, none);
    check_table({{"%{r}", "unknown"}}, none, MacroUse::explanation);
}

TEST_CASE("spf: macros: transformers, delimiters, escapes", "[spf]") {
    MacroInputs in = rfc_inputs();
    in.local_part = "foo-bar+zip+quux";
    // clang-format off
    check_table({
        {"%{l2r+-}", "bar.foo"},       // the suite's macro-multiple-delimiters
        {"%{l+-}", "foo.bar.zip.quux"},
        {"%{l1}", "foo-bar+zip+quux"},  // no "." in it: one part
        {"%{l9r+}", "quux.zip.foo-bar"},
        {"%{l999999999999}", "foo-bar+zip+quux"},  // huge counts mean "all"
        {"%{d2R}", "example.email"},    // ABNF strings are case-insensitive
        {"%%", "%"},
        {"%_", " "},
        {"%-", "%20"},
        {"a%%b%_c%-d", "a%b c%20d"},
        {"%{d}.", "email.example.com."},
        {"", ""},
    }, in);
    // clang-format on
    in.local_part = "~jack&jill=up-a_b3.c";
    // clang-format off
    check_table({
        {"%{L}", "~jack%26jill%3Dup-a_b3.c"},  // §7.3: upper case URL-escapes
        {"%{l}", "~jack&jill=up-a_b3.c"},
        {"%{L=}", "~jack%26jill.up-a_b3.c"},
    }, in);
    // clang-format on
    in.helo = "JUMPIN' JUPITER";
    check_table({{"%{H}", "JUMPIN%27%20JUPITER"}}, in);
    in.local_part = "a..b";
    check_table({{"%{lr}", "b..a"}, {"%{l2}", ".b"}}, in);
}

TEST_CASE("spf: macros: explanation text allows spaces, domains do not", "[spf]") {
    MacroInputs in = rfc_inputs();
    CHECK(expand("%{i} is not one of %{d}'s designated mail servers.", in, MacroUse::explanation) ==
          "192.0.2.3 is not one of email.example.com's designated mail servers.");
    CHECK_FALSE(expand_macros("a b", MacroUse::domain, in).ok);
    CHECK(macro_syntax_error("The %{x}-files.", MacroUse::explanation).find("unknown macro letter") !=
          std::string::npos);
    CHECK(macro_syntax_error("ok %{c}", MacroUse::explanation).empty());
    CHECK_FALSE(macro_syntax_error("%{c}", MacroUse::domain).empty());
    CHECK(macro_syntax_error("%{c}.%{r}.%{t}", MacroUse::unknown_modifier).empty());
    CHECK_FALSE(macro_syntax_error("tab\there", MacroUse::explanation).empty());
}

TEST_CASE("spf: macros: syntax errors are reported, never expanded", "[spf]") {
    const std::vector<std::string> bad = {
        "%",
        "%(ir)",
        "%{",
        "%{d",
        "%{}",
        "%{a}",
        "%{d0}",
        "%{d2x}",
        "%{d2r2}",
        "%{ dr}",
        "x%y",
        "%{S}%",
        "a\x01"
        "b",
        "\x80",
    };
    MacroInputs in = rfc_inputs();
    for (const auto& b : bad) {
        Expansion ex = expand_macros(b, MacroUse::domain, in);
        INFO("\"" << b << "\": got ok=" << ex.ok << " text \"" << ex.text << "\"");
        CHECK_FALSE(ex.ok);
        CHECK_FALSE(ex.error.empty());
        CHECK_FALSE(macro_syntax_error(b, MacroUse::domain).empty());
    }
}

TEST_CASE("spf: macros: output is bounded whatever the inputs", "[spf]") {
    MacroInputs in = rfc_inputs();
    std::string huge_local(100000, 'x');
    in.local_part = huge_local;
    std::string spec;
    for (int i = 0; i < 200; ++i) spec += "%{L}.";
    spec += "example.com";
    // Domain use: only the right-hand end is kept; §7.3 truncation then fits 253.
    Expansion ex = expand_macros(spec, MacroUse::domain, in);
    REQUIRE(ex.ok);
    CHECK(ex.truncated);
    CHECK(ex.text.size() <= 4096);
    CHECK(ex.text.substr(ex.text.size() - 12) == ".example.com");
    std::string name;
    // §7.3 removes whole labels from the left, the 100000-character ones too.
    REQUIRE(query_name(ex.text, name));
    CHECK(name == "example.com");
    // Many short labels: truncated from the left to at most 253.
    in.local_part = "ab";
    spec.clear();
    for (int i = 0; i < 3000; ++i) spec += "%{l}.";
    spec += "example.com";
    ex = expand_macros(spec, MacroUse::domain, in);
    REQUIRE(ex.ok);
    REQUIRE(query_name(ex.text, name));
    CHECK(name.size() <= 253);
    CHECK(name.size() >= 250);
    CHECK(name.substr(name.size() - 14) == "ab.example.com");
    CHECK(name.substr(0, 3) == "ab.");  // cut on a label boundary
    // Explanations stop at max_len.
    in.local_part = huge_local;
    ex = expand_macros("%{l} %{l} %{l}", MacroUse::explanation, in, 300);
    REQUIRE(ex.ok);
    CHECK(ex.truncated);
    CHECK(ex.text.size() == 300);
}
