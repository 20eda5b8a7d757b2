#include "dns/cache.hpp"

#include "util/strings.hpp"

#include <algorithm>
#include <cctype>

namespace regmilter::dns {

namespace {

using Seconds = std::chrono::seconds;

// The time an answer may be kept, per CacheOptions; 0 = do not store.
uint32_t keep_for(const CacheOptions& o, const DnsAnswer& a) {
    if (a.local) return 0;  // this host's trouble says nothing about the name
    switch (a.status) {
        case DnsStatus::ok:
            return std::min(a.ttl, o.max_ttl);
        case DnsStatus::nxdomain:
        case DnsStatus::nodata:
            return std::min(a.ttl, o.max_negative_ttl);
        case DnsStatus::servfail:
        case DnsStatus::malformed:
            return o.failure_ttl;
        case DnsStatus::timeout:
            return 0;
    }
    return 0;
}

}  // namespace

Cache::Cache(CacheOptions options, Now now) : options_(options), now_(std::move(now)) {}

Cache::Cache(CacheOptions options, Now now, std::shared_ptr<Counters> counters)
    : options_(options), now_(std::move(now)), counters_(std::move(counters)) {}

std::string Cache::key_of(std::string_view name, RrType type) {
    std::string k = util::lower(name);
    while (!k.empty() && k.back() == '.') k.pop_back();
    k.push_back('/');
    k += std::to_string(unsigned(type));
    return k;
}

std::optional<DnsAnswer> Cache::find_locked(State& s, const std::string& key, Clock::time_point now) {
    auto it = s.index.find(key);
    if (it == s.index.end()) return std::nullopt;
    auto entry = it->second;
    if (now >= entry->expires) {
        s.lru.erase(entry);
        s.index.erase(it);
        return std::nullopt;
    }
    s.lru.splice(s.lru.begin(), s.lru, entry);
    DnsAnswer a = entry->answer;
    const auto age = std::chrono::duration_cast<Seconds>(now - entry->stored).count();
    a.ttl = age >= 0 && uint64_t(age) < a.ttl ? a.ttl - uint32_t(age) : 0;
    a.detail = "cached; " + a.detail;
    a.cached = true;
    return a;
}

void Cache::put_locked(State& s, const std::string& key, const DnsAnswer& answer, Clock::time_point now) {
    const uint32_t keep = keep_for(options_, answer);
    if (keep == 0 || options_.max_entries == 0) return;
    auto it = s.index.find(key);
    if (it != s.index.end()) {
        s.lru.erase(it->second);
        s.index.erase(it);
    }
    Entry e{key, answer, now, now + Seconds(keep)};
    e.answer.ttl = keep;
    s.lru.push_front(std::move(e));
    s.index.emplace(key, s.lru.begin());
    ++s.stats.inserts;
    while (s.lru.size() > options_.max_entries) {
        s.index.erase(s.lru.back().key);
        s.lru.pop_back();
        ++s.stats.evictions;
    }
}

std::optional<DnsAnswer> Cache::get(std::string_view name, RrType type) {
    const std::string key = key_of(name, type);
    const auto now = now_();
    auto s = state_.lock();
    auto a = find_locked(*s, key, now);
    ++(a ? s->stats.hits : s->stats.misses);
    if (counters_) (a ? counters_->cache_hits : counters_->cache_misses).add();
    return a;
}

std::optional<DnsAnswer> Cache::look(std::string_view name, RrType type) {
    const std::string key = key_of(name, type);
    const auto now = now_();
    auto s = state_.lock();
    return find_locked(*s, key, now);
}

bool Cache::has(std::string_view name, RrType type) {
    const std::string key = key_of(name, type);
    const auto now = now_();
    auto s = state_.lock();
    auto it = s->index.find(key);
    return it != s->index.end() && now < it->second->expires;
}

void Cache::put(std::string_view name, RrType type, const DnsAnswer& answer) {
    const std::string key = key_of(name, type);
    const auto now = now_();
    auto s = state_.lock();
    put_locked(*s, key, answer, now);
}

CacheStats Cache::stats() {
    auto s = state_.lock();
    CacheStats st = s->stats;
    st.entries = s->lru.size();
    return st;
}

// The cache look and the in-flight registration happen under one lock, so an
// answer that lands in between cannot be missed (no second upstream query).
Cache::Lookup Cache::lookup_or_join(std::string_view name, RrType type) {
    const std::string key = key_of(name, type);
    const auto now = now_();
    Lookup l;
    auto s = state_.lock();
    l.hit = find_locked(*s, key, now);
    if (l.hit) {
        ++s->stats.hits;
        if (counters_) counters_->cache_hits.add();
        return l;
    }
    ++s->stats.misses;
    if (counters_) counters_->cache_misses.add();
    auto f = s->flights.find(key);
    if (f != s->flights.end()) {
        l.flight = f->second;
        return l;
    }
    l.flight = std::make_shared<Flight>();
    l.leader = true;
    s->flights.emplace(key, l.flight);
    return l;
}

std::shared_ptr<Cache::Flight> Cache::lead_if_absent(std::string_view name, RrType type) {
    const std::string key = key_of(name, type);
    const auto now = now_();
    auto s = state_.lock();
    auto it = s->index.find(key);
    if (it != s->index.end() && now < it->second->expires) return nullptr;
    if (s->flights.count(key)) return nullptr;
    auto flight = std::make_shared<Flight>();
    s->flights.emplace(key, flight);
    ++s->stats.prefetches;
    return flight;
}

void Cache::land(std::string_view name, RrType type, const std::shared_ptr<Flight>& flight,
                 const DnsAnswer& answer) {
    const std::string key = key_of(name, type);
    const auto now = now_();
    {
        auto s = state_.lock();
        put_locked(*s, key, answer, now);
        auto f = s->flights.find(key);
        if (f != s->flights.end() && f->second == flight) s->flights.erase(f);
    }
    {
        std::lock_guard<std::mutex> g(flight->mutex);
        flight->answer = answer;
        flight->done = true;
    }
    flight->done_cv.notify_all();
}

namespace {

DnsAnswer no_upstream() {
    DnsAnswer a;
    a.status = DnsStatus::servfail;
    a.detail = "no upstream resolver";
    return a;
}

}  // namespace

Resolver* CachingResolver::upstream() {
    if (!upstream_ && make_) {
        owned_ = make_();
        upstream_ = owned_.get();
        if (!upstream_) make_ = nullptr;  // asked once
    }
    return upstream_;
}

void CachingResolver::prefetch(std::string_view name, RrType type, Deadline deadline) {
    if (!pool_ || !make_ || Clock::now() >= deadline) return;
    try {
        std::shared_ptr<Cache::Flight> flight = cache_->lead_if_absent(name, type);
        if (!flight) return;
        auto cache = cache_;
        auto job = [cache, make = make_, n = std::string(name), type, deadline, flight]() noexcept {
            DnsAnswer a;
            try {
                std::unique_ptr<Resolver> up = make();
                a = up ? up->query(n, type, deadline) : no_upstream();
            } catch (...) {
                a.status = DnsStatus::servfail;
                a.detail = "internal error in a prefetch";
            }
            try {
                cache->land(n, type, flight, a);
            } catch (...) {
                // No memory to store it: the followers' wait ends at their deadline.
            }
        };
        if (pool_->run(job)) return;
        // No thread: release the flight; a timeout makes each follower ask itself.
        DnsAnswer a;
        a.status = DnsStatus::timeout;
        a.detail = "prefetch not started";
        cache_->land(name, type, flight, a);
    } catch (...) {
        // A hint only: the query asks for itself.
    }
}

DnsAnswer CachingResolver::query(std::string_view name, RrType type, Deadline deadline) {
    Cache::Lookup l = cache_->lookup_or_join(name, type);
    if (l.hit) return *l.hit;

    if (l.leader) {
        // Followers must be released even if the upstream throws (bad_alloc).
        struct Lander {
            Cache& cache;
            std::string_view name;
            RrType type;
            const std::shared_ptr<Cache::Flight>& flight;
            bool landed = false;
            ~Lander() {
                if (!landed) {
                    DnsAnswer a;
                    a.status = DnsStatus::servfail;
                    a.detail = "internal error in the shared query";
                    cache.land(name, type, flight, a);
                }
            }
        } lander{*cache_, name, type, l.flight};
        Resolver* up = upstream();
        DnsAnswer a = up ? up->query(name, type, deadline) : no_upstream();
        cache_->land(name, type, l.flight, a);
        lander.landed = true;
        return a;
    }

    DnsAnswer shared;
    {
        std::unique_lock<std::mutex> g(l.flight->mutex);
        auto done = [&] { return l.flight->done; };
        if (deadline == Deadline::max()) {
            l.flight->done_cv.wait(g, done);
        } else if (!l.flight->done_cv.wait_until(g, deadline, done)) {
            DnsAnswer a;
            a.status = DnsStatus::timeout;
            a.detail = "deadline reached waiting for the same query from another thread";
            return a;
        }
        shared = l.flight->answer;
    }
    cache_->state_.lock()->stats.shared++;
    if (shared.status == DnsStatus::timeout && Clock::now() < deadline) {
        Resolver* up = upstream();
        DnsAnswer own = up ? up->query(name, type, deadline) : no_upstream();
        cache_->put(name, type, own);
        return own;
    }
    shared.detail = "shared; " + shared.detail;
    return shared;
}

DnsAnswer CacheOnlyResolver::query(std::string_view name, RrType type, Deadline) {
    if (std::optional<DnsAnswer> a = cache_.look(name, type)) return *a;
    missed_ = true;
    DnsAnswer a;
    a.status = DnsStatus::servfail;
    a.detail = "not cached (this resolver asks no nameserver)";
    return a;
}

}  // namespace regmilter::dns
