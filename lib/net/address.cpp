#include "net/address.hpp"

#include <cstdio>

namespace regmilter::net {

namespace {

// One IPv4 dotted quad into 4 bytes; strict (RFC 7208 ip4-network is
// qnum "." qnum "." qnum "." qnum, qnum = 0..255 without leading zeros).
bool parse_quad(std::string_view s, uint8_t out[4]) {
    int part = 0;
    size_t i = 0;
    while (part < 4) {
        if (i >= s.size() || s[i] < '0' || s[i] > '9') return false;
        unsigned v = 0;
        size_t start = i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
            v = v * 10 + unsigned(s[i] - '0');
            if (v > 255 || i - start >= 3) return false;
            ++i;
        }
        if (i - start > 1 && s[start] == '0') return false;
        out[part++] = uint8_t(v);
        if (part < 4) {
            if (i >= s.size() || s[i] != '.') return false;
            ++i;
        }
    }
    return i == s.size();
}

int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool parse_v6(std::string_view s, std::array<uint8_t, 16>& out) {
    uint16_t groups[8] = {};
    int n = 0;     // groups written
    int gap = -1;  // index where "::" stands
    size_t i = 0;
    if (s.size() < 2) return false;
    if (s[0] == ':') {
        if (s[1] != ':') return false;
        gap = 0;
        i = 2;
        if (i == s.size()) {
            out.fill(0);
            return true;
        }
    }
    while (i < s.size()) {
        // An embedded IPv4 quad may end the address.
        size_t j = i;
        while (j < s.size() && s[j] != ':' && s[j] != '.') ++j;
        if (j < s.size() && s[j] == '.') {
            if (n > 6) return false;
            uint8_t q[4];
            if (!parse_quad(s.substr(i), q)) return false;
            groups[n++] = uint16_t(q[0] << 8 | q[1]);
            groups[n++] = uint16_t(q[2] << 8 | q[3]);
            i = s.size();
            break;
        }
        if (j == i || j - i > 4 || n >= 8) return false;
        unsigned v = 0;
        for (size_t k = i; k < j; ++k) {
            int h = hexval(s[k]);
            if (h < 0) return false;
            v = v << 4 | unsigned(h);
        }
        groups[n++] = uint16_t(v);
        i = j;
        if (i == s.size()) break;
        ++i;  // the ':'
        if (i < s.size() && s[i] == ':') {
            if (gap >= 0) return false;
            gap = n;
            ++i;
            if (i == s.size()) break;
        } else if (i == s.size()) {
            return false;  // trailing single ':'
        }
    }
    if (gap < 0 && n != 8) return false;
    if (gap >= 0 && n > 7) return false;
    uint16_t full[8] = {};
    if (gap < 0) {
        for (int k = 0; k < 8; ++k) full[k] = groups[k];
    } else {
        for (int k = 0; k < gap; ++k) full[k] = groups[k];
        int tail = n - gap;
        for (int k = 0; k < tail; ++k) full[8 - tail + k] = groups[gap + k];
    }
    for (int k = 0; k < 8; ++k) {
        out[2 * k] = uint8_t(full[k] >> 8);
        out[2 * k + 1] = uint8_t(full[k] & 0xff);
    }
    return true;
}

}  // namespace

Address Address::v4(uint32_t h) {
    Address a;
    a.family_ = Family::v4;
    a.bytes_[0] = uint8_t(h >> 24);
    a.bytes_[1] = uint8_t(h >> 16);
    a.bytes_[2] = uint8_t(h >> 8);
    a.bytes_[3] = uint8_t(h);
    return a;
}

Address Address::v6(const std::array<uint8_t, 16>& b) {
    Address a;
    a.family_ = Family::v6;
    a.bytes_ = b;
    return a;
}

std::optional<Address> Address::parse(std::string_view text) {
    if (text.find(':') == std::string_view::npos) {
        uint8_t q[4];
        if (!parse_quad(text, q)) return std::nullopt;
        return v4(uint32_t(q[0]) << 24 | uint32_t(q[1]) << 16 | uint32_t(q[2]) << 8 | q[3]);
    }
    std::array<uint8_t, 16> b{};
    if (!parse_v6(text, b)) return std::nullopt;
    return v6(b);
}

uint32_t Address::v4_host_order() const {
    return uint32_t(bytes_[0]) << 24 | uint32_t(bytes_[1]) << 16 | uint32_t(bytes_[2]) << 8 | bytes_[3];
}

bool Address::is_v4_mapped() const {
    if (!is_v6()) return false;
    for (int i = 0; i < 10; ++i)
        if (bytes_[i] != 0) return false;
    return bytes_[10] == 0xff && bytes_[11] == 0xff;
}

Address Address::unmapped() const {
    if (!is_v4_mapped()) return *this;
    return v4(uint32_t(bytes_[12]) << 24 | uint32_t(bytes_[13]) << 16 | uint32_t(bytes_[14]) << 8 |
              bytes_[15]);
}

