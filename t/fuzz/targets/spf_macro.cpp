// Fuzz target: the SPF macro expander (lib/spf/macro). Input lines:
//   1: the macro string; then, each optional, in order:
//   2: <sender>  3: <helo>  4: <domain>  5: client IP  6: receiver  7: %{p}
// Each use (domain-spec, explanation, unknown modifier) is checked and
// expanded. Properties: expansion succeeds exactly when the syntax check
// passes; the output stays within its documented bound; a domain expansion
// gives a query name of at most 253 characters or none.
#include <cstddef>
#include <cstdint>

#include "spf/domain.hpp"
#include "spf/macro.hpp"
#include "t/fuzz/fuzz.hpp"

using namespace regmilter;
using namespace regmilter::spf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::vector<std::string_view> l = fuzz::lines_of(fuzz::as_text(data, size));
    if (l.empty()) l.emplace_back();
    auto line = [&](size_t i, std::string_view dflt) { return i < l.size() ? l[i] : dflt; };
    std::string_view text = l[0];
    std::string sender(line(1, "strong-bad@email.example.com"));
    std::string helo(line(2, "mx.example.org"));
    std::string domain(line(3, "email.example.com"));
    auto ip = net::Address::parse(line(4, "192.0.2.3"));
    std::string receiver(line(5, "mx.example.net"));
    std::string validated(line(6, "mail.example.com"));

    MacroInputs in;
    in.sender = sender;
    size_t at = sender.rfind('@');
    in.local_part =
        at == std::string::npos ? std::string_view("postmaster") : std::string_view(sender).substr(0, at);
    in.sender_domain =
        at == std::string::npos ? std::string_view(sender) : std::string_view(sender).substr(at + 1);
    in.domain = domain;
    in.helo = helo;
    in.receiver = receiver;
    in.ip = ip ? ip->unmapped() : net::Address{};
    in.validated_name = [&] { return validated; };
    in.now = 1780315200;

    for (MacroUse use : {MacroUse::domain, MacroUse::explanation, MacroUse::unknown_modifier}) {
        std::string syntax = macro_syntax_error(text, use);
        for (size_t max_len : {size_t(512), size_t(16)}) {
            Expansion ex = expand_macros(text, use, in, max_len);
            FUZZ_CHECK(ex.ok == syntax.empty(),
                       "syntax check: \"" + syntax + "\", expansion: \"" + ex.error + "\"");
            if (!ex.ok) {
                FUZZ_CHECK(!ex.error.empty(), "refused without a reason");
                continue;
            }
            if (use == MacroUse::domain) {
                FUZZ_CHECK(ex.text.size() <= 4096, std::to_string(ex.text.size()) + " bytes");
                std::string name;
                if (query_name(ex.text, name)) FUZZ_CHECK(name.size() <= max_domain_length, name);
            } else {
                FUZZ_CHECK(ex.text.size() <= max_len, std::to_string(ex.text.size()) + " bytes");
            }
        }
    }
    return 0;
}
