#include "util/strings.hpp"

namespace regmilter::util {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = ascii_lower(c);
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
    return s;
}

std::vector<std::string_view> split(std::string_view s, std::string_view separators) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < s.size()) {
        i = s.find_first_not_of(separators, i);
        if (i == std::string_view::npos) break;
        size_t end = s.find_first_of(separators, i);
        if (end == std::string_view::npos) end = s.size();
        out.push_back(s.substr(i, end - i));
        i = end;
    }
    return out;
}

}  // namespace regmilter::util
