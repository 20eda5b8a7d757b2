#include "registry/registrations.hpp"

#include <algorithm>
#include <functional>
#include <optional>
#include <unordered_map>

#include "dns/zone_file.hpp"
#include "util/strings.hpp"

namespace regmilter::registry {

namespace {

constexpr size_t max_line = 2048;

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

std::string quoted(std::string_view s) {
    if (s.size() > 80) return "\"" + std::string(s.substr(0, 80)) + "...\"";
    return "\"" + std::string(s) + "\"";
}

// A host name as HOSTNAME and the email domain need it; empty when fine.
std::string check_hostname(std::string_view name) {
    if (name.size() > 253) return quoted(name) + " is longer than 253 octets";
    size_t labels = 0, start = 0;
    std::string_view last;
    while (start <= name.size()) {
        size_t dot = name.find('.', start);
        if (dot == std::string_view::npos) dot = name.size();
        std::string_view label = name.substr(start, dot - start);
        if (label.empty()) return quoted(name) + " has an empty label";
        if (label.size() > 63) return quoted(name) + " has a label longer than 63 octets";
        for (char c : label)
            if (!is_alpha(c) && !is_digit(c) && c != '-')
                return quoted(name) + ": '" + std::string(1, c) + "' is not a letter, digit or '-'";
        if (label.front() == '-' || label.back() == '-')
            return quoted(name) + " has a label that starts or ends with '-'";
        ++labels;
        last = label;
        start = dot + 1;
    }
    if (labels < 2) return quoted(name) + " has no domain (one label; want at least two)";
    bool numeric = true;
    for (char c : last) numeric = numeric && is_digit(c);
    if (numeric) return quoted(name) + " ends in an all-numeric label (an address, not a name)";
    return {};
}

std::string check_contact(std::string_view h) {
    if (h.empty() || h.size() > 64) return "contact " + quoted(h) + " is not 1 to 64 characters";
    if (!is_alpha(h[0]) && !is_digit(h[0]))
        return "contact " + quoted(h) + " does not start with a letter or digit";
    for (char c : h)
        if (!is_alpha(c) && !is_digit(c) && c != '.' && c != '_' && c != '-')
            return "contact " + quoted(h) + ": '" + std::string(1, c) +
                   "' is not a letter, digit, '.', '_' or '-'";
    return {};
}

// RFC 5322 §3.2.3 atext.
bool is_atext(char c) {
    if (is_alpha(c) || is_digit(c)) return true;
    for (char a : std::string_view("!#$%&'*+/=?^_`{|}~-"))
        if (c == a) return true;
    return false;
}

std::string check_email(std::string_view e) {
    auto at = e.rfind('@');
    if (at == std::string_view::npos) return "email " + quoted(e) + " has no '@'";
    std::string_view local = e.substr(0, at), domain = e.substr(at + 1);
    if (local.empty()) return "email " + quoted(e) + " has an empty local part";
    if (local.size() > 64) return "email " + quoted(e) + ": local part longer than 64 octets";
    if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos)
        return "email " + quoted(e) + ": misplaced '.' in the local part";
    for (char c : local)
        if (c != '.' && !is_atext(c))
            return "email " + quoted(e) + ": '" + std::string(1, c) + "' is not allowed in a local part";
    if (domain.empty()) return "email " + quoted(e) + " has no domain";
    std::string why = check_hostname(dns::canonical_name(domain));
    if (!why.empty()) return "email " + quoted(e) + ": domain " + why;
    return {};
}

std::string check_phone(std::string_view p) {
    if (p.size() > 32) return "phone " + quoted(p) + " is longer than 32 characters";
    int digits = 0;
    for (size_t i = 0; i < p.size(); ++i) {
        char c = p[i];
        if (is_digit(c)) {
            ++digits;
        } else if (!(c == '+' && i == 0) && c != '-' && c != '.' && c != '(' && c != ')' && c != '/') {
            return "phone " + quoted(p) + ": '" + std::string(1, c) + "' is not a digit or + - . ( ) /";
        }
    }
    if (digits < 3) return "phone " + quoted(p) + " has fewer than 3 digits";
    return {};
}

struct AddressHash {
    size_t operator()(const net::Address& a) const {
        size_t h = a.is_v4() ? 4 : 6;
        for (size_t i = 0; i < a.size(); ++i) h = h * 131 + a.bytes()[i];
        return h;
    }
};

}  // namespace

const char* to_string(ServerClass c) {
    return c == ServerClass::bulk ? "bulk" : "regular";
}

std::string Problem::str() const {
    std::string s = file + ":" + std::to_string(line) + ": ";
    if (!subject.empty()) s += subject + ": ";
    return s + message;
}

namespace {

using Complain = std::function<void(std::string)>;

// The line without its comment ('#' at the start or after a blank), or
// nothing after complaining about a line too long or with control or
// non-ASCII characters.
std::optional<std::string_view> clean_line(std::string_view line, const Complain& problem) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > max_line) {
        problem("line longer than " + std::to_string(max_line) + " characters");
        return std::nullopt;
    }
    for (size_t i = 0; i < line.size(); ++i)
        if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
            line = line.substr(0, i);
            break;
        }
    for (char c : line) {
        unsigned char u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t') || u >= 0x7f) {
            problem("control or non-ASCII characters in the line");
            return std::nullopt;
        }
    }
    return line;
}

