#include "net/endpoint.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "util/strings.hpp"

namespace regmilter::net {

std::optional<uint16_t> parse_port(std::string_view s) {
    if (s.empty() || s.size() > 5) return std::nullopt;
    unsigned v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + unsigned(c - '0');
    }
    if (v == 0 || v > 65535) return std::nullopt;
    return uint16_t(v);
}

socklen_t Endpoint::to_sockaddr(sockaddr_storage& out) const {
    out = sockaddr_storage{};
    if (address.is_v4()) {
        sockaddr_in in{};
        in.sin_family = AF_INET;
        in.sin_port = htons(port);
        std::memcpy(&in.sin_addr, address.bytes(), 4);
        std::memcpy(&out, &in, sizeof in);
        return sizeof in;
    }
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    std::memcpy(&in6.sin6_addr, address.bytes(), 16);
    std::memcpy(&out, &in6, sizeof in6);
    return sizeof in6;
}

std::string Endpoint::str(uint16_t default_port) const {
    std::string a = address.str();
    if (port == default_port) return a;
    if (address.is_v6()) return "[" + a + "]:" + std::to_string(port);
    return a + ":" + std::to_string(port);
}

std::optional<Endpoint> parse_endpoint(std::string_view text, uint16_t default_port, std::string_view what,
                                       std::string& error) {
    auto fail = [&](const std::string& why) -> std::optional<Endpoint> {
        error = std::string(what) + " \"" + std::string(text) + "\": " + why;
        return std::nullopt;
    };
    if (text.empty()) return fail("empty");
    std::string_view host = text, port_text;
    bool has_port = false;
    if (text.front() == '[') {
        size_t close = text.find(']');
        if (close == std::string_view::npos) return fail("missing ']' after the IPv6 address");
        host = text.substr(1, close - 1);
        std::string_view rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return fail("expected ':PORT' after ']'");
            port_text = rest.substr(1);
            has_port = true;
        }
        if (host.find(':') == std::string_view::npos) return fail("brackets are for IPv6 addresses only");
    } else if (std::count(text.begin(), text.end(), ':') == 1) {
        size_t colon = text.find(':');
        host = text.substr(0, colon);
        port_text = text.substr(colon + 1);
        has_port = true;
    }
    Endpoint ep;
    ep.port = default_port;
    if (has_port) {
        auto p = parse_port(port_text);
        if (!p) return fail("port \"" + std::string(port_text) + "\" is not a number 1..65535");
        ep.port = *p;
    }
    if (ep.port == 0) return fail("a port is required (IP:PORT or [IPv6]:PORT)");
    if (host.find('%') != std::string_view::npos) return fail("IPv6 zone ids are not supported");
    auto addr = Address::parse(host);
    if (!addr) {
        std::string eg = default_port ? "192.0.2.1, 192.0.2.1:5353, 2001:db8::1 or [2001:db8::1]:5353"
                                      : "192.0.2.1:5353 or [2001:db8::1]:5353";
        return fail("not an IP address (use " + eg + ")");
    }
    ep.address = *addr;
    return ep;
}

std::string SocketSpec::conn() const {
    switch (kind) {
        case Kind::unix_path:
            return "local:" + path;
        case Kind::inet:
        case Kind::inet6:
            return std::string(kind == Kind::inet ? "inet:" : "inet6:") + std::to_string(port) +
                   (host.empty() ? "" : "@" + host);
    }
    return {};
}

bool SocketSpec::reachable_from_network() const {
    if (kind == Kind::unix_path) return false;
    auto a = Address::parse(host);
    if (!a) return !util::iequals(host, "localhost");
    Address u = a->unmapped();
    if (u.is_v4()) return !u.in(*Address::parse("127.0.0.0"), 8);
    return u != *Address::parse("::1");
}

std::optional<SocketSpec> parse_socket(std::string_view text, std::string& error) {
    auto fail = [&](const std::string& why) -> std::optional<SocketSpec> {
        error = "socket \"" + std::string(text) + "\": " + why;
        return std::nullopt;
    };
    SocketSpec s;
    std::string_view path;
    if (util::starts_with(text, "unix:")) {
        path = text.substr(5);
    } else if (util::starts_with(text, "local:")) {
        path = text.substr(6);
    } else if (util::starts_with(text, "/")) {
        path = text;
    } else if (util::starts_with(text, "inet:") || util::starts_with(text, "inet6:")) {
        s.kind = text[4] == '6' ? SocketSpec::Kind::inet6 : SocketSpec::Kind::inet;
        std::string_view rest = text.substr(text.find(':') + 1);
        size_t at = rest.find('@');
        auto port = parse_port(rest.substr(0, at));
        if (!port) return fail("the port must be a number from 1 to 65535 (inet:PORT@HOST)");
        s.port = *port;
        if (at != std::string_view::npos) {
            s.host = std::string(rest.substr(at + 1));
            if (s.host.empty()) return fail("empty host after '@' (inet:PORT@HOST)");
            for (char c : s.host)
                if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f)
                    return fail("the host holds blanks or control bytes");
        }
        return s;
    } else {
        return fail("use unix:/PATH, local:/PATH, inet:PORT@HOST or inet6:PORT@HOST");
    }
    if (path.empty() || path.front() != '/')
        return fail("a unix socket needs an absolute path (unix:/run/regmilter/regmilter.sock)");
    // sockaddr_un.sun_path holds 108 bytes with the terminating NUL.
    if (path.size() > 107) return fail("the path is longer than 107 bytes (the unix socket limit)");
    if (path.find('\0') != std::string_view::npos) return fail("NUL byte in the path");
    s.path = std::string(path);
    return s;
}

}  // namespace regmilter::net
