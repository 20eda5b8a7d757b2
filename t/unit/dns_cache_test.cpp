// dns: the shared TTL cache (expiry on an injected clock, negative caching,
// failure caching, LRU bound) and CachingResolver (hits, in-flight sharing,
// consistency under 8 threads).
#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "dns/cache.hpp"
#include "dns/memory_resolver.hpp"
#include "util/pool.hpp"

using namespace regmilter::dns;
namespace util = regmilter::util;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

// A hand-driven clock for TTLs.
struct FakeClock {
    Clock::time_point t = Clock::time_point() + std::chrono::hours(1000);
    Cache::Now fn() {
        return [this] { return t; };
    }
    void advance(Clock::duration d) { t += d; }
};

DnsAnswer answer(DnsStatus st, uint32_t ttl, std::vector<std::string> rdata = {}) {
    DnsAnswer a;
    a.status = st;
    a.ttl = ttl;
    a.rdata = std::move(rdata);
    return a;
}

// Thread-safe upstream: "hN.test"/A answers "10.0.N/256.N%256", TTL 300; counts calls.
class CountingResolver : public Resolver {
public:
    std::atomic<int> calls{0};
    DnsAnswer query(std::string_view name, RrType type, Deadline) override {
        ++calls;
        return answer(DnsStatus::ok, 300, {expected(name, type)});
    }
    static std::string expected(std::string_view name, RrType type) {
        int n = std::stoi(std::string(name.substr(1, name.find('.') - 1)));
        return "10." + std::to_string(unsigned(type)) + "." + std::to_string(n / 256) + "." +
               std::to_string(n % 256);
    }
};

// Upstream that blocks every query until release(); counts calls.
class BlockingResolver : public Resolver {
public:
    std::atomic<int> calls{0};
    DnsAnswer query(std::string_view, RrType, Deadline) override {
        ++calls;
        std::unique_lock<std::mutex> g(m_);
        cv_.wait(g, [&] { return released_; });
        return answer(DnsStatus::ok, 60, {"192.0.2.7"});
    }
    void release() {
        {
            std::lock_guard<std::mutex> g(m_);
            released_ = true;
        }
        cv_.notify_all();
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    bool released_ = false;
};

// Another thread's way to one shared test resolver.
struct Borrowed : Resolver {
    explicit Borrowed(Resolver& r) : r_(r) {}
    DnsAnswer query(std::string_view n, RrType t, Deadline d) override { return r_.query(n, t, d); }
    Resolver& r_;
};

void wait_for(const std::function<bool()>& cond) {
    while (!cond()) std::this_thread::yield();
}

}  // namespace

TEST_CASE("cache: positive answers expire after their TTL, counted down on hits", "[dns][cache]") {
    FakeClock clk;
    Cache c({}, clk.fn());
    c.put("www.example", RrType::a, answer(DnsStatus::ok, 300, {"192.0.2.1"}));

    struct Step {
        int after_ms;
        bool hit;
        uint32_t ttl;
    };
    const Step steps[] = {{0, true, 300},     {999, true, 300},  {1, true, 299},
                          {98000, true, 201}, {200999, true, 1}, {1, false, 0}};
    int at = 0;
    for (const Step& s : steps) {
        clk.advance(milliseconds(s.after_ms));
        at += s.after_ms;
        INFO("at " << at << " ms");
        auto a = c.get("www.example", RrType::a);
        REQUIRE(bool(a) == s.hit);
        if (a) {
            CHECK(a->ttl == s.ttl);
            CHECK(a->rdata == std::vector<std::string>{"192.0.2.1"});
        }
    }
    CacheStats st = c.stats();
    CHECK(st.hits == 5);
    CHECK(st.misses == 1);
    CHECK(st.entries == 0);  // the expired entry was dropped on the miss
}

