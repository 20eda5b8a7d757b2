#include "config/values.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "net/endpoint.hpp"
#include "util/strings.hpp"

namespace regmilter::config::values {

namespace {

std::string quoted(std::string_view v) {
    return "\"" + std::string(v) + "\"";
}

// The one value of a scalar option.
const std::string& single(const Lines& lines) {
    static const std::string empty;
    return lines.empty() ? empty : lines.front();
}

// The words of list lines: blanks and commas separate.
std::vector<std::string> words_of(const Lines& lines) {
    std::vector<std::string> out;
    for (const auto& l : lines)
        for (auto w : util::split(l, " \t,")) out.emplace_back(w);
    return out;
}

// Problems of several words, joined: "a; b".
void add_problem(std::string& errs, const std::string& e) {
    errs += (errs.empty() ? "" : "; ") + e;
}

std::string lower_domain(std::string_view d) {
    std::string z = util::lower(d);
    if (!z.empty() && z.back() == '.') z.pop_back();
    return z;
}

bool has_control(std::string_view v) {
    for (char c : v)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
    return false;
}

// One network of a list. An IPv4-mapped IPv6 network (::ffff:192.0.2.0/120)
// is the IPv4 network it maps (192.0.2.0/24): clients are unmapped before any
// match, so the mapped form would never match anything.
std::optional<net::Cidr> network(const std::string& w, std::string& errs) {
    auto p = net::Cidr::parse(w);
    if (!p.cidr) {
        add_problem(errs, p.error);
        return std::nullopt;
    }
    net::Cidr c = *p.cidr;
    // (A mapped network address has its 80 leading zero bits and ffff set, so
    // a valid one always has a prefix of 96 or more.)
    if (c.network.is_v6() && c.network.is_v4_mapped()) c = net::Cidr{c.network.unmapped(), c.prefix - 96};
    return c;
}

}  // namespace

bool valid_domain(std::string_view d) {
    if (!d.empty() && d.back() == '.') d.remove_suffix(1);
    if (d.empty() || d.size() > 253) return false;
    size_t label = 0;
    for (char c : d) {
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '_';
        if (!ok || ++label > 63) return false;
    }
    return label > 0;
}

std::string parse(const Option&, const Lines& lines, bool& out) {
    const std::string& v = single(lines);
    if (v == "yes")
        out = true;
    else if (v == "no")
        out = false;
    else
        return quoted(v) + " is not yes or no";
    return {};
}

namespace {

// A whole number in o.min..o.max (at most 18 digits: no overflow).
template <class N>
std::string parse_whole(const Option& o, const Lines& lines, N& out) {
    const std::string& v = single(lines);
    if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos)
        return quoted(v) + " is not a whole number";
    long n = std::stol(v);
    if (n < o.min || n > o.max) return v + " is out of range";
    out = N(n);
    return {};
}

}  // namespace

std::string parse(const Option& o, const Lines& lines, int& out) {
    return parse_whole(o, lines, out);
}

std::string parse(const Option& o, const Lines& lines, long& out) {
    return parse_whole(o, lines, out);
}

std::string parse(const Option& o, const Lines& lines, unsigned long& out) {
    return parse_whole(o, lines, out);
}

std::string parse(const Option& o, const Lines& lines, unsigned& out) {
    if (o.type == Type::integer) return parse_whole(o, lines, out);
    const std::string& v = single(lines);
    if (v.empty() || v.size() > 4 || v.find_first_not_of("01234567") != std::string::npos)
        return quoted(v) + " is not an octal mode";
    unsigned long n = std::stoul(v, nullptr, 8);
    if (long(n) < o.min || long(n) > o.max) return v + " is out of range";
    out = unsigned(n);
    return {};
}

