#include "dns/zone_file.hpp"

#include <cstdio>

namespace regmilter::dns {

namespace {

std::string hostmaster_of(const ZoneHead& h) {
    std::string rname = soa_mailbox(h.hostmaster.empty() ? "hostmaster@" + h.zone : h.hostmaster);
    return rname.empty() ? "hostmaster." + h.zone : rname;
}

std::vector<std::string> nameservers_of(const ZoneHead& h) {
    return h.nameservers.empty() ? std::vector<std::string>{"localhost"} : h.nameservers;
}

bool is_ldh(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

}  // namespace

void write_zone_head(std::ostream& out, const ZoneHead& h, const std::vector<std::string>& comments) {
    for (const auto& c : comments) out << "; " << c << '\n';
    const auto ns = nameservers_of(h);
    out << "$ORIGIN " << h.zone << ".\n"
        << "$TTL " << h.ttl << '\n'
        << "@\tIN\tSOA\t" << ns.front() << ". " << hostmaster_of(h) << ". ( " << h.serial << ' ' << h.refresh
        << ' ' << h.retry << ' ' << h.expire << ' ' << h.minimum << " )\n";
    for (const auto& n : ns) out << "\tIN\tNS\t" << n << ".\n";
}

void write_rbldnsd_head(std::ostream& out, const ZoneHead& h, const std::vector<std::string>& comments) {
    for (const auto& c : comments) out << "# " << c << '\n';
    const auto ns = nameservers_of(h);
    // rbldnsd(8): "$SOA ttl origindn persondn serial refresh retry expire minttl"
    out << "$SOA " << h.ttl << ' ' << ns.front() << ". " << hostmaster_of(h) << ". " << h.serial << ' '
        << h.refresh << ' ' << h.retry << ' ' << h.expire << ' ' << h.minimum << '\n';
    out << "$NS " << h.ttl;
    for (const auto& n : ns) out << ' ' << n << '.';
    out << "\n$TTL " << h.ttl << '\n';
}

std::string canonical_name(std::string_view name) {
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    std::string s(name);
    for (char& c : s)
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    return s;
}

std::string check_domain(std::string_view name) {
    const std::string q = "\"" + std::string(name.substr(0, 80)) + (name.size() > 80 ? "...\"" : "\"");
    if (name.empty()) return "empty name";
    if (name.size() > 253) return q + ": longer than 253 octets";
    size_t start = 0;
    while (start <= name.size()) {
        size_t dot = name.find('.', start);
        if (dot == std::string_view::npos) dot = name.size();
        std::string_view label = name.substr(start, dot - start);
        if (label.empty()) return q + ": empty label";
        if (label.size() > 63) return q + ": label longer than 63 octets";
        for (char c : label)
            if (!is_ldh(c)) return q + ": '" + std::string(1, c) + "' is not a letter, digit, '-' or '_'";
        if (label.front() == '-' || label.back() == '-') return q + ": label starts or ends with '-'";
        start = dot + 1;
    }
    return {};
}

std::string soa_mailbox(std::string_view mailbox) {
    auto at = mailbox.rfind('@');
    if (at == std::string_view::npos || at == 0) return {};
    std::string domain = canonical_name(mailbox.substr(at + 1));
    if (!check_domain(domain).empty()) return {};
    std::string out;
    for (char c : mailbox.substr(0, at)) {
        if (c == '.') {
            out += "\\.";
        } else if (is_ldh(c) || c == '+') {
            out += c;
        } else {
            return {};
        }
    }
    return out + "." + domain;
}

bool serial_newer(uint32_t a, uint32_t b) {
    // RFC 1982 §3.2 with SERIAL_BITS = 32.
    return (a < b && b - a > 0x80000000u) || (a > b && a - b < 0x80000000u);
}

uint32_t next_serial(std::optional<uint32_t> previous, uint32_t today_yyyymmdd) {
    const uint64_t wanted64 = uint64_t(today_yyyymmdd) * 100;
    const uint32_t wanted = wanted64 > 0xffffffffu ? 1u : uint32_t(wanted64);
    if (!previous || serial_newer(wanted, *previous)) return wanted;
    uint32_t next = *previous + 1;
    return next == 0 ? 1 : next;
}

std::optional<uint32_t> read_soa_serial(std::string_view text, std::string& error) {
    // Tokens outside comments and quotes; parentheses only group lines.
    std::vector<std::string> tokens;
    std::string cur;
    bool in_quote = false, in_comment = false;
    int soa_at = -1, want = -1;
    auto flush = [&]() {
        if (!cur.empty()) tokens.push_back(cur);
        cur.clear();
    };
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (in_comment) {
            if (c == '\n') in_comment = false;
            continue;
        }
        if (in_quote) {
            if (c == '\\' && i + 1 < text.size()) {
                cur += text[++i];
            } else if (c == '"') {
                in_quote = false;
                cur += '"';
            } else {
                cur += c;
            }
            continue;
        }
        if (c == '"') {
            in_quote = true;
            cur += '"';
        } else if (c == ';' || (c == '#' && cur.empty())) {
            flush();
            in_comment = true;
        } else if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '(' || c == ')') {
            flush();
        } else {
            cur += c;
            continue;
        }
        if (soa_at < 0 && !tokens.empty()) {
            std::string t = canonical_name(tokens.back());
            if (t == "soa") {
                soa_at = int(tokens.size()) - 1;
                want = soa_at + 3;  // SOA MNAME RNAME SERIAL
            } else if (t == "$soa") {
                soa_at = int(tokens.size()) - 1;
                want = soa_at + 4;  // $SOA TTL ORIGIN PERSON SERIAL
            }
        }
        if (want >= 0 && int(tokens.size()) > want) break;
    }
    flush();
    if (soa_at < 0) {
        error = "no SOA record";
        return std::nullopt;
    }
    if (int(tokens.size()) <= want) {
        error = "SOA record without a serial";
        return std::nullopt;
    }
    const std::string& s = tokens[size_t(want)];
    uint64_t v = 0;
    if (s.empty() || s.size() > 10) v = ~uint64_t(0);
    for (char c : s) {
        if (c < '0' || c > '9') {
            v = ~uint64_t(0);
            break;
        }
        v = v * 10 + uint64_t(c - '0');
    }
    if (v > 0xffffffffu) {
        error = "SOA serial \"" + s.substr(0, 20) + "\" is not a number from 0 to 4294967295";
        return std::nullopt;
    }
    return uint32_t(v);
}

std::string quote_txt(std::string_view text) {
    std::string out = "\"";
    for (char ch : text) {
        unsigned char c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += ch;
        } else if (c < 0x20 || c >= 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\%03u", unsigned(c));
            out += buf;
        } else {
            out += ch;
        }
    }
    return out + "\"";
}

}  // namespace regmilter::dns