TEST_CASE("cache: has() peeks without counting, copying or reordering", "[dns][cache]") {
    FakeClock clk;
    CacheOptions opt;
    opt.max_entries = 2;
    Cache c(opt, clk.fn());
    c.put("a.example", RrType::a, answer(DnsStatus::ok, 10, {"192.0.2.1"}));
    c.put("b.example", RrType::a, answer(DnsStatus::ok, 10, {"192.0.2.2"}));
    CHECK(c.has("A.example.", RrType::a));
    CHECK_FALSE(c.has("a.example", RrType::txt));
    CHECK_FALSE(c.has("c.example", RrType::a));
    CacheStats st = c.stats();
    CHECK(st.hits == 0);
    CHECK(st.misses == 0);
    // a.example is still the least recently used: the next insert evicts it.
    c.put("c.example", RrType::a, answer(DnsStatus::ok, 10, {"192.0.2.3"}));
    CHECK_FALSE(c.has("a.example", RrType::a));
    CHECK(c.has("b.example", RrType::a));
    clk.advance(milliseconds(10000));
    CHECK_FALSE(c.has("b.example", RrType::a));  // expired
}

TEST_CASE("cache-only resolver: stored answers without counting, a miss noted and never asked",
          "[dns][cache]") {
    FakeClock clk;
    Cache c(CacheOptions{}, clk.fn());
    c.put("a.example", RrType::a, answer(DnsStatus::ok, 10, {"192.0.2.1"}));
    c.put("gone.example", RrType::txt, answer(DnsStatus::nxdomain, 10));
    CacheOnlyResolver r(c);
    clk.advance(seconds(4));
    DnsAnswer a = r.query("a.example", RrType::a, Deadline::max());
    CHECK(a.status == DnsStatus::ok);
    CHECK(a.rdata == std::vector<std::string>{"192.0.2.1"});
    CHECK(a.ttl == 6);  // counted down, as get() does
    CHECK(a.cached);
    CHECK(r.query("gone.example", RrType::txt, Deadline::max()).status == DnsStatus::nxdomain);
    CHECK_FALSE(r.missed());
    DnsAnswer m = r.query("a.example", RrType::txt, Deadline::max());
    CHECK(m.status == DnsStatus::servfail);
    CHECK(m.detail.find("not cached") != std::string::npos);
    CHECK(r.missed());
    CacheStats st = c.stats();
    CHECK(st.hits == 0);
    CHECK(st.misses == 0);
    // Expired: a miss, not a stale answer.
    CacheOnlyResolver later(c);
    clk.advance(seconds(7));
    CHECK(later.query("a.example", RrType::a, Deadline::max()).status == DnsStatus::servfail);
    CHECK(later.missed());
}

TEST_CASE("cache: keys ignore case and a trailing dot; types are separate", "[dns][cache]") {
    FakeClock clk;
    Cache c({}, clk.fn());
    c.put("WWW.Example.", RrType::a, answer(DnsStatus::ok, 60, {"192.0.2.1"}));
    CHECK(c.get("www.example", RrType::a));
    CHECK(c.get("www.EXAMPLE.", RrType::a));
    CHECK_FALSE(c.get("www.example", RrType::aaaa));
    CHECK_FALSE(c.get("ww.example", RrType::a));
}

