// daemon: the [stats] listen endpoint — GET /metrics over HTTP/1.0 and 1.1
// (stats/http.hpp says the answers) on one thread of its own that blocks
// every signal. One request per connection; each connection is bounded in
// request size, time and number, so that no client can hold the thread,
// and the thread shares nothing with mail processing but the atomics it
// reads. Thread-safety: open() and start() from the main thread; the render
// function runs on the server's thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "net/endpoint.hpp"
#include "stats/metrics.hpp"

namespace regmilter::daemon {

class Service;

class StatsServer {
public:
    struct Limits {
        size_t max_request = 8192;                // bytes of request head (then 431)
        std::chrono::milliseconds timeout{5000};  // from accept to the last byte sent (then 408 / closed)
        int max_clients = 16;                     // more are accepted and closed at once
    };

    // Binds and listens on `where` (SO_REUSEADDR; IPv6 only for an IPv6
    // address). Null with `error` set ("[stats] listen 127.0.0.1:9100:
    // cannot bind: Address already in use") when it cannot.
    static std::unique_ptr<StatsServer> open(const net::Endpoint& where, std::string& error, Limits limits);
    static std::unique_ptr<StatsServer> open(const net::Endpoint& where, std::string& error) {
        return open(where, error, Limits{});
    }
    ~StatsServer();  // stops the thread and closes every socket
    StatsServer(const StatsServer&) = delete;
    StatsServer& operator=(const StatsServer&) = delete;

    // Serves on a new thread; `render` makes the /metrics body (it must not
    // throw). Called once, after the process has its final identity (detach).
    void start(std::function<std::string()> render);

    const net::Endpoint& where() const { return where_; }

private:
    StatsServer(net::Endpoint where, int listen_fd, int wake_read, int wake_write, Limits limits);
    void run() noexcept;

    net::Endpoint where_;
    int listen_fd_, wake_read_, wake_write_;
    Limits limits_;
    std::function<std::string()> render_;
    std::thread thread_;
};

// [stats] listen of the running configuration, bound now (before detaching
// and leaving root, so that a failure is said where it can be seen): null
// when listen is empty, or with `error` set when it cannot be bound. Logs the
// warning of a listen address that is not loopback.
std::unique_ptr<StatsServer> open_stats(const Service& service, std::string& error);
// Makes `metrics` the observer of every new session and serves it, with the
// DNS counters, cache size, open connections and configuration generation
// of `service` at each scrape. Both must outlive the server.
void serve_stats(StatsServer& server, Service& service, stats::Metrics& metrics);

}  // namespace regmilter::daemon
