// state: how greylisting and rate limits group clients — the network an
// address belongs to under a prefix length (/24 and /64 by default), so that a
// sender's pool of outbound hosts counts as one client. An IPv4-mapped address
// (::ffff:a.b.c.d) is IPv4. Pure functions, no I/O; thread-safe.
#pragma once

#include "net/address.hpp"

namespace regmilter::state {

// Prefix lengths: v4 0..32, v6 0..128 (clamped into range).
struct NetworkPrefixes {
    int v4 = 24;
    int v6 = 64;
};

// `client` (unmapped first) with every bit past the family's prefix cleared:
// 198.51.100.7 -> 198.51.100.0/24, 2001:db8:1:2:3::4 -> 2001:db8:1:2::/64.
net::Cidr client_network(const net::Address& client, NetworkPrefixes prefixes);

}  // namespace regmilter::state