TEST_CASE("cache: what is stored and for how long, per status", "[dns][cache]") {
    CacheOptions o;
    o.max_ttl = 86400;
    o.max_negative_ttl = 10800;
    o.failure_ttl = 5;
    struct Case {
        DnsStatus st;
        uint32_t ttl;
        uint32_t want_kept;
        bool local = false;
    };  // 0 = not stored
    const Case cases[] = {
        {DnsStatus::ok, 300, 300},         {DnsStatus::ok, 0, 0},         // TTL 0 honoured
        {DnsStatus::ok, 4000000, 86400},                                  // capped at max_ttl
        {DnsStatus::nxdomain, 60, 60},                                    // RFC 2308: SOA-derived TTL
        {DnsStatus::nodata, 900, 900},     {DnsStatus::nxdomain, 0, 0},   // no SOA: not cached (RFC 2308 §5)
        {DnsStatus::nodata, 86400, 10800},                                // capped at max_negative_ttl
        {DnsStatus::servfail, 0, 5},                                      // failure_ttl
        {DnsStatus::malformed, 0, 5},      {DnsStatus::timeout, 300, 0},  // never
        {DnsStatus::servfail, 0, 0, true},  // this host's failure (EMFILE): never
    };
    for (const Case& k : cases) {
        FakeClock clk;
        Cache c(o, clk.fn());
        INFO("status " << to_string(k.st) << " ttl " << k.ttl);
        DnsAnswer put = answer(k.st, k.ttl);
        put.local = k.local;
        c.put("n.example", RrType::txt, put);
        auto a = c.get("n.example", RrType::txt);
        if (k.want_kept == 0) {
            CHECK_FALSE(a);
            continue;
        }
        REQUIRE(a);
        CHECK(a->status == k.st);
        CHECK(a->ttl == k.want_kept);
        clk.advance(seconds(k.want_kept) - milliseconds(1));
        CHECK(c.get("n.example", RrType::txt));
        clk.advance(milliseconds(1));
        CHECK_FALSE(c.get("n.example", RrType::txt));
    }
}

TEST_CASE("cache: negative answers (NXDOMAIN, NODATA) are served from the cache", "[dns][cache]") {
    FakeClock clk;
    auto cache = std::make_shared<Cache>(CacheOptions{}, clk.fn());
    MemoryResolver mem;
    mem.add("mail.example", RrType::a, "192.0.2.25", 300);  // exists: AAAA is NODATA
    CachingResolver r(mem, cache);

    struct Case {
        const char* name;
        RrType type;
        DnsStatus want;
    };
    const Case cases[] = {
        {"missing.example", RrType::a, DnsStatus::nxdomain},
        {"mail.example", RrType::aaaa, DnsStatus::nodata},
    };
    for (const Case& k : cases) {
        INFO(k.name << "/" << to_string(k.type));
        mem.clear_log();
        mem.set_strict(false);
        CHECK(r.query(k.name, k.type, no_deadline()).status == k.want);
        CHECK(r.query(k.name, k.type, no_deadline()).status == k.want);
        CHECK(mem.count() == 1);    // the second came from the cache
        clk.advance(seconds(300));  // MemoryResolver's negative TTL is 300
        CHECK(r.query(k.name, k.type, no_deadline()).status == k.want);
        CHECK(mem.count() == 2);
    }
}

TEST_CASE("cache: LRU eviction keeps the most recently used entries", "[dns][cache]") {
    FakeClock clk;
    CacheOptions o;
    o.max_entries = 3;
    Cache c(o, clk.fn());
    for (const char* n : {"a.example", "b.example", "c.example"}) {
        c.put(n, RrType::a, answer(DnsStatus::ok, 300, {"192.0.2.1"}));
    }
    CHECK(c.get("a.example", RrType::a));  // a is now the most recent; b the least
    c.put("d.example", RrType::a, answer(DnsStatus::ok, 300, {"192.0.2.4"}));
    CHECK_FALSE(c.get("b.example", RrType::a));
    for (const char* n : {"a.example", "c.example", "d.example"}) {
        INFO(n);
        CHECK(c.get(n, RrType::a));
    }
    // Replacing an entry does not count as a new one.
    c.put("c.example", RrType::a, answer(DnsStatus::ok, 300, {"192.0.2.3"}));
    CacheStats st = c.stats();
    CHECK(st.entries == 3);
    CHECK(st.evictions == 1);
    CHECK(st.inserts == 5);
    CHECK(c.get("c.example", RrType::a)->rdata == std::vector<std::string>{"192.0.2.3"});

    CacheOptions none;
    none.max_entries = 0;
    Cache off(none, clk.fn());
    off.put("a.example", RrType::a, answer(DnsStatus::ok, 300, {"192.0.2.1"}));
    CHECK_FALSE(off.get("a.example", RrType::a));
}

