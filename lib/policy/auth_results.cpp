#include "policy/auth_results.hpp"

namespace regmilter::policy {

namespace {

bool is_wsp(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// RFC 2045 tspecials, plus what ends a token in practice.
bool ends_token(char c) {
    unsigned char u = static_cast<unsigned char>(c);
    return u <= 0x20 || u >= 0x7f || std::string_view("()<>@,;:\\\"/[]?=").find(c) != std::string_view::npos;
}

// Moves i past folding white space and comments (RFC 5322 §3.2.2 CFWS).
// A backslash escapes the next byte; an unclosed comment runs to the end.
void skip_cfws(std::string_view v, size_t& i) {
    const size_t n = v.size();
    while (i < n) {
        if (is_wsp(v[i])) {
            ++i;
            continue;
        }
        if (v[i] != '(') return;
        size_t depth = 0;
        while (i < n) {
            char c = v[i];
            if (c == '\\') {
                i = i + 2 < n ? i + 2 : n;
                continue;
            }
            ++i;
            if (c == '(') {
                ++depth;
            } else if (c == ')' && --depth == 0) {
                break;
            }
        }
    }
}

}  // namespace

std::string ar_authserv_id(std::string_view v) {
    size_t i = 0;
    const size_t n = v.size();
    skip_cfws(v, i);
    if (i >= n) return {};
    std::string out;
    if (v[i] == '"') {  // quoted-string
        for (++i; i < n && v[i] != '"'; ++i) {
            if (v[i] == '\\' && i + 1 < n) ++i;
            out += v[i];
        }
        return out;
    }
    size_t b = i;
    while (i < n && !ends_token(v[i])) ++i;
    return std::string(v.substr(b, i - b));
}

std::string ar_value(std::string_view v) {
    bool token = !v.empty();
    for (char c : v)
        if (ends_token(c)) token = false;
    if (token) return std::string(v);
    std::string q = "\"";
    for (char c : v) {
        unsigned char u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') q += '\\';
        q += (u < 0x20 || u == 0x7f) ? '?' : c;
    }
    return q + "\"";
}

std::string ar_address(std::string_view a) {
    auto at = a.rfind('@');
    bool plain = at != std::string_view::npos && at > 0 && at + 1 < a.size();
    for (char c : a) {
        unsigned char u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f || std::string_view("()<>,;:\\\"[]").find(c) != std::string_view::npos)
            plain = false;
    }
    return plain ? std::string(a) : ar_value(a);
}

}  // namespace regmilter::policy
