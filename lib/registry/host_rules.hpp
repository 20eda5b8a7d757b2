// registry: the address and name rules of check (a), "a single, static host
// address": special-use ranges, and PTR names that look dynamic. Pure
// functions over an address and a name: no DNS, no I/O; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/address.hpp"

namespace regmilter::registry {

// A special-use range an address falls in (IANA IPv4/IPv6 Special-Purpose
// Address Registries, RFC 6890 and later RFCs).
struct SpecialUse {
    std::string network;  // "192.0.2.0/24"
    std::string name;     // "documentation (RFC 5737)"
    // Loopback, unspecified, "this network", multicast, reserved/broadcast:
    // never a mail server's address; refused even with --allow-special.
    bool never_a_host = false;
};

// The range `ip` (unmapped first) is in, most specific first; nullopt for an
// ordinary global unicast address. Refused unless --allow-special:
//   IPv4  10/8, 172.16/12, 192.168/16 (RFC 1918), 100.64/10 (RFC 6598),
//         169.254/16 (RFC 3927), 192.0.0/24 (RFC 6890), 192.0.2/24,
//         198.51.100/24, 203.0.113/24 (RFC 5737), 192.88.99/24 (RFC 7526),
//         198.18/15 (RFC 2544)
//   IPv6  anything outside 2000::/3 (RFC 4291 §2.4: ULA fc00::/7, link-local
//         fe80::/10, NAT64 64:ff9b::/96 and 64:ff9b:1::/48, discard 100::/64,
//         ...), and inside it 2001::/23 (RFC 2928; Teredo 2001::/32,
//         benchmarking 2001:2::/48, ORCHID 2001:10::/28 and 2001:20::/28),
//         2001:db8::/32 (RFC 3849), 2002::/16 (RFC 3056), 3fff::/20 (RFC 9637)
// Refused always (never_a_host): 0/8, 127/8, 224/4, 240/4 (with
// 255.255.255.255); ::/128, ::1/128, ff00::/8.
std::optional<SpecialUse> special_use(const net::Address& ip);

// The access-network words of the dynamic-PTR rule, in alphabetical order.
const std::vector<std::string_view>& generic_ptr_words();

// Empty when `hostname` (lower case, no trailing dot) does not look like the
// name of a dynamically addressed access line for `ip`; otherwise why it does.
// The rule looks only at the host part: the name without its last two labels
// ("a.b.dsl.isp.example" -> "a.b.dsl"; names of two labels have none). The
// host part is cut into tokens at every character other than a-z and 0-9.
//   words    a token, without trailing digits, is one of generic_ptr_words()
//            or starts with "dyn", "dhcp" or "ppp" ("dsl2", "dynamic", "pppoe")
//   IPv4     three consecutive octets of the address, in order or reversed,
//            appear as three consecutive decimal numbers of the host part
//            ("host-203-0-113-7", "7.113.0.203.in", "ip68-230-113-7"); or a
//            token contains the twelve zero-padded digits of the address
//            ("203000113007") or its eight hex digits ("pcb007107")
//   IPv6     the last three 16-bit groups appear, in order, as three
//            consecutive hex numbers ("2001-db8-0-0-0-1-2-3" for ...:1:2:3);
//            or a token contains the 16 hex digits of the interface
//            identifier; or the host part has 16 or more one-hex-digit labels
//            (an ip6.arpa-style nibble name)
std::string dynamic_ptr_reason(std::string_view hostname, const net::Address& ip);

}  // namespace regmilter::registry
