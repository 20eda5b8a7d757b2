#include "spf/domain.hpp"
#include "spf/chars.hpp"

namespace regmilter::spf {

namespace {

void set(std::string* why, const char* text) {
    if (why) *why = text;
}

}  // namespace

bool valid_identity_domain(std::string_view d, std::string* why) {
    if (d.empty()) return set(why, "empty domain"), false;
    if (d.front() == '[') return set(why, "address literal, not a domain"), false;
    if (d.back() == '.') d.remove_suffix(1);
    if (d.size() > max_domain_length) return set(why, "domain longer than 253 characters"), false;
    size_t labels = 0, start = 0;
    std::string_view last;
    for (size_t i = 0; i <= d.size(); ++i) {
        if (i < d.size() && d[i] != '.') {
            unsigned char c = static_cast<unsigned char>(d[i]);
            if (c <= 0x20 || c >= 0x7f || c == '\\')
                return set(why, "control, space, backslash or non-ASCII character in domain"), false;
            continue;
        }
        size_t len = i - start;
        if (len == 0) return set(why, "empty label in domain"), false;
        if (len > max_label_length) return set(why, "label longer than 63 characters"), false;
        last = d.substr(start, len);
        ++labels;
        start = i + 1;
    }
    if (labels < 2) return set(why, "not a fully qualified domain (one label)"), false;
    bool numeric = true;
    for (char c : last) numeric = numeric && is_digit(c);
    if (numeric) return set(why, "all-numeric top label (an IP address is not a domain)"), false;
    return true;
}

bool is_toplabel(std::string_view l) {
    if (l.empty()) return false;
    bool dash = false, alpha = false;
    for (char c : l) {
        if (c == '-')
            dash = true;
        else if (is_alpha(c))
            alpha = true;
        else if (!is_digit(c))
            return false;
    }
    if (!dash) return alpha;
    return is_alnum(l.front()) && is_alnum(l.back());
}

bool query_name(std::string_view in, std::string& out) {
    out.clear();
    if (!in.empty() && in.back() == '.') in.remove_suffix(1);
    // RFC 7208 §7.3: remove whole labels from the left until it fits.
    if (in.size() > max_domain_length) {
        size_t from = in.size() - max_domain_length;  // first byte we may keep
        size_t dot = in.find('.', from - 1);
        if (dot == std::string_view::npos) return false;
        in.remove_prefix(dot + 1);
    }
    if (in.empty()) return false;
    size_t start = 0;
    for (size_t i = 0; i <= in.size(); ++i) {
        if (i < in.size() && in[i] != '.') {
            unsigned char c = static_cast<unsigned char>(in[i]);
            if (c < 0x20 || c >= 0x7f || c == '\\') return false;
            continue;
        }
        size_t len = i - start;
        if (len == 0 || len > max_label_length) return false;
        start = i + 1;
    }
    out.assign(in);
    return true;
}

bool is_same_or_subdomain(std::string_view name, std::string_view domain) {
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    if (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
    if (domain.empty()) return false;
    if (iequals(name, domain)) return true;
    if (name.size() <= domain.size()) return false;
    return name[name.size() - domain.size() - 1] == '.' &&
           iequals(name.substr(name.size() - domain.size()), domain);
}

}  // namespace regmilter::spf
