// spf/domain: the RFC 7208 rules on domain names — which identities can be
// checked (§4.3), what a domain-spec may end in (§7.1 toplabel), and which
// expanded target names can be queried (§7.3 truncation, RFC 1035 labels).
// Pure string functions: no DNS, no state; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "util/strings.hpp"

namespace regmilter::spf {

using util::iequals;

// Maximum length of a name SPF sends to DNS (RFC 7208 §7.3: 253 characters).
constexpr size_t max_domain_length = 253;
constexpr size_t max_label_length = 63;

// RFC 7208 §4.3: a domain that check_host() can evaluate: labels of 1..63
// visible ASCII characters (no NUL, control bytes, backslash, bytes >= 0x80),
// at least two labels, at most 253 characters, one optional trailing dot,
// not an address literal ("[192.0.2.1]"), not an all-numeric top label (a bare
// IPv4 address). On false `why` (if given) says what is wrong.
bool valid_identity_domain(std::string_view domain, std::string* why = nullptr);

// RFC 7208 §7.1: toplabel = ( *alphanum ALPHA *alphanum ) /
//                           ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
bool is_toplabel(std::string_view label);

// A name produced by macro expansion, made ready for a query: one trailing
// dot removed, then labels removed from the left until at most 253 characters
// remain (RFC 7208 §7.3). Returns false (no query should be made; the term
// does not match) when a label is empty or longer than 63 characters, or a
// byte is a control character, DEL, non-ASCII or a backslash (resolvers read
// names in presentation format, where "\" escapes) — RFC 7208 §4.3 by
// analogy: "treated as non-existent". Spaces and other visible characters are
// allowed: macros may legitimately produce them (%_).
bool query_name(std::string_view expanded, std::string& out);

// Suffix test on label boundaries, ignoring ASCII case: "mx.example.com"
// is `name` == "example.com" or ends in ".example.com".
bool is_same_or_subdomain(std::string_view name, std::string_view domain);

}  // namespace regmilter::spf
