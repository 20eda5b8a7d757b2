// policy: Authentication-Results (RFC 8601) text — reading the authserv-id
// of a header already in a message (to remove forged ones, §5), and quoting
// values for the header we write (§2.2: RFC 2045 value = token or
// quoted-string). Every index is bounds-checked: header values come from
// anyone. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace regmilter::policy {

// The authserv-id of an Authentication-Results value: the first token or
// quoted-string after CFWS (comments skipped, nested or not, escapes
// honoured). Empty when there is none. Any bytes in, never out of bounds.
std::string ar_authserv_id(std::string_view value);

// RFC 8601 §2.2 / RFC 2045 value: a token as is, otherwise a quoted-string
// (control bytes become '?').
std::string ar_value(std::string_view v);

// An addr-spec as a pvalue: local@domain kept readable when it has no
// specials; otherwise quoted as a whole.
std::string ar_address(std::string_view a);

}  // namespace regmilter::policy
