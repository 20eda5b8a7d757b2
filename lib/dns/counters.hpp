// dns: what the shared cache and the upstream resolvers count for statistics
// ([stats]): cache hits and misses, upstream lookups by outcome. Counting
// only — it decides nothing. One Counters lives as long as the daemon (the
// Runtime hands it on at reload, with or without the cache), so the totals
// only grow. Thread-safe: relaxed atomics (stats::Counter), no lock.
#pragma once

#include <array>
#include <cstddef>
#include <iterator>

#include "dns/resolver.hpp"
#include "stats/counter.hpp"

namespace regmilter::dns {

struct Counters {
    stats::Counter cache_hits;    // answered from the shared cache
    stats::Counter cache_misses;  // not in it (asked upstream, or joined another thread's query)
    // LdnsResolver::query calls (one lookup: every packet, retry and TCP
    // fallback of it), by the DnsStatus it ended with.
    std::array<stats::Counter, 6> upstream;

    void upstream_answered(DnsStatus s) noexcept {
        size_t i = static_cast<size_t>(s);
        if (i < upstream.size()) upstream[i].add();
    }
};

// Every DnsStatus, for labels: upstream[static_cast<size_t>(s)] counts `s`.
inline constexpr DnsStatus all_statuses[] = {DnsStatus::ok,      DnsStatus::nxdomain, DnsStatus::nodata,
                                             DnsStatus::timeout, DnsStatus::servfail, DnsStatus::malformed};
static_assert(std::size(all_statuses) == std::tuple_size_v<decltype(Counters::upstream)>,
              "one upstream counter per DnsStatus");

}  // namespace regmilter::dns
