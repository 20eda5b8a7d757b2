// Fuzz target: addresses, CIDRs, endpoints and socket specifications
// (lib/net, and the nameserver syntax of lib/dns). The whole input and each
// of its lines go through every parser. Properties: what parses prints back
// to text that parses to the same value (str(), full(), Cidr::str());
// reversed() has 4 or 32 labels; a CIDR contains its own network (an
// IPv4-mapped one as the IPv4 network [trust] makes of it) and not the
// address just past its end; an endpoint prints back to itself.
#include <cstddef>
#include <cstdint>

#include "dns/nameserver.hpp"
#include "net/address.hpp"
#include "net/endpoint.hpp"
#include "t/fuzz/fuzz.hpp"

using namespace regmilter;
using namespace regmilter::net;

namespace {

void address(std::string_view text) {
    auto a = Address::parse(text);
    if (!a) return;
    auto again = Address::parse(a->str());
    FUZZ_CHECK(again && *again == *a, a->str());
    auto full = Address::parse(a->full());
    FUZZ_CHECK(full && *full == *a, a->full());
    std::string r = a->reversed();
    size_t labels = 1;
    for (char c : r) labels += c == '.';
    FUZZ_CHECK(labels == (a->is_v4() ? 4 : 32), r);
    FUZZ_CHECK(a->in(*a, int(a->size()) * 8), a->str());
    Address u = a->unmapped();
    FUZZ_CHECK(u == *a || (a->is_v4_mapped() && u.is_v4()), a->str());
    FUZZ_CHECK(!(*a < *a), a->str());
}

void cidr(std::string_view text) {
    Cidr::Parsed p = Cidr::parse(text);
    FUZZ_CHECK(bool(p.cidr) == p.error.empty(), p.error);
    if (!p.cidr) return;
    Cidr c = *p.cidr;
    int bits = int(c.network.size()) * 8;
    FUZZ_CHECK(c.prefix >= 0 && c.prefix <= bits, c.str());
    Cidr::Parsed again = Cidr::parse(c.str());
    FUZZ_CHECK(again.cidr && again.cidr->network == c.network && again.cidr->prefix == c.prefix, c.str());
    // As [trust] networks and the other CIDR lists take it (lib/config/values.cpp).
    if (c.network.is_v4_mapped()) c = Cidr{c.network.unmapped(), c.prefix - 96};
    FUZZ_CHECK(c.contains(c.network), c.str());
    CidrSet set;
    set.add(c);
    FUZZ_CHECK(set.contains(c.network), c.str());
    // The first address after the network: outside it (unless the network is everything).
    if (c.prefix > 0) {
        std::array<uint8_t, 16> b{};
        for (size_t i = 0; i < c.network.size(); ++i) b[i] = c.network.bytes()[i];
        int bit = c.prefix - 1;  // the last bit of the prefix, flipped
        b[size_t(bit / 8)] ^= uint8_t(0x80 >> (bit % 8));
        Address other =
            c.network.is_v4()
                ? Address::v4(uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3])
                : Address::v6(b);
        if (!other.is_v4_mapped()) FUZZ_CHECK(!c.contains(other), c.str() + " contains " + other.str());
    }
}

void endpoint(std::string_view text) {
    std::string error;
    auto e = parse_endpoint(text, 53, "fuzz", error);
    FUZZ_CHECK(bool(e) == error.empty(), error);
    if (e) {
        std::string err2;
        auto again = parse_endpoint(e->str(53), 53, "fuzz", err2);
        FUZZ_CHECK(again && *again == *e, e->str(53) + ": " + err2);
    }
    error.clear();
    auto strict = parse_endpoint(text, 0, "fuzz", error);
    if (strict) FUZZ_CHECK(strict->port != 0, strict->str());
    error.clear();
    auto ns = dns::parse_nameserver(text, error);
    if (ns) {
        std::string err2;
        auto again = dns::parse_nameserver(ns->str(), err2);
        FUZZ_CHECK(again && again->address == ns->address && again->port == ns->port,
                   ns->str() + ": " + err2);
    }
    if (auto port = parse_port(text)) FUZZ_CHECK(*port != 0, std::string(text));
}

void socket(std::string_view text) {
    std::string error;
    auto s = parse_socket(text, error);
    FUZZ_CHECK(bool(s) == error.empty(), error);
    if (!s) return;
    (void)s->reachable_from_network();
    std::string conn = s->conn();
    std::string err2;
    auto again = parse_socket(conn, err2);
    FUZZ_CHECK(again && again->kind == s->kind && again->path == s->path && again->host == s->host &&
                   again->port == s->port,
               conn + ": " + err2);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text = fuzz::as_text(data, size);
    std::vector<std::string_view> inputs = fuzz::lines_of(text);
    inputs.push_back(text);
    for (std::string_view in : inputs) {
        address(in);
        cidr(in);
        endpoint(in);
        socket(in);
    }
    return 0;
}
