#include "state.hpp"

#include <chrono>

#include "log.hpp"
#include "process.hpp"

namespace regmilter::daemon {

StateKeeper::~StateKeeper() {
    stop();
}

StateKeeper::Current StateKeeper::snapshot_of() const {
    std::lock_guard<std::mutex> lock(mu_);
    return current_;
}

std::shared_ptr<state::Store> StateKeeper::current() const {
    std::lock_guard<std::mutex> lock(mu_);
    return current_.made.store;
}

// The snapshot into a fresh memory store, every outcome logged.
void StateKeeper::load(const policy::MadeStore& made, const config::State& s) {
    if (!made.memory || s.snapshot.empty()) return;
    state::SnapshotResult r = made.memory->load(s.snapshot, state::wall_now());
    using St = state::SnapshotResult::Status;
    switch (r.status) {
        case St::ok:
            log_line(LOG_INFO, "state: read " + std::to_string(r.entries) + " entries from " + s.snapshot +
                                   " (" + std::to_string(r.expired) + " expired ones skipped)");
            break;
        case St::missing:
            log_line(LOG_INFO, "state: no snapshot " + s.snapshot + " yet; starting with empty state");
            break;
        case St::malformed:
        case St::io_error:
            log_line(LOG_ERR, r.str() + "; state snapshot refused, starting with empty state");
            break;
    }
}

void StateKeeper::start(const config::Config& cfg) noexcept {
    try {
        policy::MadeStore made = policy::make_store(cfg.state);
        load(made, cfg.state);
        {
            std::lock_guard<std::mutex> lock(mu_);
            current_ = Current{made, cfg.state, true};
        }
        log_line(LOG_INFO, "state: greylisting and rate limits in " + policy::describe_store(cfg.state));
    } catch (const std::exception& e) {
        log_line(LOG_ERR, std::string("state: cannot make the store: ") + e.what() +
                              "; greylisting and rate limits follow [state] on_error");
    }
}

void StateKeeper::configure(const config::Config& cfg) noexcept {
    try {
        Current old = snapshot_of();
        if (!old.started) return;
        if (policy::same_store(old.settings, cfg.state)) {
            std::lock_guard<std::mutex> lock(mu_);
            current_.settings = cfg.state;  // snapshot, snapshot_interval, on_error
            wake_.notify_all();
            return;
        }
        policy::MadeStore made = policy::make_store(cfg.state);
        std::string what;
        if (old.made.memory && made.memory) {
            what = std::to_string(made.memory->adopt(*old.made.memory, state::wall_now())) +
                   " entries kept from the previous memory store";
        } else if (old.made.memory && !old.settings.snapshot.empty()) {
            state::SnapshotResult r = old.made.memory->save(old.settings.snapshot, state::wall_now());
            what = r.status == state::SnapshotResult::Status::ok
                       ? "the memory store's " + std::to_string(r.entries) + " entries saved to " +
                             old.settings.snapshot
                       : "the memory store's entries are lost: " + r.str();
        } else if (old.made.memory) {
            what = "the memory store's entries are dropped (no snapshot)";
        } else {
            what = "nothing carried over from " + old.made.store->describe();
        }
        if (!old.made.memory) load(made, cfg.state);
        {
            std::lock_guard<std::mutex> lock(mu_);
            current_ = Current{made, cfg.state, true};
            wake_.notify_all();
        }
        log_line(LOG_WARNING, "reload: [state] changed: greylisting and rate limits now in " +
                                  policy::describe_store(cfg.state) + "; " + what);
    } catch (const std::exception& e) {
        log_line(LOG_ERR, std::string("reload: [state] not changed: ") + e.what());
    }
}

void StateKeeper::save(const char* when) {
    Current c = snapshot_of();
    if (!c.made.memory || c.settings.snapshot.empty()) return;
    auto t0 = std::chrono::steady_clock::now();
    state::UnixTime now = state::wall_now();
    c.made.memory->purge(now);
    state::SnapshotResult r = c.made.memory->save(c.settings.snapshot, now);
    if (r.status != state::SnapshotResult::Status::ok) {
        log_line(LOG_ERR, "state: " + std::string(when) + " snapshot not saved: " + r.str());
        return;
    }
    if (std::string(when) == "final") {
        auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
        log_line(LOG_INFO, "state: saved " + std::to_string(r.entries) + " entries to " +
                               c.settings.snapshot + " in " + std::to_string(ms.count()) + " ms");
    }
}

void StateKeeper::saver_loop() {
    std::unique_lock<std::mutex> lock(mu_);
    auto last = std::chrono::steady_clock::now();
    for (;;) {
        // Read again after each wake-up: a reload may change the interval.
        int seconds = current_.settings.snapshot_interval > 0 ? current_.settings.snapshot_interval : 300;
        auto until = last + std::chrono::seconds(seconds);
        if (wake_.wait_until(lock, until, [this] { return stopping_; })) return;
        if (std::chrono::steady_clock::now() < until) continue;
        last = std::chrono::steady_clock::now();
        lock.unlock();
        try {
            save("periodic");
        } catch (const std::exception& e) {
            log_line(LOG_ERR, std::string("state: periodic snapshot failed: ") + e.what());
        }
        lock.lock();
    }
}

void StateKeeper::start_saver() {
    if (saver_.joinable()) return;
    saver_ = quiet_thread([this] { saver_loop(); });
}

void StateKeeper::stop() noexcept {
    try {
        {
            std::lock_guard<std::mutex> lock(mu_);
            if (stopping_) return;
            stopping_ = true;
        }
        wake_.notify_all();
        if (saver_.joinable()) saver_.join();
        save("final");
    } catch (const std::exception& e) {
        log_line(LOG_ERR, std::string("state: final snapshot failed: ") + e.what());
    }
}

}  // namespace regmilter::daemon
