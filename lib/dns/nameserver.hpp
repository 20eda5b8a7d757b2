// dns: which recursive nameservers to ask — the "HOST[:PORT]" strings of the
// config and --nameserver, and resolv.conf(5). Text in, values out: no
// queries here. Thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/endpoint.hpp"

namespace regmilter::dns {

// One upstream nameserver: an IP address and a port (53 unless given).
// str() leaves out port 53: "192.0.2.1", "[2001:db8::1]:5353".
struct Nameserver : net::Endpoint {
    Nameserver() { port = 53; }
    Nameserver(net::Address a, uint16_t p) : net::Endpoint{a, p} {}
    std::string str() const { return net::Endpoint::str(53); }
};

// "HOST[:PORT]", "[V6]:PORT", "[V6]" or a bare IPv6 address; HOST is a
// literal address. On failure nullopt and `error` names the input, e.g.
//   nameserver "ns.example:53": not an IP address (use 192.0.2.1, 192.0.2.1:5353, ...)
std::optional<Nameserver> parse_nameserver(std::string_view text, std::string& error);

// The `nameserver` lines of a resolv.conf(5) file, in order. Unparsable lines
// and IPv6 addresses with a zone id are skipped. A missing file, or one without
// nameserver lines, gives 127.0.0.1 (as the C library does).
std::vector<Nameserver> system_nameservers(const std::string& path = "/etc/resolv.conf");

}  // namespace regmilter::dns
