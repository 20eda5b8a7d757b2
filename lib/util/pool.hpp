// util: Pool, threads kept for short jobs that wait on the network (a
// connection's registry lookups, a concurrent SPF evaluation, a DNS prefetch),
// so that no job starts a thread of its own. A job goes to an idle thread, or
// to a new one while there are fewer than max_threads; otherwise run() says
// no and the caller does the work itself: nothing ever waits in a queue, so a
// job may wait for another job without a deadlock. Idle threads end after
// `idle`. Decides nothing about what runs. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <system_error>
#include <type_traits>
#include <vector>

namespace regmilter::util {

class Pool {
public:
    struct Options {
        size_t max_threads = 64;
        std::chrono::milliseconds idle{30000};  // an idle thread ends after this
    };

    explicit Pool(Options options);
    Pool();
    // Waits for the jobs that are running and for every thread to end.
    ~Pool();
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;

    // Runs `job` on a pool thread. False when every thread is busy and no new
    // one may or can be started (max_threads, or the system refused one): the
    // job was not taken, and the caller runs it (or drops it) itself. `job`
    // must not throw.
    bool run(std::function<void()> job);

    // `fn()` on a pool thread, its result (or exception) in the future; when
    // the pool cannot take it, a deferred future that runs `fn` in the thread
    // that asks for the result (get() or wait()).
    template <class Fn>
    auto submit(Fn fn) -> std::future<std::invoke_result_t<Fn>> {
        using R = std::invoke_result_t<Fn>;
        auto task = std::make_shared<std::packaged_task<R()>>(std::move(fn));
        std::future<R> f = task->get_future();
        if (run([task] { (*task)(); })) return f;
        return std::async(std::launch::deferred, [task, f = std::move(f)]() mutable {
            (*task)();
            return f.get();
        });
    }

    struct Stats {
        size_t threads = 0;    // alive now
        size_t idle = 0;       // waiting for a job now
        uint64_t started = 0;  // threads started so far
        uint64_t jobs = 0;     // jobs taken so far
        uint64_t refused = 0;  // run() said no
    };
    Stats stats();

    // The process's pool for the mail path (64 threads, 30 s idle). Never
    // destroyed: its idle threads simply end with the process.
    static Pool& shared();

private:
    struct State;
    void work(std::shared_ptr<State> s);

    const Options options_;
    std::shared_ptr<State> state_;
};

}  // namespace regmilter::util
