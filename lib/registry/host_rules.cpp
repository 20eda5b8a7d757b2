#include "registry/host_rules.hpp"

#include <algorithm>
#include <cstdio>

namespace regmilter::registry {

namespace {

struct Range {
    const char* network;
    const char* name;
    bool never;
};

// Most specific first: the first range that holds the address names it.
const Range v4_ranges[] = {
    {"0.0.0.0/8", "\"this network\" (RFC 791)", true},
    {"127.0.0.0/8", "loopback (RFC 1122)", true},
    {"224.0.0.0/4", "multicast (RFC 5771)", true},
    {"255.255.255.255/32", "limited broadcast (RFC 919)", true},
    {"240.0.0.0/4", "reserved (RFC 1112)", true},
    {"10.0.0.0/8", "private use (RFC 1918)", false},
    {"100.64.0.0/10", "shared address space (RFC 6598)", false},
    {"169.254.0.0/16", "link-local (RFC 3927)", false},
    {"172.16.0.0/12", "private use (RFC 1918)", false},
    {"192.0.0.0/24", "IETF protocol assignments (RFC 6890)", false},
    {"192.0.2.0/24", "documentation, TEST-NET-1 (RFC 5737)", false},
    {"192.88.99.0/24", "6to4 relay anycast (RFC 7526)", false},
    {"192.168.0.0/16", "private use (RFC 1918)", false},
    {"198.18.0.0/15", "benchmarking (RFC 2544)", false},
    {"198.51.100.0/24", "documentation, TEST-NET-2 (RFC 5737)", false},
    {"203.0.113.0/24", "documentation, TEST-NET-3 (RFC 5737)", false},
};

const Range v6_ranges[] = {
    {"::/128", "unspecified (RFC 4291)", true},
    {"::1/128", "loopback (RFC 4291)", true},
    {"ff00::/8", "multicast (RFC 4291)", true},
    {"64:ff9b::/96", "NAT64 well-known prefix (RFC 6052)", false},
    {"64:ff9b:1::/48", "NAT64 local-use prefix (RFC 8215)", false},
    {"100::/64", "discard-only (RFC 6666)", false},
    {"fc00::/7", "unique local (RFC 4193)", false},
    {"fe80::/10", "link-local (RFC 4291)", false},
    {"2001::/32", "Teredo (RFC 4380)", false},
    {"2001:2::/48", "benchmarking (RFC 5180)", false},
    {"2001:10::/28", "ORCHID (RFC 4843)", false},
    {"2001:20::/28", "ORCHIDv2 (RFC 7343)", false},
    {"2001:db8::/32", "documentation (RFC 3849)", false},
    {"2001::/23", "IETF protocol assignments (RFC 2928)", false},
    {"2002::/16", "6to4 (RFC 3056)", false},
    {"3fff::/20", "documentation (RFC 9637)", false},
};

struct Compiled {
    net::Cidr cidr;
    const Range* range;
};

std::vector<Compiled> compile(const Range* begin, const Range* end) {
    std::vector<Compiled> out;
    for (const Range* r = begin; r != end; ++r) out.push_back({*net::Cidr::parse(r->network).cidr, r});
    return out;
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_hex(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f');
}
bool is_alnum(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'z');
}

// Maximal runs of characters for which pred holds.
template <typename Pred>
std::vector<std::string_view> runs(std::string_view s, Pred pred) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && !pred(s[i])) ++i;
        size_t b = i;
        while (i < s.size() && pred(s[i])) ++i;
        if (i > b) out.push_back(s.substr(b, i - b));
    }
    return out;
}

// The numeric value of a run of at most `max_len` digits in `base`, or -1.
long value_of(std::string_view run, int base, size_t max_len) {
    if (run.empty() || run.size() > max_len) return -1;
    long v = 0;
    for (char c : run) v = v * base + (is_digit(c) ? c - '0' : c - 'a' + 10);
    return v;
}

// True when `want` appears as consecutive elements of `have`.
bool contains_sequence(const std::vector<long>& have, const std::vector<long>& want) {
    if (want.empty() || have.size() < want.size()) return false;
    return std::search(have.begin(), have.end(), want.begin(), want.end()) != have.end();
}

std::string hex_of(const uint8_t* b, size_t n) {
    std::string s;
    char buf[3];
    for (size_t i = 0; i < n; ++i) {
        std::snprintf(buf, sizeof buf, "%02x", b[i]);
        s += buf;
    }
    return s;
}

}  // namespace