TEST_CASE("caching resolver: hits skip the upstream until the TTL runs out", "[dns][cache]") {
    FakeClock clk;
    auto cache = std::make_shared<Cache>(CacheOptions{}, clk.fn());
    MemoryResolver mem;
    mem.add("example.org", RrType::txt, "v=spf1 -all", 120);
    CachingResolver r(mem, cache);

    DnsAnswer first = r.query("example.org", RrType::txt, no_deadline());
    CHECK(first.status == DnsStatus::ok);
    CHECK(first.ttl == 120);
    clk.advance(seconds(20));
    DnsAnswer second = r.query("Example.ORG", RrType::txt, no_deadline());
    CHECK(second.rdata == first.rdata);
    CHECK(second.ttl == 100);
    CHECK(mem.count() == 1);
    clk.advance(seconds(100));
    r.query("example.org", RrType::txt, no_deadline());
    CHECK(mem.count() == 2);
    CHECK(mem.unexpected().empty());
    CacheStats st = cache->stats();
    CHECK(st.hits == 1);
    CHECK(st.misses == 2);
}

TEST_CASE("caching resolver: concurrent identical queries share one upstream query",
          "[dns][cache][threads]") {
    auto cache = std::make_shared<Cache>();
    BlockingResolver upstream;
    const int n = 8;
    std::vector<DnsAnswer> got(n);
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i) {
        threads.emplace_back([&, i] {
            CachingResolver r(upstream, cache);  // one per thread, as in the milter
            got[i] = r.query("busy.example", RrType::a, no_deadline());
        });
    }
    // Every thread has missed (and the first one is asking upstream) before release.
    wait_for([&] { return cache->stats().misses == uint64_t(n) && upstream.calls == 1; });
    upstream.release();
    for (auto& t : threads) t.join();

    CHECK(upstream.calls == 1);
    for (int i = 0; i < n; ++i) {
        INFO("thread " << i);
        CHECK(got[i].status == DnsStatus::ok);
        CHECK(got[i].rdata == std::vector<std::string>{"192.0.2.7"});
    }
    CacheStats st = cache->stats();
    CHECK(st.shared == uint64_t(n - 1));
    CHECK(st.misses == uint64_t(n));
    CHECK(st.entries == 1);
}

TEST_CASE("caching resolver: a waiter gives up at its own deadline", "[dns][cache][threads]") {
    auto cache = std::make_shared<Cache>();
    BlockingResolver upstream;
    DnsAnswer leader_answer;
    std::thread leader([&] {
        CachingResolver r(upstream, cache);
        leader_answer = r.query("slow.example", RrType::a, no_deadline());
    });
    wait_for([&] { return upstream.calls == 1; });
    CachingResolver r(upstream, cache);
    DnsAnswer waiter = r.query("slow.example", RrType::a, deadline_in(milliseconds(20)));
    CHECK(waiter.status == DnsStatus::timeout);
    CHECK(upstream.calls == 1);  // the waiter did not ask by itself
    upstream.release();
    leader.join();
    CHECK(leader_answer.status == DnsStatus::ok);
    // Now it is cached.
    CHECK(r.query("slow.example", RrType::a, deadline_in(milliseconds(20))).status == DnsStatus::ok);
}

