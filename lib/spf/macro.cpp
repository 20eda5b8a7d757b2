#include "spf/macro.hpp"

#include "util/strings.hpp"

#include <algorithm>
#include <map>
#include <vector>
#include "spf/chars.hpp"

namespace regmilter::spf {

namespace {

constexpr size_t domain_keep = 1024;   // tail kept once a domain result is cut
constexpr size_t domain_limit = 4096;  // a domain result longer than this is cut

bool is_delimiter(char c) {
    // RFC 7208 §7.1: delimiter = "." / "-" / "+" / "," / "/" / "_" / "="
    return c == '.' || c == '-' || c == '+' || c == ',' || c == '/' || c == '_' || c == '=';
}

bool letter_allowed(char l, MacroUse use) {
    switch (l) {
        case 's':
        case 'l':
        case 'o':
        case 'd':
        case 'i':
        case 'p':
        case 'v':
        case 'h':
            return true;
        case 'c':
        case 'r':
        case 't':
            return use != MacroUse::domain;
        default:
            return false;
    }
}

bool is_macro_letter(char l) {
    return letter_allowed(l, MacroUse::explanation);
}

bool literal_allowed(unsigned char c, MacroUse use) {
    // RFC 7208 §7.1: macro-literal = %x21-24 / %x26-7E; explain-string adds SP.
    if (c == ' ') return use == MacroUse::explanation;
    return c >= 0x21 && c <= 0x7e && c != '%';
}

std::string hex_byte(unsigned char c) {
    static const char hex[] = "0123456789abcdef";
    return std::string("0x") + hex[c >> 4] + hex[c & 15];
}

// One parsed "%{...}" macro.
struct Macro {
    char letter = 0;      // lower case
    bool upper = false;   // URL-escape the result (§7.3)
    unsigned digits = 0;  // 0: all parts
    bool reverse = false;
    std::string delims;  // empty: "."
};

// Parse the macro starting at text[i] == '%' (i < size). On success, sets
// `len` to its length and either `literal` (for %% %_ %-) or `m`.
std::string parse_one(std::string_view text, size_t i, MacroUse use, size_t& len, std::string& literal,
                      Macro& m, bool& is_literal) {
    if (i + 1 >= text.size()) return "\"%\" at the end of macro string \"" + std::string(text) + "\"";
    char n = text[i + 1];
    is_literal = true;
    len = 2;
    if (n == '%') {
        literal = "%";
        return "";
    }
    if (n == '_') {
        literal = " ";
        return "";
    }
    if (n == '-') {
        literal = "%20";
        return "";
    }
    if (n != '{')
        return "invalid macro \"%" + std::string(1, n) +
               "\" (\"%\" must be followed by \"{\", \"%\", \"_\" or \"-\")";
    is_literal = false;
    size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) return "unterminated macro \"" + std::string(text.substr(i)) + "\"";
    std::string_view body = text.substr(i + 2, close - i - 2);
    std::string shown = "\"" + std::string(text.substr(i, close - i + 1)) + "\"";
    if (body.empty()) return "empty macro " + shown;
    char l = util::ascii_lower(body[0]);
    if (!is_macro_letter(l)) return "unknown macro letter \"" + std::string(1, body[0]) + "\" in " + shown;
    if (!letter_allowed(l, use))
        return "macro letter \"" + std::string(1, body[0]) + "\" is allowed only in exp= text, in " + shown;
    m.letter = l;
    m.upper = body[0] != l;
    size_t k = 1;
    bool have_digits = false;
    unsigned long value = 0;
    while (k < body.size() && body[k] >= '0' && body[k] <= '9') {
        have_digits = true;
        if (value < 100000) value = value * 10 + unsigned(body[k] - '0');
        ++k;
    }
    // RFC 7208 §7.3: "If a DIGIT is specified, the value MUST be nonzero."
    if (have_digits && value == 0) return "zero part count in macro " + shown;
    m.digits = unsigned(std::min<unsigned long>(value, 1000));
    if (k < body.size() && (body[k] == 'r' || body[k] == 'R')) {
        m.reverse = true;
        ++k;
    }
    for (; k < body.size(); ++k) {
        if (!is_delimiter(body[k]))
            return "bad character \"" + std::string(1, body[k]) + "\" in macro " + shown;
        if (m.delims.find(body[k]) == std::string::npos) m.delims += body[k];
    }
    len = close - i + 1;
    return "";
}

std::string nibbles(const net::Address& ip) {
    // RFC 7208 §7.3: IPv6 %{i} is dot-format, one nibble per label.
    std::string out;
    static const char hex[] = "0123456789abcdef";
    for (size_t k = 0; k < ip.size(); ++k) {
        if (!out.empty()) out += '.';
        out += hex[ip.bytes()[k] >> 4];
        out += '.';
        out += hex[ip.bytes()[k] & 15];
    }
    return out;
}

std::string raw_value(char letter, const MacroInputs& in) {
    switch (letter) {
        case 's':
            return std::string(in.sender);
        case 'l':
            return std::string(in.local_part);
        case 'o':
            return std::string(in.sender_domain);
        case 'd':
            return std::string(in.domain);
        case 'i':
            return in.ip.is_v4() ? in.ip.str() : nibbles(in.ip);
        case 'p': {
            std::string p = in.validated_name ? in.validated_name() : std::string();
            return p.empty() ? "unknown" : p;
        }
        case 'v':
            return in.ip.is_v4() ? "in-addr" : "ip6";
        case 'h':
            return std::string(in.helo);
        case 'c':
            return in.ip.str();
        case 'r':
            return in.receiver.empty() ? "unknown" : std::string(in.receiver);
        case 't':
            return std::to_string(in.now);
    }
    return std::string();
}

// §7.3: split on the delimiters, reverse, keep the right-hand parts, join with ".".
std::string transform(const std::string& value, const Macro& m) {
    const std::string& delims = m.delims.empty() ? std::string(".") : m.delims;
    std::vector<std::string_view> parts;
    std::string_view v(value);
    size_t start = 0;
    for (size_t i = 0; i <= v.size(); ++i) {
        if (i == v.size() || delims.find(v[i]) != std::string::npos) {
            parts.push_back(v.substr(start, i - start));
            start = i + 1;
        }
    }
    if (m.reverse) std::reverse(parts.begin(), parts.end());
    size_t first = 0;
    if (m.digits > 0 && m.digits < parts.size()) first = parts.size() - m.digits;
    std::string out;
    out.reserve(value.size());
    for (size_t i = first; i < parts.size(); ++i) {
        if (i > first) out += '.';
        out.append(parts[i]);
    }
    if (!m.upper) return out;
    // §7.3: upper-case macro letters are URL-escaped; unreserved characters
    // (RFC 3986: ALPHA DIGIT "-" "." "_" "~") are kept.
    static const char hex[] = "0123456789ABCDEF";
    std::string esc;
    esc.reserve(out.size());
    for (unsigned char c : out) {
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '.' || c == '_' || c == '~';
        if (keep) {
            esc += char(c);
        } else {
            esc += '%';
            esc += hex[c >> 4];
            esc += hex[c & 15];
        }
    }
    return esc;
}

// Output sink with the bounds documented in macro.hpp.
class Sink {
public:
    Sink(MacroUse use, size_t max_len) : domain_(use == MacroUse::domain), max_(max_len) {}
    void add(std::string_view s) {
        if (domain_) {
            if (s.size() > domain_limit) {  // only its tail can survive
                s.remove_prefix(s.size() - domain_keep);
                cut_ = true;
                out_.clear();
            }
            out_.append(s);
            if (out_.size() > domain_limit) {
                out_.erase(0, out_.size() - domain_keep);
                cut_ = true;
            }
            return;
        }
        if (out_.size() >= max_) {
            if (!s.empty()) cut_ = true;
            return;
        }
        size_t room = max_ - out_.size();
        if (s.size() > room) {
            s = s.substr(0, room);
            cut_ = true;
        }
        out_.append(s);
    }
    std::string take() { return std::move(out_); }
    bool cut() const { return cut_; }

private:
    bool domain_;
    size_t max_;
    bool cut_ = false;
    std::string out_;
};

}  // namespace