std::string Address::str() const {
    char buf[64];
    if (is_v4()) {
        std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", bytes_[0], bytes_[1], bytes_[2], bytes_[3]);
        return buf;
    }
    uint16_t g[8];
    for (int k = 0; k < 8; ++k) g[k] = uint16_t(bytes_[2 * k] << 8 | bytes_[2 * k + 1]);
    // RFC 5952 §4.2: the longest run (>= 2) of zero groups becomes "::", first on a tie.
    int best = -1, best_len = 0;
    for (int k = 0; k < 8;) {
        if (g[k] != 0) {
            ++k;
            continue;
        }
        int start = k;
        while (k < 8 && g[k] == 0) ++k;
        if (k - start > best_len) {
            best = start;
            best_len = k - start;
        }
    }
    if (best_len < 2) best = -1;
    std::string out;
    if (is_v4_mapped()) {
        std::snprintf(buf, sizeof buf, "::ffff:%u.%u.%u.%u", bytes_[12], bytes_[13], bytes_[14], bytes_[15]);
        return buf;
    }
    for (int k = 0; k < 8; ++k) {
        if (k == best) {
            out += "::";
            k += best_len - 1;
            continue;
        }
        if (!out.empty() && out.back() != ':') out += ':';
        std::snprintf(buf, sizeof buf, "%x", g[k]);
        out += buf;
    }
    return out;
}

std::string Address::full(char sep) const {
    if (is_v4()) return str();
    static const char hex[] = "0123456789abcdef";
    std::string out;
    for (int k = 0; k < 16; ++k) {
        if (k > 0 && k % 2 == 0) out += sep;
        out += hex[bytes_[k] >> 4];
        out += hex[bytes_[k] & 15];
    }
    return out;
}

std::string Address::reversed() const {
    std::string out;
    if (is_v4()) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", bytes_[3], bytes_[2], bytes_[1], bytes_[0]);
        return buf;
    }
    static const char hex[] = "0123456789abcdef";
    for (int k = 15; k >= 0; --k) {
        if (!out.empty()) out += '.';
        out += hex[bytes_[k] & 15];
        out += '.';
        out += hex[bytes_[k] >> 4];
    }
    return out;
}

bool Address::in(const Address& network, int prefix) const {
    if (family_ != network.family_) return false;
    int bits = int(size()) * 8;
    if (prefix < 0 || prefix > bits) return false;
    int whole = prefix / 8;
    for (int i = 0; i < whole; ++i)
        if (bytes_[i] != network.bytes_[i]) return false;
    int rest = prefix % 8;
    if (rest == 0) return true;
    uint8_t mask = uint8_t(0xff << (8 - rest));
    return (bytes_[whole] & mask) == (network.bytes_[whole] & mask);
}

bool Address::operator<(const Address& o) const {
    if (family_ != o.family_) return family_ < o.family_;
    return bytes_ < o.bytes_;
}

Cidr::Parsed Cidr::parse(std::string_view text) {
    Parsed p;
    std::string_view addr = text, len;
    auto slash = text.find('/');
    if (slash != std::string_view::npos) {
        addr = text.substr(0, slash);
        len = text.substr(slash + 1);
    }
    auto a = Address::parse(addr);
    if (!a) {
        p.error = "\"" + std::string(addr) + "\" is not an IPv4 or IPv6 address";
        return p;
    }
    int bits = int(a->size()) * 8;
    int prefix = bits;
    if (slash != std::string_view::npos) {
        if (len.empty() || len.size() > 3 || (len.size() > 1 && len[0] == '0')) {
            p.error = "bad prefix length \"/" + std::string(len) + "\" in \"" + std::string(text) + "\"";
            return p;
        }
        prefix = 0;
        for (char c : len) {
            if (c < '0' || c > '9') {
                p.error = "bad prefix length \"/" + std::string(len) + "\" in \"" + std::string(text) + "\"";
                return p;
            }
            prefix = prefix * 10 + (c - '0');
        }
        if (prefix > bits) {
            p.error = "prefix length /" + std::to_string(prefix) + " exceeds " + std::to_string(bits) +
                      " in \"" + std::string(text) + "\"";
            return p;
        }
    }
    // Host bits must be zero.
    Address net = *a;
    std::array<uint8_t, 16> b{};
    for (size_t i = 0; i < a->size(); ++i) {
        int keep = prefix - int(i) * 8;
        uint8_t mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : uint8_t(0xff << (8 - keep));
        b[i] = uint8_t(a->bytes()[i] & mask);
    }
    if (a->is_v4())
        net = Address::v4(uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3]);
    else
        net = Address::v6(b);
    if (net != *a) {
        p.error = "non-null host address bits in \"" + std::string(text) + "\", perhaps you should use \"" +
                  net.str() + "/" + std::to_string(prefix) + "\" instead";
        return p;
    }
    p.cidr = Cidr{net, prefix};
    return p;
}

bool Cidr::contains(const Address& a) const {
    return a.unmapped().in(network, prefix);
}

std::string Cidr::str() const {
    return network.str() + "/" + std::to_string(prefix);
}

bool CidrSet::contains(const Address& a) const {
    Address u = a.unmapped();
    for (const auto& c : nets_)
        if (u.in(c.network, c.prefix)) return true;
    return false;
}

}  // namespace regmilter::net
