#include "spf/record.hpp"

#include "spf/chars.hpp"
#include "spf/domain.hpp"
#include "spf/macro.hpp"

namespace regmilter::spf {

namespace {

std::string quoted(std::string_view s) {
    return "\"" + std::string(s) + "\"";
}

// RFC 7208 ABNF: ip4-cidr-length = "/" ( "0" / %x31-39 0*1DIGIT ), value 0..32;
// ip6-cidr-length = "/" ( "0" / %x31-39 0*2DIGIT ), value 0..128.
bool parse_length(std::string_view digits, int max, int& out) {
    if (digits.empty() || digits.size() > 3) return false;
    if (digits.size() > 1 && digits[0] == '0') return false;
    int v = 0;
    for (char c : digits) {
        if (!is_digit(c)) return false;
        v = v * 10 + (c - '0');
    }
    if (v > max) return false;
    out = v;
    return true;
}

// Splits a trailing "/N" (all digits after the last '/') off `s`.
bool take_length_suffix(std::string_view& s, std::string_view& digits) {
    size_t slash = s.rfind('/');
    if (slash == std::string_view::npos || slash + 1 == s.size()) return false;
    for (size_t i = slash + 1; i < s.size(); ++i)
        if (!is_digit(s[i])) return false;
    digits = s.substr(slash + 1);
    s = s.substr(0, slash);
    return true;
}

// A leading qualifier (RFC 7208 §4.6.2), removed from `body`.
void take_qualifier(std::string_view& body, Term& t) {
    switch (body[0]) {
        case '+':
            t.qualifier = Qualifier::pass;
            break;
        case '-':
            t.qualifier = Qualifier::fail;
            break;
        case '~':
            t.qualifier = Qualifier::softfail;
            break;
        case '?':
            t.qualifier = Qualifier::neutral;
            break;
        default:
            return;
    }
    body.remove_prefix(1);
}

// The mechanism's name, case-insensitive (§4.6.1); false for none.
bool mechanism_of(std::string_view name, Mechanism& m) {
    constexpr util::Names names = names_of(Mechanism{});
    size_t i = names.find_ignoring_case(name);
    if (i == names.count) return false;
    m = static_cast<Mechanism>(i);
    return true;
}

// §5.6: ip4 / ip6 ":" network [ "/" length ].
std::string parse_network(std::string_view term, std::string_view rest, Term& t) {
    bool v4 = t.mechanism == Mechanism::ip4;
    const char* kind = v4 ? "ip4" : "ip6";
    if (rest.empty() || rest[0] != ':' || rest.size() == 1)
        return std::string(kind) + " needs a network: " + quoted(term);
    std::string_view net = rest.substr(1), len;
    size_t slash = net.find('/');
    if (slash != std::string_view::npos) {
        len = net.substr(slash + 1);
        net = net.substr(0, slash);
    }
    auto addr = net::Address::parse(net);
    bool has_colon = net.find(':') != std::string_view::npos;
    if (!addr || (v4 && has_colon) || (!v4 && !has_colon) || addr->is_v4() != v4)
        return std::string("bad ") + kind + " network " + quoted(net);
    t.network = *addr;
    t.prefix = v4 ? 32 : 128;
    if (slash != std::string_view::npos && !parse_length(len, v4 ? 32 : 128, t.prefix))
        return std::string("bad ") + kind + " prefix length " + quoted("/" + std::string(len)) + " in " +
               quoted(term);
    return "";
}

// §5.3, §5.4: the dual-cidr-length of a / mx, taken off the end of `rest`.
std::string take_dual_cidr(std::string_view term, std::string_view& rest, Term& t) {
    std::string_view s = rest, digits;
    std::string_view two = s;
    // ip6-cidr-length: a trailing "//N".
    if (take_length_suffix(two, digits) && !two.empty() && two.back() == '/') {
        if (!parse_length(digits, 128, t.cidr6))
            return "bad ip6 prefix length " + quoted("//" + std::string(digits)) + " in " + quoted(term);
        s = two.substr(0, two.size() - 1);
    }
    std::string_view one = s;
    if (take_length_suffix(one, digits)) {
        if (!parse_length(digits, 32, t.cidr4))
            return "bad ip4 prefix length " + quoted("/" + std::string(digits)) + " in " + quoted(term);
        s = one;
    }
    rest = s;
    return "";
}

// include a mx ptr exists: [ ":" domain-spec ] (required for include, exists).
std::string parse_target(std::string_view term, std::string_view rest, Term& t) {
    if (rest.empty()) {
        if (t.mechanism == Mechanism::include || t.mechanism == Mechanism::exists)
            return std::string(to_string(t.mechanism)) + " needs \":\" and a domain: " + quoted(term);
        return "";
    }
    if (rest[0] != ':') return "bad argument " + quoted(rest) + " in " + quoted(term);
    std::string_view spec = rest.substr(1);
    if (spec.empty()) return "empty domain-spec in " + quoted(term);
    std::string err = domain_spec_error(spec);
    if (!err.empty()) return err + " in " + quoted(term);
    t.domain_spec.assign(spec);
    return "";
}

// One mechanism term (§4.6.1, §5) into `t`; "" or what is wrong.
std::string parse_mechanism(std::string_view term, Term& t) {
    t.text.assign(term);
    std::string_view body = term;
    take_qualifier(body, t);
    size_t end = body.find_first_of(":/");
    std::string_view name = body.substr(0, end);
    std::string_view rest = end == std::string_view::npos ? std::string_view() : body.substr(end);
    if (name.empty()) return "missing mechanism name in " + quoted(term);
    if (!mechanism_of(name, t.mechanism)) return "unknown mechanism " + quoted(name);
    switch (t.mechanism) {
        case Mechanism::all:  // §5.1: all = "all"
            return rest.empty() ? "" : "all takes no argument: " + quoted(term);
        case Mechanism::ip4:
        case Mechanism::ip6:
            return parse_network(term, rest, t);
        case Mechanism::a:
        case Mechanism::mx:
            if (std::string err = take_dual_cidr(term, rest, t); !err.empty()) return err;
            break;
        default:
            break;
    }
    return parse_target(term, rest, t);
}

}  // namespace

bool is_spf_record(std::string_view txt) {
    return txt.size() >= 6 && iequals(txt.substr(0, 6), "v=spf1") && (txt.size() == 6 || txt[6] == ' ');
}

std::string domain_spec_error(std::string_view spec) {
    if (spec.empty()) return "empty domain-spec";
    std::string err = macro_syntax_error(spec, MacroUse::domain);
    if (!err.empty()) return err;
    // domain-end = ( "." toplabel [ "." ] ) / macro-expand. The syntax is
    // valid, so a scan can step over macros: find the literal tail.
    size_t tail = 0;
    bool ends_in_macro = false;
    for (size_t i = 0; i < spec.size();) {
        if (spec[i] != '%') {
            ++i;
            ends_in_macro = false;
            continue;
        }
        i = spec[i + 1] == '{' ? spec.find('}', i) + 1 : i + 2;
        tail = i;
        ends_in_macro = true;
    }
    if (ends_in_macro) return "";
    std::string_view s = spec.substr(tail);
    if (!s.empty() && s.back() == '.') s.remove_suffix(1);
    size_t dot = s.rfind('.');
    if (dot == std::string_view::npos)
        return "domain-spec " + quoted(spec) + " does not end in \".\" and a top label";
    std::string_view top = s.substr(dot + 1);
    if (!is_toplabel(top)) return "bad top label " + quoted(top) + " in domain-spec " + quoted(spec);
    return "";
}

ParsedRecord parse_record(std::string_view text) {
    ParsedRecord out;
    for (size_t i = 0; i < text.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        // RFC 7208 §3.1, §4.6.1: 7-bit ASCII, terms separated by spaces only.
        if (c < 0x20 || c > 0x7e) {
            static const char hex[] = "0123456789abcdef";
            out.error = std::string(c >= 0x80 ? "non-ASCII" : "control") + " character 0x" + hex[c >> 4] +
                        hex[c & 15] + " at offset " + std::to_string(i) + " of the record";
            return out;
        }
    }
    if (!is_spf_record(text)) {
        out.error = "not an SPF record (no \"v=spf1\")";
        return out;
    }
    Record rec;
    size_t i = 6;
    while (i < text.size()) {
        while (i < text.size() && text[i] == ' ') ++i;
        if (i >= text.size()) break;
        size_t end = text.find(' ', i);
        if (end == std::string_view::npos) end = text.size();
        std::string_view term = text.substr(i, end - i);
        i = end;
        size_t special = term.find_first_of("=:/");
        if (special != std::string_view::npos && term[special] == '=') {
            // modifier = redirect / explanation / unknown-modifier (§6, Appendix A)
            std::string_view name = term.substr(0, special), value = term.substr(special + 1);
            if (name.empty()) {
                out.error = "modifier without a name: " + quoted(term);
                return out;
            }
            bool good = is_alpha(name[0]);
            for (char c : name)
                good = good && (is_alpha(c) || is_digit(c) || c == '-' || c == '_' || c == '.');
            if (!good) {
                out.error = "bad modifier name " + quoted(name);
                return out;
            }
            if (iequals(name, "redirect") || iequals(name, "exp")) {
                bool redirect = iequals(name, "redirect");
                auto& slot = redirect ? rec.redirect : rec.exp;
                const char* shown = redirect ? "redirect=" : "exp=";
                if (slot) {
                    out.error = std::string(shown) + " appears twice";
                    return out;
                }
                std::string err = domain_spec_error(value);
                if (!err.empty()) {
                    out.error = std::string("bad ") + shown + " target: " + err;
                    return out;
                }
                slot = std::string(value);
            } else {
                std::string err = macro_syntax_error(value, MacroUse::unknown_modifier);
                if (!err.empty()) {
                    out.error = "bad value in modifier " + quoted(term) + ": " + err;
                    return out;
                }
                rec.unknown.push_back(Modifier{std::string(name), std::string(value)});
            }
            continue;
        }
        Term t;
        std::string err = parse_mechanism(term, t);
        if (!err.empty()) {
            out.error = err;
            return out;
        }
        rec.terms.push_back(std::move(t));
    }
    out.record = std::move(rec);
    return out;
}

}  // namespace regmilter::spf
