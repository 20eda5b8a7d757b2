// spf/macro: RFC 7208 §7 macro strings — syntax check and expansion of
// domain-specs, unknown-modifier values and exp= explanation text.
// No DNS here: %{p} comes from a caller-supplied function. Stateless apart
// from the inputs passed in; thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "net/address.hpp"

namespace regmilter::spf {

enum class MacroUse {
    domain,            // domain-spec: letters s l o d i p v h (§7.2)
    explanation,       // exp= TXT text: also c r t, and spaces (§6.2, §7.2)
    unknown_modifier,  // syntax only: every macro letter is accepted
};

// The values macros expand to (§7.3). Views must outlive the expand call.
struct MacroInputs {
    std::string_view sender;                      // %{s} <sender>
    std::string_view local_part;                  // %{l}
    std::string_view sender_domain;               // %{o}
    std::string_view domain;                      // %{d} the <domain> being evaluated
    std::string_view helo;                        // %{h}
    std::string_view receiver;                    // %{r}; empty expands to "unknown"
    net::Address ip;                              // %{i} %{c} %{v}; already unmapped
    std::function<std::string()> validated_name;  // %{p}; empty: "unknown"
    int64_t now = 0;                              // %{t} seconds since the epoch
};

// Returns "" when `text` is a valid macro-string (explain-string for
// MacroUse::explanation), else why not, e.g. `invalid macro "%(" ...`.
std::string macro_syntax_error(std::string_view text, MacroUse use);

struct Expansion {
    bool ok = false;
    std::string text;
    std::string error;       // when !ok: the syntax error
    bool truncated = false;  // output reached its bound
};

// Expand `text`. Bounded output, whatever the inputs:
//  - MacroUse::domain keeps only the right-hand end of very long results
//    (at least the last 1024 characters, never more than 4096), enough for
//    query_name() to apply RFC 7208 §7.3's left truncation to 253 characters;
//    `truncated` says the left side was dropped.
//  - other uses stop at `max_len` characters (`truncated` set).
// Repeated identical macros are computed once per call.
Expansion expand_macros(std::string_view text, MacroUse use, const MacroInputs& in, size_t max_len = 512);

}  // namespace regmilter::spf