TEST_CASE("caching resolver: 8 threads x 10k lookups give consistent answers and counters",
          "[dns][cache][threads]") {
    struct Case {
        size_t max_entries;
        int names;
    };
    const Case cases[] = {{10000, 500}, {100, 500}};  // fits; and constant eviction
    for (const Case& k : cases) {
        INFO("max_entries " << k.max_entries << ", " << k.names << " names");
        CacheOptions o;
        o.max_entries = k.max_entries;
        auto cache = std::make_shared<Cache>(o);
        CountingResolver upstream;
        const int threads = 8, per_thread = 10000;
        std::atomic<int> wrong{0};
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; ++t) {
            pool.emplace_back([&, t] {
                CachingResolver r(upstream, cache);
                unsigned x = 2654435761u * unsigned(t + 1);
                for (int i = 0; i < per_thread; ++i) {
                    x = x * 1103515245u + 12345u;
                    int n = int((x >> 8) % unsigned(k.names));
                    RrType type = (x & 1) ? RrType::a : RrType::aaaa;
                    std::string name = "h" + std::to_string(n) + ".test";
                    DnsAnswer a = r.query(name, type, no_deadline());
                    if (a.status != DnsStatus::ok || a.rdata.size() != 1 ||
                        a.rdata[0] != CountingResolver::expected(name, type)) {
                        ++wrong;
                    }
                }
            });
        }
        for (auto& th : pool) th.join();
        CHECK(wrong == 0);
        CacheStats st = cache->stats();
        CHECK(st.hits + st.misses == uint64_t(threads * per_thread));
        CHECK(uint64_t(upstream.calls.load()) == st.misses - st.shared);
        CHECK(st.entries <= k.max_entries);
        CHECK(st.inserts - st.evictions == st.entries);
        if (k.max_entries >= size_t(2 * k.names)) {
            CHECK(upstream.calls == 2 * k.names);  // once per (name, type), never again
            CHECK(st.evictions == 0);
        } else {
            CHECK(st.evictions > 0);
        }
    }
}

TEST_CASE("caching resolver: a shared timeout makes a waiter with time left ask itself",
          "[dns][cache][threads]") {
    // First call (the leader's): blocks until released, then times out, as if
    // the leader's own deadline had been short. Later calls answer at once.
    class FirstTimesOut : public Resolver {
    public:
        std::atomic<int> calls{0};
        DnsAnswer query(std::string_view, RrType, Deadline) override {
            if (++calls > 1) return answer(DnsStatus::ok, 60, {"192.0.2.9"});
            std::unique_lock<std::mutex> g(m);
            cv.wait(g, [&] { return released; });
            return answer(DnsStatus::timeout, 0);
        }
        std::mutex m;
        std::condition_variable cv;
        bool released = false;
    } upstream;
    auto cache = std::make_shared<Cache>();
    DnsAnswer leader_answer, waiter_answer;
    std::thread leader([&] {
        CachingResolver r(upstream, cache);
        leader_answer = r.query("flaky.example", RrType::a, no_deadline());
    });
    wait_for([&] { return upstream.calls == 1; });
    std::thread waiter([&] {
        CachingResolver r(upstream, cache);
        waiter_answer = r.query("flaky.example", RrType::a, no_deadline());
    });
    wait_for([&] { return cache->stats().misses == 2; });
    {
        std::lock_guard<std::mutex> g(upstream.m);
        upstream.released = true;
    }
    upstream.cv.notify_all();
    leader.join();
    waiter.join();
    CHECK(leader_answer.status == DnsStatus::timeout);
    CHECK(waiter_answer.status == DnsStatus::ok);
    CHECK(upstream.calls == 2);
    // The waiter's own answer was stored; the timeout never was.
    CachingResolver r(upstream, cache);
    CHECK(r.query("flaky.example", RrType::a, no_deadline()).rdata == std::vector<std::string>{"192.0.2.9"});
    CHECK(upstream.calls == 2);
}

TEST_CASE("local DNS failures: reported at once, then at most once per 10 s with a count", "[dns]") {
    std::vector<std::string> lines;
    set_local_error_log([&](const std::string& l) { lines.push_back(l); });
    for (int i = 0; i < 50; ++i) note_local_error("local error: Too many open files");
    set_local_error_log({});
    note_local_error("local error: Too many open files");  // no sink: nothing, no crash
    // The first of a burst is said; the other 49 fall within 10 s and wait for the next line.
    REQUIRE(lines.size() <= 1);
    if (!lines.empty())  // an earlier test in this process may have reported within 10 s
        CHECK(lines[0].find("the last with local error: Too many open files; not cached") !=
              std::string::npos);
}

