// net: where to connect or listen — ports, IP:PORT endpoints (nameservers,
// the statistics listener, Redis) and libmilter socket specifications — one
// parser each, for the config, the daemon, the CLI and the test tools.
// Text in, values out: no DNS, no sockets opened here. Thread-safe.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "net/address.hpp"

namespace regmilter::net {

// A TCP/UDP port: 1..65535 in decimal, no sign, no leading blanks.
std::optional<uint16_t> parse_port(std::string_view text);

// An IP address and a port. Never a host name: resolving one would need DNS.
struct Endpoint {
    Address address;
    uint16_t port = 0;

    // "192.0.2.1:5353", "[2001:db8::1]:5353"; the port is left out when it
    // equals `default_port`.
    std::string str(uint16_t default_port = 0) const;
    // The socket address for connect() or bind() into `out`; returns its length.
    socklen_t to_sockaddr(sockaddr_storage& out) const;
    bool operator==(const Endpoint& o) const { return address == o.address && port == o.port; }
};

// "IP", "IP:PORT", "[IPv6]", "[IPv6]:PORT" or a bare IPv6 address; a missing
// port is `default_port` (0: a port is required). On failure nullopt and
// `error` is a sentence naming `what` and the text, e.g.
//   nameserver "ns.example:53": not an IP address (use 192.0.2.1, 192.0.2.1:5353, ...)
std::optional<Endpoint> parse_endpoint(std::string_view text, uint16_t default_port, std::string_view what,
                                       std::string& error);

// A libmilter socket: "unix:/PATH", "local:/PATH", "/PATH", "inet:PORT",
// "inet:PORT@HOST", "inet6:PORT", "inet6:PORT@HOST" (HOST an address or a
// name, as libmilter's smfi_setconn takes it).
struct SocketSpec {
    enum class Kind { unix_path, inet, inet6 } kind = Kind::unix_path;
    std::string path;          // unix_path: the socket file, absolute
    std::string host;          // inet, inet6: empty means every address
    uint16_t port = 0;         // inet, inet6
    std::string conn() const;  // as smfi_setconn wants it ("local:/path", "inet:25@host")
    // True for an inet socket bound to something other than a loopback
    // address (no host, 0.0.0.0, ::, a name, a routable address).
    bool reachable_from_network() const;
};

// On failure nullopt and `error` says what is wrong and the accepted forms.
std::optional<SocketSpec> parse_socket(std::string_view text, std::string& error);

}  // namespace regmilter::net