std::string parse(const Option& o, const Lines& lines, std::string& out) {
    const std::string& v = single(lines);
    switch (o.type) {
        case Type::text:
            if (has_control(v)) return "control characters in text";
            out = v;
            return {};
        case Type::user:
            if (v.empty() || v.size() > 32 || v.find_first_of(" \t:/") != std::string::npos || has_control(v))
                return quoted(v) + " is not a user name";
            out = v;
            return {};
        case Type::domain:
            if (!v.empty() && !valid_domain(v)) return quoted(v) + " is not a DNS name";
            out = lower_domain(v);
            return {};
        case Type::path:
            if (!v.empty() && v[0] != '/') return quoted(v) + " is not an absolute path";
            if (has_control(v)) return "control characters in the path";
            out = v;
            return {};
        case Type::file:
            if (!v.empty() && v[0] != '/') return quoted(v) + " is not an absolute path";
            if (!v.empty() && access(v.c_str(), R_OK) != 0)
                return "cannot read " + quoted(v) + ": " + std::strerror(errno);
            out = v;
            return {};
        case Type::socket: {
            std::string err;
            if (!net::parse_socket(v, err)) return err;
            out = v;
            return {};
        }
        case Type::delimiter:
            if (v.size() > 8) return quoted(v) + " is longer than 8 characters";
            for (char c : v) {
                bool punct = (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
                             (c >= '{' && c <= '~');
                if (!punct || c == '@' || c == '"')
                    return quoted(v) + " may hold only punctuation other than @ and \"";
            }
            out = v;
            return {};
        default:
            return "internal: option type " + std::string(to_string(o.type)) + " is not text";
    }
}

std::string parse(const Option&, const Lines& lines, std::vector<dns::Nameserver>& out) {
    std::vector<dns::Nameserver> list;
    std::string errs;
    for (const auto& w : words_of(lines)) {
        std::string err;
        if (auto ns = dns::parse_nameserver(w, err))
            list.push_back(*ns);
        else
            add_problem(errs, err);
    }
    if (!errs.empty()) return errs;
    out = std::move(list);
    return {};
}

std::string parse(const Option&, const Lines& lines, net::CidrSet& out) {
    net::CidrSet set;
    std::string errs;
    for (const auto& w : words_of(lines))
        if (auto c = network(w, errs)) set.add(*c);
    if (!errs.empty()) return errs;
    out = std::move(set);
    return {};
}

std::string parse(const Option&, const Lines& lines, std::vector<net::Address>& out) {
    static const net::Address loopback = *net::Address::parse("127.0.0.0");
    static const net::Address refused = *net::Address::parse("127.255.255.0");
    std::vector<net::Address> codes;
    std::string errs;
    for (const auto& w : words_of(lines)) {
        auto a = net::Address::parse(w);
        if (!a || !a->is_v4())
            add_problem(errs, quoted(w) + " is not an IPv4 address");
        else if (!a->in(loopback, 8))
            add_problem(errs, w + " is outside 127.0.0.0/8");
        else if (w == "127.0.0.1" || a->in(refused, 24))
            add_problem(errs, w + " is an error answer (RFC 5782 §2.3), never a listing");
        else
            codes.push_back(*a);
    }
    if (!errs.empty()) return errs;
    out = std::move(codes);
    return {};
}

std::string parse(const Option& o, const Lines& lines, std::vector<std::string>& out) {
    std::vector<std::string> list;
    std::string errs;
    if (o.type == Type::line_list) {
        for (const auto& l : lines) {
            std::string_view v = util::trim(l);
            if (v.empty()) continue;
            if (has_control(v))
                add_problem(errs, "control characters in " + quoted(v));
            else
                list.emplace_back(v);
        }
    } else if (o.type == Type::recipient_list) {
        // "local@domain", or "local@" for that local part at any domain; kept
        // in lower case (local parts compare case-insensitively, DESIGN "Bulk table").
        for (const auto& w : words_of(lines)) {
            auto at = w.rfind('@');
            std::string_view local = std::string_view(w).substr(0, at == std::string::npos ? 0 : at);
            std::string_view domain =
                at == std::string::npos ? std::string_view() : std::string_view(w).substr(at + 1);
            if (at == std::string::npos || local.empty())
                add_problem(errs, quoted(w) + " is neither local@domain nor local@");
            else if (has_control(local) || local.find_first_of(" <>") != std::string_view::npos)
                add_problem(errs, quoted(w) + ": the local part has characters an address cannot have");
            else if (!domain.empty() && !valid_domain(domain))
                add_problem(errs, quoted(w) + ": \"" + std::string(domain) + "\" is not a domain");
            else
                list.push_back(util::lower(std::string(local)) + "@" +
                               (domain.empty() ? "" : lower_domain(domain)));
        }
    } else {
        for (const auto& w : words_of(lines)) {
            if (valid_domain(w))
                list.push_back(lower_domain(w));
            else
                add_problem(errs, quoted(w) + " is not a host name");
        }
    }
    if (!errs.empty()) return errs;
    out = std::move(list);
    return {};
}

std::string parse(const Option&, const Lines& lines, bulk::Senders& out) {
    bulk::Senders s;
    std::string errs;
    for (const auto& w : words_of(lines)) {
        bool ipish = w.find(':') != std::string::npos || w.find('/') != std::string::npos ||
                     w.find_first_not_of("0123456789.") == std::string::npos;
        if (ipish) {
            if (auto c = network(w, errs)) s.networks.add(*c);
        } else if (valid_domain(w)) {
            s.domains.push_back(lower_domain(w));
        } else {
            add_problem(errs, quoted(w) + " is neither a domain nor a network");
        }
    }
    if (!errs.empty()) return errs;
    out = std::move(s);
    return {};
}

std::string parse(const Option&, const Lines& lines, std::optional<util::Day>& out) {
    const std::string& v = single(lines);
    if (v.empty()) {
        out.reset();
        return {};
    }
    auto d = util::parse_date(v);
    if (!d) return quoted(v) + " is not a date";
    out = *d;
    return {};
}

std::string parse(const Option&, const Lines& lines, std::optional<net::Endpoint>& out) {
    const std::string& v = single(lines);
    if (v.empty()) {
        out.reset();
        return {};
    }
    std::string err;
    auto ep = net::parse_endpoint(v, 0, "address", err);
    if (!ep) return err;
    out = *ep;
    return {};
}

std::string parse_choice(const Option& o, const Lines& lines, size_t& index) {
    const std::string& v = single(lines);
    size_t i = o.names.find(v);
    if (i == o.names.count) return quoted(v) + " is not a valid choice";
    index = i;
    return {};
}

}  // namespace regmilter::config::values
