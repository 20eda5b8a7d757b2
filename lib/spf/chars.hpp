// spf: ASCII character classes of RFC 7208's ABNF (RFC 5234 ALPHA, DIGIT).
// Locale-free on purpose: <cctype> depends on the C locale and on signedness.
#pragma once

namespace regmilter::spf {

inline bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
inline bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
inline bool is_alnum(char c) {
    return is_alpha(c) || is_digit(c);
}

}  // namespace regmilter::spf
