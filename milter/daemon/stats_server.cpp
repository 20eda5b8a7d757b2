#include "stats_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "log.hpp"
#include "process.hpp"
#include "service.hpp"
#include "stats/http.hpp"

namespace regmilter::daemon {

namespace {

using Clock = std::chrono::steady_clock;

std::string errno_text() {
    return std::strerror(errno);
}

// One connection: reading its request head, then writing the answer.
struct Client {
    int fd = -1;
    Clock::time_point deadline;
    std::string in;
    std::string out;
    size_t sent = 0;
    bool writing = false;
};

// Sends what it can without waiting; true when everything is out.
bool send_some(Client& c) {
    while (c.sent < c.out.size()) {
        ssize_t n = send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c.sent += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        return false;  // EAGAIN: later; an error: the deadline closes it
    }
    return true;
}

std::string answer(const stats::http::Request& r, const std::function<std::string()>& render) {
    try {
        return stats::http::respond(r, render);
    } catch (...) {
        std::string body = "internal error\n";
        return stats::http::response_head(500, "Internal Server Error", body.size(),
                                          "text/plain; charset=utf-8") +
               body;
    }
}

}  // namespace

StatsServer::StatsServer(net::Endpoint where, int listen_fd, int wake_read, int wake_write, Limits limits)
    : where_(std::move(where)),
      listen_fd_(listen_fd),
      wake_read_(wake_read),
      wake_write_(wake_write),
      limits_(limits) {}

std::unique_ptr<StatsServer> StatsServer::open(const net::Endpoint& where, std::string& error,
                                               Limits limits) {
    const std::string what = "[stats] listen " + where.str();
    sockaddr_storage ss;
    socklen_t len = where.to_sockaddr(ss);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error = what + ": cannot make a socket: " + errno_text();
        return nullptr;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (where.address.is_v6()) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        error = what + ": cannot bind: " + errno_text();
        close(fd);
        return nullptr;
    }
    if (listen(fd, 16) != 0) {
        error = what + ": cannot listen: " + errno_text();
        close(fd);
        return nullptr;
    }
    int wake[2];
    if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        error = what + ": cannot make a pipe: " + errno_text();
        close(fd);
        return nullptr;
    }
    return std::unique_ptr<StatsServer>(new StatsServer(where, fd, wake[0], wake[1], limits));
}

StatsServer::~StatsServer() {
    if (thread_.joinable()) {
        char b = 0;
        while (write(wake_write_, &b, 1) < 0 && errno == EINTR) {
        }
        thread_.join();
    }
    close(listen_fd_);
    close(wake_read_);
    close(wake_write_);
}

void StatsServer::start(std::function<std::string()> render) {
    render_ = std::move(render);
    thread_ = quiet_thread([this] { run(); });
}

void StatsServer::run() noexcept {
    std::vector<Client> clients;
    std::vector<pollfd> fds;
    char buf[4096];
    for (;;) {
        auto now = Clock::now();
        int timeout_ms = 1000;
        for (const auto& c : clients) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(c.deadline - now).count() + 1;
            timeout_ms = static_cast<int>(std::max<long long>(0, std::min<long long>(timeout_ms, left)));
        }
        fds.clear();
        fds.push_back({wake_read_, POLLIN, 0});
        fds.push_back({listen_fd_, POLLIN, 0});
        for (const auto& c : clients)
            fds.push_back({c.fd, static_cast<short>(c.writing ? POLLOUT : POLLIN), 0});
        int n = poll(fds.data(), fds.size(), timeout_ms);
        if (n < 0 && errno != EINTR) {
            // Nothing sensible is left to do but wait and try again.
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            continue;
        }
        if (n > 0 && (fds[0].revents & POLLIN)) break;
        now = Clock::now();
        // Everything but the new connections, which are at the end.
        for (size_t i = 0; i < clients.size(); ++i) {
            Client& c = clients[i];
            short ev = n > 0 ? fds[i + 2].revents : 0;
            if (!c.writing && (ev & (POLLIN | POLLHUP | POLLERR))) {
                bool closed = false;
                for (;;) {
                    size_t room = limits_.max_request + 1 - std::min(c.in.size(), limits_.max_request + 1);
                    if (room == 0) break;
                    ssize_t got = recv(c.fd, buf, std::min(room, sizeof buf), MSG_DONTWAIT);
                    if (got > 0) {
                        c.in.append(buf, static_cast<size_t>(got));
                        continue;
                    }
                    if (got < 0 && errno == EINTR) continue;
                    closed = got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
                    break;
                }
                stats::http::Request r = stats::http::parse_request(c.in, limits_.max_request);
                if (r.state != stats::http::Request::State::incomplete) {
                    c.out = answer(r, render_);
                    c.writing = true;
                } else if (closed) {
                    c.deadline = now;  // gone before a whole request: close it below
                }
            }
            if (c.writing && send_some(c)) {
                shutdown(c.fd, SHUT_WR);
                c.deadline = now;
            } else if (!c.writing && now >= c.deadline) {
                // Too slow (or gone): 408 if it still listens, then closed.
                c.out = stats::http::timeout_response();
                send_some(c);
            }
        }
        clients.erase(std::remove_if(clients.begin(), clients.end(),
                                     [&](Client& c) {
                                         if (now < c.deadline) return false;
                                         close(c.fd);
                                         return true;
                                     }),
                      clients.end());
        if (n > 0 && (fds[1].revents & POLLIN)) {
            for (;;) {
                int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                    // Out of descriptors (EMFILE...): wait rather than spin on a ready listener.
                    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                        std::this_thread::sleep_for(std::chrono::milliseconds(100));
                    break;
                }
                if (static_cast<int>(clients.size()) >= limits_.max_clients) {
                    close(fd);
                    continue;
                }
                Client c;
                c.fd = fd;
                c.deadline = Clock::now() + limits_.timeout;
                clients.push_back(std::move(c));
            }
        }
    }
    for (auto& c : clients) close(c.fd);
}

std::unique_ptr<StatsServer> open_stats(const Service& service, std::string& error) {
    const auto& listen = service.current()->config->stats.listen;
    if (!listen) return nullptr;
    if (std::string w = stats::listen_warning(*listen); !w.empty()) log_line(LOG_WARNING, w);
    return StatsServer::open(*listen, error);
}

void serve_stats(StatsServer& server, Service& service, stats::Metrics& metrics) {
    service.set_observer(&metrics);
    server.start([&service, &metrics] {
        std::shared_ptr<const policy::Runtime> rt = service.current();
        stats::ScrapeFacts sf;
        sf.dns = rt->dns_counters.get();
        if (rt->cache) sf.dns_cache_entries = rt->cache->stats().entries;
        sf.open_connections = service.open_sessions();
        sf.config_generation = rt->generation;
        return metrics.render(sf);
    });
    log_line(LOG_INFO, "statistics at http://" + server.where().str() + "/metrics");
}

}  // namespace regmilter::daemon
