// The escapes the test tools accept in their text arguments and scripts:
// \xHH, \0, \t, \n, \r, and a backslash before any other character stands
// for that character. Header-only.
#pragma once

#include <string>
#include <string_view>

namespace regmilter::testing {

inline std::string unescape(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\\' || i + 1 >= s.size()) {
            out += s[i];
            continue;
        }
        char n = s[++i];
        if (n == 'x' && i + 2 < s.size()) {
            out += char(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        } else {
            out += n == 'r' ? '\r' : n == 'n' ? '\n' : n == 't' ? '\t' : n == '0' ? '\0' : n;
        }
    }
    return out;
}

}  // namespace regmilter::testing
