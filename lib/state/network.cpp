// state: client networks by prefix length.
#include "state/network.hpp"

#include <algorithm>
#include <array>

namespace regmilter::state {

net::Cidr client_network(const net::Address& client, NetworkPrefixes prefixes) {
    net::Address a = client.unmapped();
    net::Cidr out;
    if (a.is_v4()) {
        int p = std::clamp(prefixes.v4, 0, 32);
        uint32_t mask = p == 0 ? 0 : ~uint32_t(0) << (32 - p);
        out.network = net::Address::v4(a.v4_host_order() & mask);
        out.prefix = p;
        return out;
    }
    int p = std::clamp(prefixes.v6, 0, 128);
    std::array<uint8_t, 16> bytes{};
    for (int i = 0; i < 16; ++i) {
        int bits = std::clamp(p - 8 * i, 0, 8);
        uint8_t mask = bits == 0 ? 0 : uint8_t(0xff << (8 - bits));
        bytes[i] = a.bytes()[i] & mask;
    }
    out.network = net::Address::v6(bytes);
    out.prefix = p;
    return out;
}

}  // namespace regmilter::state