std::optional<SpecialUse> special_use(const net::Address& in) {
    static const std::vector<Compiled> v4 = compile(std::begin(v4_ranges), std::end(v4_ranges));
    static const std::vector<Compiled> v6 = compile(std::begin(v6_ranges), std::end(v6_ranges));
    static const net::Cidr global = *net::Cidr::parse("2000::/3").cidr;
    const net::Address ip = in.unmapped();
    for (const auto& c : ip.is_v4() ? v4 : v6)
        if (c.cidr.contains(ip)) return SpecialUse{c.range->network, c.range->name, c.range->never};
    if (ip.is_v6() && !global.contains(ip))
        return SpecialUse{"outside 2000::/3", "not global unicast (RFC 4291 section 2.4)", false};
    return std::nullopt;
}

const std::vector<std::string_view>& generic_ptr_words() {
    static const std::vector<std::string_view> words = {
        "adsl", "broadband", "cable",  "cablemodem",  "client", "clients", "cpe",  "cust",    "customer",
        "dhcp", "dial",      "dialin", "dialup",      "dip",    "dsl",     "dyn",  "dynamic", "dynip",
        "pool", "ppp",       "pppoe",  "residential", "sdsl",   "vdsl",    "xdsl",
    };
    return words;
}

std::string dynamic_ptr_reason(std::string_view hostname, const net::Address& in) {
    const net::Address ip = in.unmapped();
    // The host part: everything before the last two labels.
    size_t cut = hostname.size();
    for (int dots = 0; dots < 2; ++dots) {
        size_t d = hostname.rfind('.', cut == 0 ? 0 : cut - 1);
        if (d == std::string_view::npos || cut == 0) return {};
        cut = d;
    }
    const std::string_view host = hostname.substr(0, cut);
    const std::string where = "host part \"" + std::string(host) + "\"";

    for (std::string_view token : runs(host, is_alnum)) {
        std::string_view t = token;
        while (!t.empty() && is_digit(t.back())) t.remove_suffix(1);
        if (t.empty()) continue;
        const auto& words = generic_ptr_words();
        bool generic = std::find(words.begin(), words.end(), t) != words.end() || t.rfind("dyn", 0) == 0 ||
                       t.rfind("dhcp", 0) == 0 || t.rfind("ppp", 0) == 0;
        if (generic)
            return where + " has the access-network word \"" + std::string(t) +
                   "\" (a dynamic-looking name; --allow-generic-ptr accepts it)";
    }

    const auto tokens = runs(host, is_alnum);
    auto token_has = [&](const std::string& needle) {
        for (std::string_view t : tokens)
            if (t.find(needle) != std::string_view::npos) return true;
        return false;
    };
    const std::string embeds = where + " embeds the address ";
    const std::string hint = " (a dynamic-looking name; --allow-generic-ptr accepts it)";
    const uint8_t* b = ip.bytes();
    if (ip.is_v4()) {
        std::vector<long> numbers;
        for (std::string_view r : runs(host, is_digit)) numbers.push_back(value_of(r, 10, 3));
        const std::vector<long> o = {b[0], b[1], b[2], b[3]};
        const std::vector<std::vector<long>> wanted = {
            {o[0], o[1], o[2]}, {o[1], o[2], o[3]}, {o[3], o[2], o[1]}, {o[2], o[1], o[0]}};
        for (const auto& w : wanted)
            if (contains_sequence(numbers, w)) return embeds + "octets " + ip.str() + hint;
        char padded[16], reversed[16];
        std::snprintf(padded, sizeof padded, "%03u%03u%03u%03u", b[0], b[1], b[2], b[3]);
        std::snprintf(reversed, sizeof reversed, "%03u%03u%03u%03u", b[3], b[2], b[1], b[0]);
        if (token_has(padded) || token_has(reversed)) return embeds + "digits " + ip.str() + hint;
        if (token_has(hex_of(b, 4))) return embeds + "in hex (" + hex_of(b, 4) + ")" + hint;
        return {};
    }
    std::vector<long> numbers;
    for (std::string_view r : runs(host, is_hex)) numbers.push_back(value_of(r, 16, 4));
    const std::vector<long> last3 = {long(b[10]) << 8 | b[11], long(b[12]) << 8 | b[13],
                                     long(b[14]) << 8 | b[15]};
    if (contains_sequence(numbers, last3)) return embeds + "groups of " + ip.str() + hint;
    const std::string iid = hex_of(b + 8, 8);
    if (token_has(iid)) return embeds + "interface identifier " + iid + hint;
    size_t nibbles = 0;
    for (std::string_view label : runs(host, [](char c) { return c != '.'; }))
        if (label.size() == 1 && is_hex(label[0])) ++nibbles;
    if (nibbles >= 16) return where + " is a nibble-reversed address" + hint;
    return {};
}

}  // namespace regmilter::registry