TEST_CASE("caching resolver: a prefetch leads the flight that 8 threads' identical queries join",
          "[dns][cache][threads]") {
    auto cache = std::make_shared<Cache>();
    BlockingResolver upstream;
    util::Pool pool;
    // Each resolver's upstream is made at its first miss: none of the askers
    // needs one, only the prefetch's pool job.
    std::atomic<int> made{0};
    CachingResolver::Factory make = [&]() -> std::unique_ptr<Resolver> {
        ++made;
        return std::make_unique<Borrowed>(upstream);
    };
    CachingResolver first(make, cache, &pool);
    first.prefetch("busy.example", RrType::a, no_deadline());
    first.prefetch("busy.example", RrType::a, no_deadline());  // already asked: nothing more
    wait_for([&] { return upstream.calls == 1; });
    const int n = 8;
    std::vector<DnsAnswer> got(n);
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i)
        threads.emplace_back([&, i] {
            CachingResolver r(make, cache, &pool);
            got[i] = r.query("busy.example", RrType::a, no_deadline());
        });
    wait_for([&] { return cache->stats().misses == uint64_t(n); });
    upstream.release();
    for (auto& t : threads) t.join();

    CHECK(upstream.calls == 1);
    CHECK(made == 1);
    for (int i = 0; i < n; ++i) {
        INFO("thread " << i);
        CHECK(got[i].status == DnsStatus::ok);
        CHECK(got[i].rdata == std::vector<std::string>{"192.0.2.7"});
    }
    CacheStats st = cache->stats();
    CHECK(st.prefetches == 1);
    CHECK(st.shared == uint64_t(n));
    CHECK(st.entries == 1);
    // Stored now: a prefetch asks nothing, a query is a hit.
    first.prefetch("busy.example", RrType::a, no_deadline());
    CHECK(first.query("busy.example", RrType::a, no_deadline()).status == DnsStatus::ok);
    CHECK(upstream.calls == 1);
    CHECK(cache->stats().prefetches == 1);
}

TEST_CASE("caching resolver: no pool thread for a prefetch: the query asks for itself",
          "[dns][cache][threads]") {
    auto cache = std::make_shared<Cache>();
    MemoryResolver mem;
    mem.add("a.example", RrType::a, "192.0.2.1");
    util::Pool::Options opt;
    opt.max_threads = 0;  // refuses every job
    util::Pool pool(opt);
    CachingResolver r([&]() -> std::unique_ptr<Resolver> { return std::make_unique<Borrowed>(mem); }, cache,
                      &pool);
    r.prefetch("a.example", RrType::a, no_deadline());
    DnsAnswer a = r.query("a.example", RrType::a, no_deadline());
    CHECK(a.status == DnsStatus::ok);
    CHECK(mem.count() == 1);
    CHECK(pool.stats().refused == 1);
}

TEST_CASE("caching resolver: a warm cache makes no upstream resolver", "[dns][cache]") {
    auto cache = std::make_shared<Cache>();
    DnsAnswer ok;
    ok.status = DnsStatus::ok;
    ok.ttl = 60;
    ok.rdata = {"192.0.2.1"};
    cache->put("a.example", RrType::a, ok);
    int made = 0;
    CachingResolver r(
        [&]() -> std::unique_ptr<Resolver> {
            ++made;
            return nullptr;
        },
        cache);
    CHECK(r.query("a.example", RrType::a, no_deadline()).status == DnsStatus::ok);
    CHECK(made == 0);
    DnsAnswer miss = r.query("b.example", RrType::a, no_deadline());
    CHECK(made == 1);
    CHECK(miss.status == DnsStatus::servfail);
    CHECK(miss.detail == "no upstream resolver");
}
