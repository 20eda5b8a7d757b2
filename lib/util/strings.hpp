// util: ASCII string helpers, one definition for every module (lower case,
// case-insensitive comparison, trimming, word splitting). Locale-free on
// purpose: <cctype> depends on the C locale and on char's signedness, and mail
// protocols compare ASCII. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace regmilter::util {

constexpr char ascii_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
}
constexpr bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// `s` with A-Z turned into a-z; other bytes unchanged.
std::string lower(std::string_view s);

// Equal ignoring ASCII case (a byte >= 0x80 only equals itself).
bool iequals(std::string_view a, std::string_view b);

// `s` without leading and trailing blanks (space, tab, CR, LF).
std::string_view trim(std::string_view s);

inline bool starts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}
inline bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The words of `s`, separated by any run of the bytes in `separators`; no
// empty words.
std::vector<std::string_view> split(std::string_view s, std::string_view separators = " \t");

}  // namespace regmilter::util
