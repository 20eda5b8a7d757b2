// Loopback sockets for the test tools that stand in for DNS servers
// (dns-blackhole, dns-delay): bind 127.0.0.1:port, read back the port,
// parse a number argument. Header-only; nothing here talks beyond loopback.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>

namespace regmilter::testing {

// A socket of `type` bound to 127.0.0.1:port (0: any free port), listening
// with `backlog` when it is a stream socket; -1 on failure.
inline int bound_socket(int type, uint16_t port, int backlog = 64) {
    int fd = socket(AF_INET, type, 0);
    if (fd < 0) return -1;
    int one = 1;
    if (type == SOCK_STREAM) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
        (type == SOCK_STREAM && listen(fd, backlog) != 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

// The local port of a bound socket.
inline uint16_t port_of(int fd) {
    sockaddr_in sa{};
    socklen_t len = sizeof sa;
    getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    return ntohs(sa.sin_port);
}

// A whole decimal number no greater than `max`.
inline bool parse_uint(const char* s, unsigned long max, unsigned long& out) {
    char* end = nullptr;
    errno = 0;
    out = std::strtoul(s, &end, 10);
    return errno == 0 && end && *end == '\0' && end != s && out <= max;
}

}  // namespace regmilter::testing
