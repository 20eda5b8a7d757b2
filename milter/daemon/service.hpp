// daemon: what the milter process shares between its sessions and threads —
// the current snapshot (policy::RuntimeHolder), reloading the configuration
// (SIGHUP) and the bulk table (when its file changes and has settled), the
// greylisting and rate-limit store (state.hpp),
// draining on SIGTERM, and the count of open sessions. Decides nothing about
// mail. Thread-safe: sessions read current() and draining() from libmilter's
// threads; reload() and poll_table() run on the reload thread only.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "bulk/bulk.hpp"
#include "policy/runtime.hpp"
#include "policy/session.hpp"
#include "state.hpp"

namespace regmilter::daemon {

class Service {
public:
    // How long a changed bulk table file must stay unchanged before it is read.
    static constexpr std::chrono::seconds table_settle{2};

    explicit Service(std::string config_path);

    // Loads the configuration and the table and installs them. The problems
    // ("FILE:LINE: ...") are returned; nothing is installed when there are any.
    std::vector<util::Problem> start();
    // Installs a snapshot built elsewhere (tests).
    void install(std::shared_ptr<const policy::Runtime> rt);

    std::shared_ptr<const policy::Runtime> current() const { return holder_.current(); }
    const std::string& config_path() const { return path_; }

    // SIGHUP: the configuration and its table read again; a broken file is
    // refused with every problem logged, and the running snapshot kept.
    void reload() noexcept;
    // Every few seconds: the table file read again once it changed and settled.
    void poll_table(std::chrono::steady_clock::time_point now) noexcept;

    void begin_drain() { draining_ = true; }
    bool draining() const { return draining_; }

    void session_opened() { ++open_; }
    void session_closed() { --open_; }
    int open_sessions() const { return open_; }

    // What a new policy::Session runs with.
    policy::Environment environment();
    // The greylisting and rate-limit store, kept across reloads.
    StateKeeper& state() { return state_; }
    // Statistics: told of every answer of the sessions begun from now on
    // (null: none). Set before the milter starts; outlives the sessions.
    void set_observer(policy::Observer* o) { observer_ = o; }
    // The worker's prefetch deadlines (policy::Environment::stage_deadline),
    // for the sessions begun from now on. Set before the milter starts.
    void set_stage_deadline(decltype(policy::Environment::stage_deadline) f) {
        stage_deadline_ = std::move(f);
    }

private:
    void watch_table(const policy::Runtime& rt);

    std::string path_;
    policy::RuntimeHolder holder_;
    std::optional<bulk::TableFile> table_;  // reload thread only
    std::atomic<bool> draining_{false};
    std::atomic<int> open_{0};
    StateKeeper state_;
    policy::Observer* observer_ = nullptr;
    decltype(policy::Environment::stage_deadline) stage_deadline_;
};

}  // namespace regmilter::daemon
