#include "health_monitor.hpp"

#include <pthread.h>
#include <signal.h>

#include <algorithm>

#include "log.hpp"

namespace regmilter::daemon {

HealthMonitor::HealthMonitor(Service& service, bool start_thread, policy::ResolverFactory upstream)
    : service_(service), upstream_(std::move(upstream)) {
    if (start_thread) thread_ = std::thread([this] { loop(); });
}

HealthMonitor::~HealthMonitor() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
}

bool HealthMonitor::stopping() {
    std::lock_guard<std::mutex> lock(mu_);
    return stop_;
}

void HealthMonitor::loop() {
    // Signals go to the signal thread only (SIGHUP here would stop the process).
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    pthread_setname_np(pthread_self(), "regmilter-hlth");  // at most 15 bytes; ps -L, /proc/PID/task/*/comm
    for (;;) {
        Clock::time_point next;
        try {
            next = check_due(Clock::now());
        } catch (const std::exception& e) {
            log_line(LOG_ERR, std::string("registry health check failed: ") + e.what());
            next = Clock::now() + std::chrono::seconds(10);
        }
        std::unique_lock<std::mutex> lock(mu_);
        if (cv_.wait_until(lock, next, [this] { return stop_; })) return;
    }
}

HealthMonitor::Clock::time_point HealthMonitor::check_due(Clock::time_point now) {
    Clock::time_point next = now + std::chrono::seconds(1);
    std::shared_ptr<const policy::Runtime> rt = service_.current();
    if (!rt || !rt->health) return next;
    const config::Config& cfg = *rt->config;
    if (rt->config.get() != config_seen_) {
        // At start and after a reload: every zone now; zones no longer configured forgotten.
        config_seen_ = rt->config.get();
        due_.clear();
        std::vector<std::string> keep;
        for (const auto& z : cfg.registries)
            if (z.health_interval > 0) keep.push_back(registry::health_key(z));
        rt->health->retain(keep);
    }
    std::unique_ptr<dns::Resolver> dns;
    std::vector<std::string> done;  // two sections of one zone: checked once
    for (const auto& z : cfg.registries) {
        if (z.health_interval <= 0) continue;
        const std::string key = registry::health_key(z);
        auto it = due_.find(key);
        if (it != due_.end() &&
            (it->second > now || std::find(done.begin(), done.end(), key) != done.end())) {
            next = std::min(next, it->second);
            continue;
        }
        if (stopping()) return next;
        if (!dns) {  // not the cache
            if (upstream_) {
                dns = upstream_();
            } else {
                dns::ResolverOptions opt = rt->resolver;
                opt.counters = nullptr;
                std::string error;
                dns = dns::LdnsResolver::create(opt, error);
            }
        }
        if (!dns) break;
        // One bound for the zone's four queries.
        const dns::Deadline deadline = dns::deadline_in(std::min<std::chrono::milliseconds>(
            check_limit, std::chrono::milliseconds(cfg.resolver.stage_timeout_ms)));
        for (registry::Family f : {registry::Family::v4, registry::Family::v6}) {
            registry::Probe p = registry::check(*dns, z, f, deadline);
            const std::string who = "registry " + z.name + " (zone " + z.zone + ")";
            switch (rt->health->record(z, f, p)) {
                case registry::Health::Transition::broke:
                    log_line(LOG_WARNING,
                             who + ": broken for " + registry::to_string(f) + " clients: " + p.detail +
                                 "; on_error = " + util::name_of(z.on_error) +
                                 " applies to its lookups until it passes again (RFC 5782 section 5)");
                    break;
                case registry::Health::Transition::recovered:
                    log_line(LOG_INFO, who + ": healthy again for " + registry::to_string(f) +
                                           " clients: its test points answer as RFC 5782 section 5 says");
                    break;
                case registry::Health::Transition::none:
                    break;
            }
        }
        done.push_back(key);
        Clock::time_point when = Clock::now() + std::chrono::seconds(z.health_interval);
        due_[key] = when;
        next = std::min(next, when);
    }
    return next;
}

}  // namespace regmilter::daemon
