#include "util/pool.hpp"

#include <deque>
#include <thread>

namespace regmilter::util {

struct Pool::State {
    std::mutex mutex;
    std::condition_variable wake;            // a job is waiting, or stop
    std::condition_variable ended;           // a thread ended
    std::deque<std::function<void()>> jobs;  // never more than idle threads
    size_t threads = 0, idle = 0;
    bool stop = false;
    Stats stats;
};

Pool::Pool(Options options) : options_(options), state_(std::make_shared<State>()) {}

Pool::Pool() : Pool(Options{}) {}

Pool::~Pool() {
    std::unique_lock<std::mutex> g(state_->mutex);
    state_->stop = true;
    state_->wake.notify_all();
    state_->ended.wait(g, [this] { return state_->threads == 0; });
}

bool Pool::run(std::function<void()> job) {
    std::unique_lock<std::mutex> g(state_->mutex);
    State& s = *state_;
    if (s.stop) return false;
    if (s.idle > s.jobs.size()) {
        s.jobs.push_back(std::move(job));
        ++s.stats.jobs;
        s.wake.notify_one();
        return true;
    }
    if (s.threads >= options_.max_threads) {
        ++s.stats.refused;
        return false;
    }
    ++s.threads;
    try {
        std::thread([this, st = state_, j = std::move(job)]() mutable {
            j();
            j = nullptr;
            work(std::move(st));
        }).detach();
    } catch (const std::system_error&) {
        --s.threads;
        ++s.stats.refused;
        return false;
    }
    ++s.stats.started;
    ++s.stats.jobs;
    return true;
}

// A thread's life after its first job: take jobs until idle too long (or stop).
// Only `s` is used: the Pool itself may be gone once `threads` reaches 0.
void Pool::work(std::shared_ptr<State> st) {
    State& s = *st;
    const auto idle_for = options_.idle;
    std::unique_lock<std::mutex> g(s.mutex);
    for (;;) {
        ++s.idle;
        bool got = s.wake.wait_for(g, idle_for, [&] { return !s.jobs.empty() || s.stop; });
        --s.idle;
        if (!got || s.jobs.empty()) break;
        std::function<void()> job = std::move(s.jobs.front());
        s.jobs.pop_front();
        g.unlock();
        job();
        job = nullptr;
        g.lock();
    }
    --s.threads;
    s.ended.notify_all();
}

Pool::Stats Pool::stats() {
    std::lock_guard<std::mutex> g(state_->mutex);
    Stats st = state_->stats;
    st.threads = state_->threads;
    st.idle = state_->idle;
    return st;
}

Pool& Pool::shared() {
    static Pool* pool = new Pool(Options{});
    return *pool;
}

}  // namespace regmilter::util
