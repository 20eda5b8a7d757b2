// daemon state: the process's greylisting and rate-limit store. Made from
// [state] at start and made again only when a reload changes what it is (so a
// reload keeps what the memory store remembers); the memory store's snapshot
// read at start, saved every snapshot_interval seconds on a thread of its own
// (every signal blocked there) and once more at exit, after the drain.
// Decides nothing about mail; logs what it does. Thread-safe: sessions call
// current() from libmilter's threads, configure() runs on the reload thread.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "config/config.hpp"
#include "policy/throttle.hpp"

namespace regmilter::daemon {

class StateKeeper {
public:
    StateKeeper() = default;
    ~StateKeeper();
    StateKeeper(const StateKeeper&) = delete;
    StateKeeper& operator=(const StateKeeper&) = delete;

    // Makes the store. With backend = memory and a snapshot, reads it: a
    // missing file is a first start; a malformed or unreadable one is logged
    // ("FILE:LINE: ...") and the store starts empty — mail flows either way.
    // Call once, after the privileges are dropped (the same user reads and
    // writes the snapshot).
    void start(const config::Config& cfg) noexcept;
    // A reload: when [state] asks for another store it is made now and the
    // change logged; memory to memory keeps the entries, memory to Redis
    // saves them to the snapshot first. Before start(): nothing.
    void configure(const config::Config& cfg) noexcept;
    // The store new sessions use; null before start().
    std::shared_ptr<state::Store> current() const;

    // The saver thread (memory backend with a snapshot): one save every
    // snapshot_interval seconds, expired entries purged on the way.
    void start_saver();
    // Stops the saver and saves once more (SIGTERM, after the drain).
    void stop() noexcept;

private:
    struct Current {
        policy::MadeStore made;
        config::State settings;
        bool started = false;
    };
    Current snapshot_of() const;
    void load(const policy::MadeStore& made, const config::State& s);
    void save(const char* when);
    void saver_loop();

    mutable std::mutex mu_;
    Current current_;        // guarded by mu_
    bool stopping_ = false;  // guarded by mu_
    std::condition_variable wake_;
    std::thread saver_;
};

}  // namespace regmilter::daemon
