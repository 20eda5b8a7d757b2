// dns: the shared TTL cache (positive and negative answers, RFC 2308) and the
// CachingResolver that puts it in front of a per-thread upstream Resolver.
// The cache decides what is kept and for how long; it never queries by itself.
// Cache is thread-safe (one lock around its data); a CachingResolver, like
// every Resolver, is used by one thread, and many of them share one Cache.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "dns/counters.hpp"
#include "dns/resolver.hpp"
#include "util/lock_guarded.hpp"
#include "util/pool.hpp"

namespace regmilter::dns {

// What is cached, and for how long (seconds):
//   ok                 min(answer TTL, max_ttl)
//   nxdomain, nodata   min(TTL from the SOA, max_negative_ttl)   RFC 2308 §5
//   servfail,malformed failure_ttl: a few seconds, so that a broken zone is not
//                      asked again by every session (RFC 9520 §3.2: at least 1 s,
//                      at most 5 min); 0 turns it off
//   timeout            never: it says more about the asker's deadline than the name
// A TTL of 0 is honoured: the answer is not stored (min TTL 0).
// Hits count the TTL down: an answer stored with TTL 300 is returned 100 s
// later with TTL 200; at 0 it has expired and is asked again.
struct CacheOptions {
    size_t max_entries = 10000;         // LRU eviction beyond this; 0 = store nothing
    uint32_t max_ttl = 86400;           // 1 day
    uint32_t max_negative_ttl = 10800;  // 3 hours, RFC 2308 §5
    uint32_t failure_ttl = 5;
};

struct CacheStats {
    uint64_t hits = 0;    // answered from a stored entry
    uint64_t misses = 0;  // not stored (or expired): an upstream query, or joined one
    uint64_t shared = 0;  // misses answered by another thread's upstream query
    uint64_t inserts = 0;
    uint64_t evictions = 0;   // removed to stay within max_entries (not expiries)
    uint64_t prefetches = 0;  // upstream queries started by a prefetch (not hits or misses)
    size_t entries = 0;
};

class Cache {
public:
    using Now = std::function<Clock::time_point()>;

    // `now` is the clock for TTLs (tests inject their own); waits for shared
    // queries always use the real steady clock and the callers' Deadlines.
    explicit Cache(CacheOptions options = {}, Now now = &Clock::now);
    // The same, also counting hits and misses into `counters` (statistics;
    // may be null).
    Cache(CacheOptions options, Now now, std::shared_ptr<Counters> counters);

    // A stored, unexpired answer with its TTL counted down, or nullopt. Moves
    // the entry to the front of the LRU list. Counts a hit or a miss.
    std::optional<DnsAnswer> get(std::string_view name, RrType type);
    // True when an unexpired answer is stored. A peek: no copy, no hit/miss
    // counted, the LRU order untouched (for deciding how to look up, not for answers).
    bool has(std::string_view name, RrType type);
    // The same as get() without counting a hit or a miss: for a look-ahead
    // whose asker asks again (and is counted) later.
    std::optional<DnsAnswer> look(std::string_view name, RrType type);
    // Stores `answer` under (name, type) as CacheOptions says (maybe not at all).
    void put(std::string_view name, RrType type, const DnsAnswer& answer);

    CacheStats stats();
    const CacheOptions& options() const { return options_; }

private:
    friend class CachingResolver;

    // One upstream query in progress; followers wait on `done`.
    struct Flight {
        std::mutex mutex;
        std::condition_variable done_cv;
        bool done = false;
        DnsAnswer answer;
    };
    struct Entry {
        std::string key;
        DnsAnswer answer;  // ttl as stored
        Clock::time_point stored;
        Clock::time_point expires;
    };
    struct State {
        std::list<Entry> lru;  // front = most recently used
        std::unordered_map<std::string, std::list<Entry>::iterator> index;
        std::unordered_map<std::string, std::shared_ptr<Flight>> flights;
        CacheStats stats;
    };
    // The result of one look: a stored answer, or the flight to lead or follow.
    struct Lookup {
        std::optional<DnsAnswer> hit;
        std::shared_ptr<Flight> flight;
        bool leader = false;
    };

