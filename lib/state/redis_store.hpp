// state: RedisStore, the Store that several MX hosts share, over hiredis.
// Each step of store.hpp is one Lua script run by EVALSHA (EVAL when the
// server answers NOSCRIPT): atomic, one round trip. Connections are pooled
// (one per concurrent caller, kept for reuse); a broken connection is dropped
// and the next attempt waits out a backoff (100 ms doubling to 2 s), during
// which calls fail at once instead of each waiting for a timeout. Every answer
// of the wrong shape, timeout, lost connection, OOM or other error reply is a
// Status with a reason — never an exception or a crash; SIGPIPE is kept away
// from the process. Works with a single Redis (or a Sentinel-managed primary),
// not Redis Cluster (a step touches two keys). Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "state/store.hpp"
#include "util/lock_guarded.hpp"

namespace regmilter::state {

struct RedisOptions {
    std::string unix_path;  // set: connect to this unix socket, host/port unused
    std::string host =
        "127.0.0.1";  // an IP address (a name is resolved at each connect, unbounded by timeout)
    uint16_t port = 6379;
    std::string prefix = "regmilter:";       // put before every key; at most max_prefix bytes, no blanks
    std::chrono::milliseconds timeout{200};  // per call (connect + round trip), also capped by the Deadline
    std::string password;                    // empty: no AUTH
    std::chrono::milliseconds backoff_min{100};
    std::chrono::milliseconds backoff_max{2000};
    size_t max_idle = 16;  // connections kept for reuse
};

// "unix:/PATH", "HOST:PORT", "[IPv6]:PORT", or "HOST" (port 6379) into
// `into`'s unix_path / host / port. False, with `error` a sentence that names
// the text and the accepted forms, when it is none of those.
bool parse_redis_address(std::string_view text, RedisOptions& into, std::string& error);

// [state] timeout_ms, inclusive.
struct MsRange {
    int64_t min, max;
};
constexpr MsRange timeout_ms_range{10, 5000};

// Problems with options (prefix length or bytes, timeout out of range), one
// sentence each; empty when usable.
std::vector<std::string> check_redis_options(const RedisOptions& options);

class RedisStore : public Store {
public:
    // Connects lazily, on the first call.
    explicit RedisStore(RedisOptions options);
    ~RedisStore() override;
    RedisStore(const RedisStore&) = delete;
    RedisStore& operator=(const RedisStore&) = delete;

    GreylistAnswer greylist(const Key& triplet, const Key& client, const GreylistRules& rules, UnixTime now,
                            Mode mode, Deadline deadline) override;
    GreylistAnswer client(const Key& client, const GreylistRules& rules, UnixTime now, Mode mode,
                          Deadline deadline) override;
    CounterAnswer count(const Key& counter, uint64_t n, uint64_t limit, UnixTime expires, UnixTime now,
                        Mode mode, Deadline deadline) override;
    std::string describe() const override;

    // The Redis key a Key is stored under: prefix + Key::text().
    std::string redis_key(const Key& k) const;

    // Internals, defined in redis_store.cpp.
    struct Connection;  // one hiredis context
    struct Script;      // a Lua script and its SHA-1
    struct Reply;       // a script's integers, or why there are none

private:
    Reply run(const Script& script, const std::vector<std::string>& keys,
              const std::vector<std::string>& args, Deadline deadline);
    GreylistAnswer greylist_answer(Reply r);
    std::unique_ptr<Connection> connect(Deadline deadline, Reply& failure);
    std::unique_ptr<Connection> take();
    void give_back(std::unique_ptr<Connection> c);
    void broken(const std::string& reason);  // start or extend the backoff, drop pooled connections
    void healthy();                          // end the backoff
    void note(Outcome& o);                   // outage bookkeeping on every answer

    const RedisOptions options_;
    struct Health {
        std::chrono::milliseconds backoff{0};
        Clock::time_point retry_at{};
        std::string last_error;
    };
    util::LockGuarded<Health> health_;
    std::atomic<int64_t> retry_at_ns_{0};  // Health::retry_at, readable without the lock
    std::atomic<uint64_t> generation_{0};  // bumped on a broken connection: pooled ones are dropped
    util::LockGuarded<std::vector<std::unique_ptr<Connection>>> idle_;
    std::atomic<bool> failing_{false};
    std::atomic<uint64_t> failures_{0};
};

}  // namespace regmilter::state