std::string macro_syntax_error(std::string_view text, MacroUse use) {
    for (size_t i = 0; i < text.size();) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        if (c != '%') {
            if (!literal_allowed(c, use)) return "invalid character " + hex_byte(c) + " in macro string";
            ++i;
            continue;
        }
        size_t len = 0;
        std::string lit;
        Macro m;
        bool is_lit = false;
        std::string err = parse_one(text, i, use, len, lit, m, is_lit);
        if (!err.empty()) return err;
        i += len;
    }
    return "";
}

Expansion expand_macros(std::string_view text, MacroUse use, const MacroInputs& in, size_t max_len) {
    Expansion ex;
    Sink sink(use, max_len);
    std::map<std::string, std::string, std::less<>> cache;  // macro text -> expansion
    size_t lit_start = 0;
    for (size_t i = 0; i < text.size();) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        if (c != '%') {
            if (!literal_allowed(c, use)) {
                ex.error = "invalid character " + hex_byte(c) + " in macro string";
                return ex;
            }
            ++i;
            continue;
        }
        sink.add(text.substr(lit_start, i - lit_start));
        size_t len = 0;
        std::string lit;
        Macro m;
        bool is_lit = false;
        std::string err = parse_one(text, i, use, len, lit, m, is_lit);
        if (!err.empty()) {
            ex.error = err;
            return ex;
        }
        if (is_lit) {
            sink.add(lit);
        } else {
            std::string_view key = text.substr(i, len);
            auto it = cache.find(key);
            if (it == cache.end())
                it = cache.emplace(std::string(key), transform(raw_value(m.letter, in), m)).first;
            sink.add(it->second);
        }
        i += len;
        lit_start = i;
    }
    sink.add(text.substr(lit_start));
    ex.ok = true;
    ex.truncated = sink.cut();
    ex.text = sink.take();
    return ex;
}

}  // namespace regmilter::spf
