// net: IPv4/IPv6 addresses and CIDR sets — parse, print, match.
// No DNS and no I/O here. All types are values; const methods are thread-safe.
// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is an IPv4 client for every
// lookup: call unmapped() on anything that came from the network.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace regmilter::net {

class Address {
public:
    enum class Family : uint8_t { v4, v6 };

    Address() = default;  // 0.0.0.0
    static Address v4(uint32_t host_order);
    static Address v6(const std::array<uint8_t, 16>& bytes);

    // Strict parse of a textual address: dotted quad with exactly four decimal
    // parts 0..255 (no leading zeros beyond "0"), or RFC 4291 IPv6 text (with
    // "::" and an embedded dotted quad). No brackets, no zone id, no spaces.
    static std::optional<Address> parse(std::string_view text);

    Family family() const { return family_; }
    bool is_v4() const { return family_ == Family::v4; }
    bool is_v6() const { return family_ == Family::v6; }
    // The 4 (v4) or 16 (v6) bytes, network order.
    const uint8_t* bytes() const { return bytes_.data(); }
    size_t size() const { return is_v4() ? 4 : 16; }
    uint32_t v4_host_order() const;

    // ::ffff:a.b.c.d becomes a.b.c.d; anything else is returned unchanged.
    Address unmapped() const;
    // True for ::ffff:0:0/96.
    bool is_v4_mapped() const;

    // Canonical text: dotted quad, or RFC 5952 compressed lower-case IPv6.
    std::string str() const;
    // Every byte spelled out: IPv4 dotted quad; IPv6 32 lower-case nibbles
    // grouped as eight 4-digit groups joined by `sep` (":" gives the full form).
    std::string full(char sep = ':') const;
    // Nibble/octet labels reversed, as in in-addr.arpa / ip6.arpa and RFC 5782:
    // "36.2.0.192" or "7.0.0.0....8.b.d.0.1.0.0.2" (no trailing zone).
    std::string reversed() const;

    // True when the first `prefix` bits equal those of `network` (same family).
    bool in(const Address& network, int prefix) const;

    bool operator==(const Address& o) const { return family_ == o.family_ && bytes_ == o.bytes_; }
    bool operator!=(const Address& o) const { return !(*this == o); }
    bool operator<(const Address& o) const;

private:
    Family family_ = Family::v4;
    std::array<uint8_t, 16> bytes_{};  // v4 uses the first 4
};

struct Cidr {
    Address network;
    int prefix = 0;

    // "192.0.2.0/24", "2001:db8::/32", or a bare address (/32 or /128).
    // Host bits set below the prefix are an error, Postfix-style:
    // non-null host address bits in "10.1.2.3/24", perhaps you should use "10.1.2.0/24" instead
    struct Parsed;
    static Parsed parse(std::string_view text);

    bool contains(const Address& a) const;  // a is unmapped first
    std::string str() const;
};

struct Cidr::Parsed {
    std::optional<Cidr> cidr;
    std::string error;  // set when !cidr
};

// A set of networks of both families; contains() is a linear scan over
// per-family prefix lists (sets here are tens of entries, not millions).
class CidrSet {
public:
    void add(const Cidr& c) { nets_.push_back(c); }
    bool contains(const Address& a) const;
    bool empty() const { return nets_.empty(); }
    const std::vector<Cidr>& networks() const { return nets_; }

private:
    std::vector<Cidr> nets_;
};

}  // namespace regmilter::net