    static std::string key_of(std::string_view name, RrType type);
    std::optional<DnsAnswer> find_locked(State& s, const std::string& key, Clock::time_point now);
    void put_locked(State& s, const std::string& key, const DnsAnswer& answer, Clock::time_point now);
    Lookup lookup_or_join(std::string_view name, RrType type);
    // A flight to lead when nothing is stored and nobody asks yet (no hit or
    // miss counted); else null.
    std::shared_ptr<Flight> lead_if_absent(std::string_view name, RrType type);
    void land(std::string_view name, RrType type, const std::shared_ptr<Flight>& flight,
              const DnsAnswer& answer);

    const CacheOptions options_;
    const Now now_;
    const std::shared_ptr<Counters> counters_;  // may be null
    util::LockGuarded<State> state_;
};

// A Resolver that answers from a shared Cache and asks `upstream` (this
// thread's own LdnsResolver) on a miss. Identical queries from several threads
// at once share one upstream query (single flight): the first asks, the
// others wait for its answer, each no longer than its own Deadline (then
// timeout). A shared answer that is a timeout (the first asker's deadline may
// have been shorter) makes a waiter with time left ask upstream itself.
class CachingResolver : public Resolver {
public:
    using Factory = std::function<std::unique_ptr<Resolver>()>;

    CachingResolver(Resolver& upstream, std::shared_ptr<Cache> cache)
        : upstream_(&upstream), cache_(std::move(cache)) {}
    // The same, owning its upstream (one thread's own resolver).
    CachingResolver(std::unique_ptr<Resolver> upstream, std::shared_ptr<Cache> cache)
        : owned_(std::move(upstream)), upstream_(owned_.get()), cache_(std::move(cache)) {}
    // The same, making its upstream with `make` at the first miss: nothing is
    // made while the cache answers everything (a warm session). With a
    // `pool`, prefetch() asks upstream on a pool thread (through a resolver
    // of its own from `make`) as the leader of the question's flight, so the
    // query that follows joins it; without one, prefetch() does nothing.
    // `make` is called from several threads at once; a null result answers
    // the miss servfail ("no upstream resolver").
    CachingResolver(Factory make, std::shared_ptr<Cache> cache, util::Pool* pool = nullptr)
        : make_(std::move(make)), cache_(std::move(cache)), pool_(pool) {}

    DnsAnswer query(std::string_view name, RrType type, Deadline deadline) override;
    // Starts the question on the pool unless it is stored or already asked
    // (RFC 7208's independent lookups issued together). When the pool is
    // full nothing is started.
    void prefetch(std::string_view name, RrType type, Deadline deadline) override;

    Cache& cache() { return *cache_; }

private:
    // This resolver's upstream, made at first use; null when it cannot be made.
    Resolver* upstream();

    std::unique_ptr<Resolver> owned_;  // set by the owning constructor, or made by make_
    Resolver* upstream_ = nullptr;
    Factory make_;
    std::shared_ptr<Cache> cache_;
    util::Pool* pool_ = nullptr;
};

// A Resolver that answers only what `cache` holds (Cache::look: nothing
// counted) and never asks a nameserver: a question it does not hold is
// answered servfail and noted in missed(). For a look-ahead that must not
// wait: can a stage be decided from the cache alone? One thread, like every
// Resolver.
class CacheOnlyResolver : public Resolver {
public:
    explicit CacheOnlyResolver(Cache& cache) : cache_(cache) {}
    DnsAnswer query(std::string_view name, RrType type, Deadline deadline) override;
    bool missed() const { return missed_; }

private:
    Cache& cache_;
    bool missed_ = false;
};

}  // namespace regmilter::dns
