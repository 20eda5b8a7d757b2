#include "util/text.hpp"

namespace regmilter::util {

namespace {

struct Policy {
    size_t limit;
    enum class Unsafe { question_mark, hex } unsafe;
    bool keep_8bit;       // bytes >= 0x80 pass (log lines: the syslog reader decides)
    bool keep_tab;        // header folding whitespace
    const char* special;  // further bytes treated as unsafe (question_mark) or escaped with '\' (hex)
};

Policy policy_of(TextUse use) {
    switch (use) {
        case TextUse::reply:
            return {400, Policy::Unsafe::question_mark, false, false, ""};
        case TextUse::header:
            return {900, Policy::Unsafe::question_mark, false, true, ""};
        case TextUse::header_comment:
            return {900, Policy::Unsafe::question_mark, false, false, "()\\"};
        case TextUse::dns_text:
            return {512, Policy::Unsafe::question_mark, false, false, ""};
        case TextUse::log_value:
            return {512, Policy::Unsafe::hex, false, false, "\"\\"};
        case TextUse::log_line:
            return {4000, Policy::Unsafe::hex, true, false, ""};
    }
    return {0, Policy::Unsafe::question_mark, false, false, ""};
}

bool is_special(const Policy& p, char c) {
    for (const char* s = p.special; *s; ++s)
        if (*s == c) return true;
    return false;
}

}  // namespace

size_t limit_of(TextUse use) {
    return policy_of(use).limit;
}

std::string sanitize(std::string_view text, TextUse use) {
    const Policy p = policy_of(use);
    if (text.size() > p.limit) text = text.substr(0, p.limit);
    static const char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        unsigned char u = static_cast<unsigned char>(c);
        bool control = u < 0x20 || u == 0x7f;
        bool eight = u >= 0x80;
        bool safe = !(control || (eight && !p.keep_8bit)) || (c == '\t' && p.keep_tab);
        if (p.unsafe == Policy::Unsafe::question_mark) {
            out += safe && !is_special(p, c) ? c : '?';
        } else if (!safe) {
            out += "\\x";
            out += hex[u >> 4];
            out += hex[u & 15];
        } else {
            if (is_special(p, c)) out += '\\';
            out += c;
        }
    }
    return out;
}

}  // namespace regmilter::util
