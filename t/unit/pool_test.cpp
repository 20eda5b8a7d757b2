// util::Pool: jobs run on kept threads, a full pool says no (never queues),
// submit() falls back to running in the asker's thread.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "util/pool.hpp"

using regmilter::util::Pool;

TEST_CASE("pool: threads are kept and reused for later jobs", "[pool][threads]") {
    Pool pool;
    for (int i = 0; i < 20; ++i) {
        auto f = pool.submit([i] { return i * 2; });
        CHECK(f.get() == i * 2);
        // The thread becomes idle again before the next job is handed out.
        while (pool.stats().idle == 0) std::this_thread::yield();
    }
    Pool::Stats st = pool.stats();
    CHECK(st.started == 1);
    CHECK(st.jobs == 20);
    CHECK(st.refused == 0);
}

TEST_CASE("pool: a full pool refuses; submit() then runs the job where it is asked for", "[pool][threads]") {
    Pool::Options opt;
    opt.max_threads = 2;
    Pool pool(opt);
    std::mutex m;
    std::condition_variable cv;
    bool go = false;
    auto blocked = [&] {
        std::unique_lock<std::mutex> g(m);
        cv.wait(g, [&] { return go; });
        return std::this_thread::get_id();
    };
    auto a = pool.submit(blocked);
    auto b = pool.submit(blocked);
    CHECK_FALSE(pool.run([] {}));
    auto c = pool.submit([] { return std::this_thread::get_id(); });
    CHECK(c.wait_for(std::chrono::seconds(0)) == std::future_status::deferred);
    CHECK(c.get() == std::this_thread::get_id());
    {
        std::lock_guard<std::mutex> g(m);
        go = true;
    }
    cv.notify_all();
    CHECK(a.get() != std::this_thread::get_id());
    CHECK(b.get() != std::this_thread::get_id());
    CHECK(pool.stats().refused == 2);
    CHECK(pool.stats().started == 2);
}

TEST_CASE("pool: an exception reaches the future; idle threads end", "[pool][threads]") {
    Pool::Options opt;
    opt.idle = std::chrono::milliseconds(10);
    Pool pool(opt);
    // Shared: get() keeps the result, so the exception is freed here, after
    // the pool thread is gone. With a plain future, get() lets go of the
    // result and the pool thread may be the one to free the exception, after
    // this thread read it; the two are ordered by the exception's reference
    // count, which libstdc++'s runtime keeps outside TSan's sight, so
    // `make check SANITIZE=thread` reported a race that is not one.
    std::shared_future<int> f = pool.submit([]() -> int { throw std::runtime_error("boom"); }).share();
    CHECK_THROWS_WITH(f.get(), "boom");
    for (int i = 0; i < 500 && pool.stats().threads > 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    CHECK(pool.stats().threads == 0);
}
