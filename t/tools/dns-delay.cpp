// dns-delay: a DNS relay that holds every answer from an upstream server for a
// fixed time before passing it on, to model the round trip to a remote
// authoritative server on loopback (make bench: Unbound -> dns-delay -> NSD).
// Binds UDP and TCP on 127.0.0.1 (the same port), prints the port on stdout,
// and relays until SIGTERM/SIGINT or --max-seconds pass.
//
//   dns-delay --upstream 127.0.0.1:PORT [--delay-ms N] [--port N] [--max-seconds S]
//
// UDP: each query goes upstream from its own socket; the answer is sent back
// to the client delay-ms after it arrived. An answer that has not come after
// 5 s is forgotten (the client retries). TCP: each client connection gets its
// own upstream connection; bytes to the server go at once, bytes back wait
// delay-ms. Loopback only: the upstream must be a 127.0.0.0/8 address.
// Bounded: at most 4096 UDP queries and 256 TCP connections in flight.
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
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "../support/loopback.hpp"

namespace {

using Clock = std::chrono::steady_clock;

volatile sig_atomic_t g_stop = 0;
void on_signal(int) {
    g_stop = 1;
}

constexpr size_t max_udp_pending = 4096;
constexpr size_t max_tcp_pairs = 256;
constexpr auto udp_forget_after = std::chrono::seconds(5);

using regmilter::testing::bound_socket;
using regmilter::testing::parse_uint;
using regmilter::testing::port_of;

// "127.0.0.1:5300" -> sockaddr; only 127.0.0.0/8 is accepted.
bool parse_upstream(const std::string& text, sockaddr_in& sa) {
    auto colon = text.rfind(':');
    unsigned long port = 0;
    if (colon == std::string::npos || !parse_uint(text.c_str() + colon + 1, 65535, port) || port == 0)
        return false;
    sa = sockaddr_in{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(uint16_t(port));
    if (inet_pton(AF_INET, text.substr(0, colon).c_str(), &sa.sin_addr) != 1) return false;
    return (ntohl(sa.sin_addr.s_addr) >> 24) == 127;
}

int upstream_socket(int type, const sockaddr_in& upstream) {
    int fd = socket(AF_INET, type, 0);
    if (fd < 0) return -1;
    if (connect(fd, reinterpret_cast<const sockaddr*>(&upstream), sizeof upstream) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

bool write_all(int fd, const char* data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data += n;
        len -= size_t(n);
    }
    return true;
}

// Every read is non-blocking: a poll result may name an fd that was closed
// and reused earlier in the same round, and must not stall the relay.

// A UDP query waiting for its upstream answer.
struct UdpQuery {
    sockaddr_in client{};
    Clock::time_point sent;
};

// A TCP client connection and its own upstream connection.
struct TcpPair {
    int client = -1;
    int upstream = -1;
};

// Bytes held back until `due`. For UDP, `client` says where they go; for TCP,
// `pair` is the client connection's fd (-1 after it closed) and empty bytes
// mean "close the client now" (the upstream closed).
struct Held {
    Clock::time_point due;
    bool tcp = false;
    sockaddr_in client{};
    int pair = -1;
    std::string bytes;
};

class Relay {
public:
    Relay(int udp, int tcp, sockaddr_in upstream, std::chrono::milliseconds delay)
        : udp_(udp), tcp_(tcp), upstream_(upstream), delay_(delay) {}

    void run(Clock::time_point end) {
        std::vector<pollfd> fds;
        while (!g_stop && Clock::now() < end) {
            fds.clear();
            fds.push_back({udp_, POLLIN, 0});
            fds.push_back({tcp_, POLLIN, 0});
            for (const auto& [fd, q] : udp_pending_) fds.push_back({fd, POLLIN, 0});
            for (const auto& [fd, p] : tcp_by_fd_) fds.push_back({fd, POLLIN, 0});
            int n = poll(fds.data(), fds.size(), poll_timeout_ms());
            if (n > 0) {
                for (const pollfd& p : fds)
                    if (p.revents) readable(p.fd);
            }
            deliver_due();
            forget_stale();
        }
        for (const auto& [fd, q] : udp_pending_) close(fd);
        for (const auto& [fd, p] : tcp_by_fd_) close(fd);
    }

private:
    int poll_timeout_ms() const {
        if (held_.empty()) return 100;
        auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(held_.front().due - Clock::now());
        return int(std::max<long>(0, std::min<long>(100, long(wait.count()) + 1)));
    }

    void readable(int fd) {
        if (fd == udp_) return udp_query();
        if (fd == tcp_) return tcp_accept();
        if (udp_pending_.count(fd)) return udp_answer(fd);
        if (tcp_by_fd_.count(fd)) return tcp_data(fd);
    }

    void udp_query() {
        char buf[65536];
        sockaddr_in client{};
        socklen_t len = sizeof client;
        ssize_t r = recvfrom(udp_, buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&client), &len);
        if (r <= 0 || udp_pending_.size() >= max_udp_pending) return;
        int fd = upstream_socket(SOCK_DGRAM, upstream_);
        if (fd < 0) return;
        if (send(fd, buf, size_t(r), 0) != r) {
            close(fd);
            return;
        }
        udp_pending_[fd] = UdpQuery{client, Clock::now()};
    }

    void udp_answer(int fd) {
        char buf[65536];
        ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        if (r > 0)
            held_.push_back(
                Held{Clock::now() + delay_, false, udp_pending_[fd].client, -1, std::string(buf, size_t(r))});
        close(fd);
        udp_pending_.erase(fd);
    }

    void tcp_accept() {
        int c = accept(tcp_, nullptr, nullptr);
        if (c < 0) return;
        int u = tcp_pairs_.size() < max_tcp_pairs ? upstream_socket(SOCK_STREAM, upstream_) : -1;
        if (u < 0) {
            close(c);
            return;
        }
        tcp_pairs_[c] = TcpPair{c, u};
        tcp_by_fd_[c] = c;
        tcp_by_fd_[u] = c;
    }

    void tcp_data(int fd) {
        int key = tcp_by_fd_[fd];
        TcpPair& p = tcp_pairs_[key];
        char buf[65536];
        ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        if (fd == p.client) {
            if (r <= 0 || !write_all(p.upstream, buf, size_t(r))) tcp_close(key);
            return;
        }
        // From upstream: held back, including the end of the stream.
        held_.push_back(Held{Clock::now() + delay_, true, {}, key, r > 0 ? std::string(buf, size_t(r)) : ""});
        if (r <= 0) {
            tcp_by_fd_.erase(p.upstream);
            close(p.upstream);
            p.upstream = -1;
        }
    }

    void tcp_close(int key) {
        auto it = tcp_pairs_.find(key);
        if (it == tcp_pairs_.end()) return;
        for (int fd : {it->second.client, it->second.upstream}) {
            if (fd < 0) continue;
            tcp_by_fd_.erase(fd);
            close(fd);
        }
        tcp_pairs_.erase(it);
        for (Held& h : held_)
            if (h.tcp && h.pair == key) h.pair = -1;
    }

    // The delay is the same for every answer, so held_ is in order of due time.
    void deliver_due() {
        auto now = Clock::now();
        while (!held_.empty() && held_.front().due <= now) {
            Held h = std::move(held_.front());
            held_.pop_front();
            if (!h.tcp) {
                sendto(udp_, h.bytes.data(), h.bytes.size(), 0, reinterpret_cast<const sockaddr*>(&h.client),
                       sizeof h.client);
            } else if (h.pair >= 0) {
                if (h.bytes.empty() || !write_all(h.pair, h.bytes.data(), h.bytes.size())) tcp_close(h.pair);
            }
        }
    }

    void forget_stale() {
        auto now = Clock::now();
        for (auto it = udp_pending_.begin(); it != udp_pending_.end();) {
            if (now - it->second.sent > udp_forget_after) {
                close(it->first);
                it = udp_pending_.erase(it);
            } else {
                ++it;
            }
        }
    }

    int udp_;
    int tcp_;
    sockaddr_in upstream_;
    std::chrono::milliseconds delay_;
    std::map<int, UdpQuery> udp_pending_;  // by upstream socket
    std::map<int, TcpPair> tcp_pairs_;     // by client fd
    std::map<int, int> tcp_by_fd_;         // client or upstream fd -> client fd
    std::deque<Held> held_;
};

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: dns-delay --upstream 127.0.0.1:PORT [--delay-ms 0..10000] [--port N] "
                 "[--max-seconds 1..86400]\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    unsigned long port = 0, max_seconds = 600, delay_ms = 0;
    sockaddr_in upstream{};
    bool have_upstream = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (i + 1 >= argc) usage();
        const char* v = argv[++i];
        if (a == "--port" && parse_uint(v, 65535, port)) continue;
        if (a == "--delay-ms" && parse_uint(v, 10000, delay_ms)) continue;
        if (a == "--max-seconds" && parse_uint(v, 86400, max_seconds) && max_seconds > 0) continue;
        if (a == "--upstream" && parse_upstream(v, upstream)) {
            have_upstream = true;
            continue;
        }
        usage();
    }
    if (!have_upstream) usage();

    int udp = -1, tcp = -1;
    // With port 0: take the kernel's free UDP port and try TCP on the same one.
    for (int attempt = 0; attempt < 50 && tcp < 0; ++attempt) {
        udp = bound_socket(SOCK_DGRAM, uint16_t(port));
        if (udp < 0) break;
        tcp = bound_socket(SOCK_STREAM, port_of(udp));
        if (tcp < 0) {
            close(udp);
            udp = -1;
            if (port != 0) break;
        }
    }
    if (udp < 0 || tcp < 0) {
        std::fprintf(stderr, "dns-delay: cannot bind 127.0.0.1:%lu: %s\n", port, std::strerror(errno));
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

    Relay relay(udp, tcp, upstream, std::chrono::milliseconds(delay_ms));
    relay.run(Clock::now() + std::chrono::seconds(max_seconds));
    close(udp);
    close(tcp);
    return 0;
}