// The IP word into r.ip; false after complaining.
bool parse_ip(std::string_view ipw, Registration& r, const Complain& problem) {
    if (ipw.find('=') != std::string_view::npos) {
        problem("the line starts with " + quoted(ipw) +
                ", not an IP address (want IP HOSTNAME key=value...)");
    } else if (ipw.find('/') != std::string_view::npos) {
        problem(quoted(ipw) + " is a network; a registration is one host address");
    } else if (auto pct = ipw.find('%'); pct != std::string_view::npos) {
        problem(quoted(ipw) + " has a zone id (" + std::string(ipw.substr(pct)) +
                "); a registered server has one global address, without a zone id");
    } else if (auto a = net::Address::parse(ipw)) {
        r.ip = a->unmapped();
        return true;
    } else {
        problem(quoted(ipw) + " is not an IPv4 or IPv6 address");
    }
    return false;
}

// since= or updated=: a past date.
std::string check_date(std::string_view key, std::string_view value, util::Day today,
                       std::optional<util::Day>& into) {
    auto d = util::parse_date(value);
    if (!d) return std::string(key) + " " + quoted(value) + " is not a YYYY-MM-DD date";
    if (*d > today)
        return std::string(key) + " " + std::string(value) + " is in the future (today is " +
               util::format_date(today) + ")";
    into = *d;
    return {};
}

// The key=value words from `first` on into `r`, complaining about each bad
// or missing one.
void parse_fields(const std::vector<std::string_view>& words, size_t first, util::Day today, Registration& r,
                  const Complain& problem) {
    std::optional<util::Day> since, updated;
    std::vector<std::string_view> seen;
    for (size_t i = first; i < words.size(); ++i) {
        std::string_view w = words[i];
        auto eq = w.find('=');
        if (eq == std::string_view::npos || eq == 0) {
            problem(quoted(w) + " is not key=value");
            continue;
        }
        std::string_view key = w.substr(0, eq), value = w.substr(eq + 1);
        if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
            problem(std::string(key) + "= given twice");
            continue;
        }
        // Present, even when empty or wrong: one problem, not also "no key=".
        seen.push_back(key);
        if (value.empty()) {
            problem(std::string(key) + "= has an empty value");
            continue;
        }
        std::string why;
        if (key == "contact") {
            why = check_contact(value);
            r.contact = std::string(value);
        } else if (key == "email") {
            why = check_email(value);
            r.email = std::string(value);
        } else if (key == "phone") {
            why = check_phone(value);
            r.phone = std::string(value);
        } else if (key == "since" || key == "updated") {
            why = check_date(key, value, today, key == "since" ? since : updated);
        } else if (key == "class") {
            if (value == "regular") {
                r.server_class = ServerClass::regular;
            } else if (value == "bulk") {
                r.server_class = ServerClass::bulk;
            } else {
                why = "class " + quoted(value) + " is not regular or bulk";
            }
        } else {
            why = "unknown key " + quoted(key) + " (want contact, email, phone, since, updated, class)";
        }
        if (!why.empty()) problem(why);
    }
    auto given = [&](std::string_view k) { return std::find(seen.begin(), seen.end(), k) != seen.end(); };
    if (!given("contact")) problem("no contact= (a contact handle is required)");
    if (!given("email")) problem("no email= (a contact email address is required)");
    if (!given("since")) problem("no since= (the registration date is required)");
    if (since && updated && *updated < *since)
        problem("updated " + util::format_date(*updated) + " is before since " + util::format_date(*since));
    r.since = since.value_or(0);
    r.updated = updated.value_or(r.since);
}

}  // namespace

Parsed parse_registrations(std::string_view text, std::string_view file, util::Day today) {
    Parsed out;
    std::unordered_map<net::Address, int, AddressHash> first_line;
    int no = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        std::string_view raw =
            text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? text.size() : nl + 1;
        ++no;
        const Complain problem = [&](std::string m) {
            out.problems.push_back({std::string(file), no, {}, std::move(m)});
        };
        auto line = clean_line(raw, problem);
        if (!line) continue;
        std::vector<std::string_view> words = util::split(*line);
        if (words.empty()) continue;

        Registration r;
        r.line = no;
        const size_t problems_before = out.problems.size();
        bool ip_ok = parse_ip(words[0], r, problem), host_ok = false;
        size_t fields = 2;  // where key=value fields start
        if (words.size() < 2 || words[1].find('=') != std::string_view::npos) {
            problem("no HOSTNAME after the address (want IP HOSTNAME key=value...)");
            fields = 1;
        } else {
            r.hostname = dns::canonical_name(words[1]);
            std::string why = check_hostname(r.hostname);
            if (!why.empty()) problem("HOSTNAME " + why);
            host_ok = why.empty();
        }
        parse_fields(words, fields, today, r, problem);
        if (out.problems.size() != problems_before) {
            if (ip_ok && host_ok) out.broken.push_back(std::move(r));
            continue;
        }
        auto [it, fresh] = first_line.emplace(r.ip, no);
        if (!fresh) {
            problem("duplicate address " + r.ip.str() + " (first at line " + std::to_string(it->second) +
                    ")");
            out.broken.push_back(std::move(r));
            continue;
        }
        out.entries.push_back(std::move(r));
    }
    return out;
}

}  // namespace regmilter::registry
