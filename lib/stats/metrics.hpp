// stats: the metrics regmilter exposes ([stats] listen; regmilter.ini(5) lists
// each one). Metrics is the policy::Observer of every Session: it counts the
// sessions, each stage's answer by the policy that decided it, the facts each
// examined transaction found, observe mode's would-be refusals, and the
// stages' latencies. render() adds what the daemon knows at scrape time: the
// DNS counters of the current snapshot, open connections, the configuration
// generation. Counting only: it decides nothing and does no I/O.
// Thread-safe: answered() from every session thread at once (lock-free
// atomics, see exposition.hpp); render() from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "dns/counters.hpp"
#include "net/endpoint.hpp"
#include "policy/session.hpp"
#include "stats/exposition.hpp"

namespace regmilter::stats {

// Which check decided an answer, read from Reply::reason ("registry:
// unregistered:ZONE", "spf:mailfrom:fail", "observe:bulk", "trusted:network"):
// policy registry|spf|spf_helo|bulk|trust|internal|shutdown|<first word>, or
// none for an empty reason; result the next word (spf: the word after the
// identity; greylist: what the registry found, unregistered or listed;
// ratelimit: the limit's key, e.g. unregistered_messages; state: error), or
// the policy's own word. Each word is cut to 32 characters of
// [a-z0-9_-] (others become '_'), so zone names, keys and addresses never
// become label values.
struct Attribution {
    std::string policy, result;
};
Attribution attribute(std::string_view reason);

// What the daemon adds to each scrape; every field optional.
struct ScrapeFacts {
    const dns::Counters* dns = nullptr;
    std::optional<uint64_t> dns_cache_entries;
    std::optional<int> open_connections;
    std::optional<unsigned> config_generation;
};

class Metrics : public policy::Observer {
public:
    Metrics();
    void answered(policy::Stage stage, const policy::Reply& reply, const policy::Facts& facts,
                  std::chrono::nanoseconds elapsed) noexcept override;
    // Every metric in the Prometheus text format (version 0.0.4).
    std::string render(const ScrapeFacts& facts = {}) const;

private:
    void count_facts(const policy::Facts& facts);

    Family<Counter> sessions_;
    Family<Counter> verdicts_;
    Family<Counter> policy_results_;
    Family<Counter> would_reject_;
    Family<Histogram> latency_;
    Counter* sessions_total_;
    Histogram* stage_latency_[5];
};

// A warning for a listen address others can reach, or "" for a loopback one.
std::string listen_warning(const net::Endpoint& listen);

}  // namespace regmilter::stats
