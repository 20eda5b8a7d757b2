// daemon: the registry zones' RFC 5782 §5 health checks. Each zone's test
// points are asked at start, after every reload (a new configuration), and
// every [registry NAME] health_interval seconds, straight from the upstream
// resolvers (never the cache: a zone fixed or broken is seen at once); the
// outcome goes into the snapshot's registry::Health, which every session
// reads, and a zone that breaks or passes again gets one log line.
// Decides nothing about mail. The thread blocks every signal; check_due()
// runs on that thread only (or a test's, with no thread started).
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "service.hpp"

namespace regmilter::daemon {

class HealthMonitor {
public:
    using Clock = std::chrono::steady_clock;
    // A bound for one zone's check (its four queries); stopping waits for at
    // most one check, so this adds at most 2 s to a stop when DNS is dead.
    static constexpr std::chrono::milliseconds check_limit{2000};

    // Starts the thread unless `start_thread` is false (tests call check_due()).
    // `upstream` makes the checks' resolver; empty: an LdnsResolver with the
    // snapshot's [resolver] settings that counts nothing in the statistics
    // (the DNS counters stay the sessions').
    explicit HealthMonitor(Service& service, bool start_thread = true, policy::ResolverFactory upstream = {});
    ~HealthMonitor();  // stops the thread: at most check_limit when a check is under way
    HealthMonitor(const HealthMonitor&) = delete;
    HealthMonitor& operator=(const HealthMonitor&) = delete;

    // Checks every zone due at `now` (every zone, when the configuration is
    // new since the last call) and returns when the next one is due (at most
    // 1 s ahead, so that a reload is noticed within a second).
    Clock::time_point check_due(Clock::time_point now);

private:
    void loop();
    bool stopping();

    Service& service_;
    policy::ResolverFactory upstream_;
    const void* config_seen_ = nullptr;             // check_due's thread only
    std::map<std::string, Clock::time_point> due_;  // health_key -> next check; check_due's thread only
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;  // guarded by mu_
    std::thread thread_;
};

}  // namespace regmilter::daemon
