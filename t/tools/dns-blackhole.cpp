// dns-blackhole: a DNS endpoint that takes queries and never answers, for
// timeout tests. Binds UDP and TCP on 127.0.0.1 (the same port), prints the
// port on stdout, then reads and drops everything until SIGTERM/SIGINT or
// --max-seconds (default 300) pass. TCP connections are accepted and held open.
// --servfail: every UDP query is answered at once with its own header and
// question, RCODE SERVFAIL (RFC 1035 §4.1.1: 2), a resolver that is up but fails.
//
//   dns-blackhole [--port N] [--max-seconds S] [--servfail]   (port 0 / absent: any free port)
//
// Exit: 0 after a signal or the time limit, 2 on bad usage, 1 when it cannot bind.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../support/loopback.hpp"

namespace {

volatile sig_atomic_t g_stop = 0;
void on_signal(int) {
    g_stop = 1;
}

using regmilter::testing::bound_socket;
using regmilter::testing::parse_uint;
using regmilter::testing::port_of;

}  // namespace

int main(int argc, char** argv) {
    unsigned long port = 0, max_seconds = 300;
    bool servfail = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--servfail") {
            servfail = true;
        } else if (a == "--port" && i + 1 < argc && parse_uint(argv[i + 1], 65535, port)) {
            ++i;
        } else if (a == "--max-seconds" && i + 1 < argc && parse_uint(argv[i + 1], 86400, max_seconds) &&
                   max_seconds > 0) {
            ++i;
        } else {
            std::fprintf(stderr, "usage: dns-blackhole [--port N] [--max-seconds 1..86400] [--servfail]\n");
            return 2;
        }
    }

    int udp = -1, tcp = -1;
    // With port 0: take the kernel's free UDP port and try TCP on the same one.
    for (int attempt = 0; attempt < 50 && tcp < 0; ++attempt) {
        udp = bound_socket(SOCK_DGRAM, uint16_t(port));
        if (udp < 0) break;
        tcp = bound_socket(SOCK_STREAM, port_of(udp), 16);
        if (tcp < 0) {
            close(udp);
            udp = -1;
            if (port != 0) break;
        }
    }
    if (udp < 0 || tcp < 0) {
        std::fprintf(stderr, "dns-blackhole: cannot bind 127.0.0.1:%lu: %s\n", port, std::strerror(errno));
        return 1;
    }

    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);

    std::printf("%u\n", unsigned(port_of(udp)));
    std::fflush(stdout);

    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(max_seconds);
    std::vector<pollfd> fds{{udp, POLLIN, 0}, {tcp, POLLIN, 0}};
    char buf[65536];
    while (!g_stop && std::chrono::steady_clock::now() < end) {
        int n = poll(fds.data(), fds.size(), 200);
        if (n <= 0) continue;
        if (fds[0].revents & POLLIN) {
            sockaddr_in from{};
            socklen_t flen = sizeof from;
            ssize_t r = recvfrom(udp, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen);
            if (servfail && r >= 12) {
                // QR=1, opcode and RD kept, RA=1, RCODE=2; the question is echoed, no records.
                buf[2] = char((buf[2] & 0x79) | 0x80);
                buf[3] = char(0x80 | 2);
                std::memset(buf + 6, 0, 6);  // ANCOUNT, NSCOUNT, ARCOUNT: 0 (an OPT record is dropped)
                size_t end = 12;             // past the question: the name, then QTYPE and QCLASS
                while (end < size_t(r) && buf[end] != 0) end += size_t(uint8_t(buf[end])) + 1;
                end = std::min(end + 5, size_t(r));
                (void)sendto(udp, buf, end, 0, reinterpret_cast<sockaddr*>(&from), flen);
            }
        }
        if (fds[1].revents & POLLIN) {
            int c = accept(tcp, nullptr, nullptr);
            if (c >= 0 && fds.size() < 1000)
                fds.push_back({c, POLLIN, 0});
            else if (c >= 0)
                close(c);
        }
        for (size_t i = 2; i < fds.size();) {
            if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t r = recv(fds[i].fd, buf, sizeof buf, 0);
                if (r <= 0) {
                    close(fds[i].fd);
                    fds.erase(fds.begin() + long(i));
                    continue;
                }
            }
            ++i;
        }
    }
    for (const pollfd& p : fds) close(p.fd);
    return 0;
}
