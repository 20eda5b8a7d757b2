// spf/record: RFC 7208 record selection (§4.5) and the record parser (§4.6,
// §5, §6, Appendix A): text in, terms out, or the precise permerror reason.
// No DNS and no macro expansion here (domain-specs are syntax-checked only).
// Pure functions over values; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/address.hpp"
#include "util/names.hpp"

namespace regmilter::spf {

enum class Qualifier : char { pass = '+', fail = '-', softfail = '~', neutral = '?' };
enum class Mechanism { all, include, a, mx, ptr, ip4, ip6, exists };
inline constexpr const char* mechanism_names[] = {"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"};
constexpr util::Names names_of(Mechanism) {
    return mechanism_names;
}
inline const char* to_string(Mechanism m) {
    return util::name_of(m);
}

struct Term {
    Qualifier qualifier = Qualifier::pass;
    Mechanism mechanism = Mechanism::all;
    std::string domain_spec;  // include a mx ptr exists: the macro-string; empty = <domain>
    net::Address network;     // ip4 ip6
    int prefix = 0;           // ip4 ip6: 0..32 / 0..128
    int cidr4 = 32;           // a mx: ip4-cidr-length
    int cidr6 = 128;          // a mx: ip6-cidr-length
    std::string text;         // the term as written ("-ip4:192.0.2.0/24")
};

struct Modifier {
    std::string name;   // as written
    std::string value;  // macro-string, syntax-checked
};

struct Record {
    std::vector<Term> terms;              // the mechanisms, in order
    std::optional<std::string> redirect;  // redirect= domain-spec (§6.1)
    std::optional<std::string> exp;       // exp= domain-spec (§6.2)
    std::vector<Modifier> unknown;        // ignored, but syntax-checked (§6)
};

struct ParsedRecord {
    std::optional<Record> record;
    std::string error;  // permerror reason when !record, e.g. `unknown mechanism "foo"`
};

// RFC 7208 §4.5: a TXT string is an SPF record when it starts with "v=spf1"
// (case-insensitive) followed by a space or the end.
bool is_spf_record(std::string_view txt);

// Parse a full record ("v=spf1 ..."). Any syntax error anywhere is a
// permerror (§4.6): characters outside printable ASCII, terms separated by
// anything but spaces, unknown mechanisms, bad networks and CIDR lengths,
// bad domain-specs or macros, redirect=/exp= twice, bad modifier names.
ParsedRecord parse_record(std::string_view text);

// RFC 7208 §7.1 domain-spec = macro-string domain-end; "" when valid, else why.
std::string domain_spec_error(std::string_view spec);

}  // namespace regmilter::spf
