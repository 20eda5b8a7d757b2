// state: where greylisting and rate limits keep what they remember — the
// Store interface, its keys and its answers. A Store applies one rule per call,
// atomically (for Redis: one round trip); it never decides about mail: the
// greylist and ratelimit modules turn its answers into results. No address is
// ever stored: a Key is a digest. Every call takes the caller's wall-clock time
// (unix seconds; tests inject it) and a Deadline; every failure is a Status,
// never an exception. Implementations are thread-safe: one Store serves every
// session of the process.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace regmilter::state {

using Clock = std::chrono::steady_clock;
// Absolute point after which a call gives up with Status::timeout.
using Deadline = Clock::time_point;
inline Deadline deadline_in(std::chrono::milliseconds ms) {
    return Clock::now() + ms;
}

// Seconds since 1970-01-01 UTC, from the caller (stored times survive restarts
// and are shared between hosts, so they are wall-clock, not steady).
using UnixTime = int64_t;
UnixTime wall_now();

enum class Status {
    ok,
    timeout,      // no answer before the deadline (or the store's own timeout)
    unreachable,  // cannot connect, connection lost, or backing off after that
    wrong_type,   // a key holds something this program did not write (Redis WRONGTYPE)
    full,         // the store refuses writes for lack of memory (Redis OOM, maxmemory)
    failed,       // anything else the store answered with an error (NOAUTH, a script error, ...)
};
const char* to_string(Status s);  // "ok", "timeout", "unreachable", "wrong-type", "full", "failed"

// Outage reporting without a log line per call: the first failing call of an
// outage carries outage_began, the first successful call after it carries
// outage_ended, every other call carries none. A wrong_type answer is a
// problem with one key, not an outage: it never starts or ends one.
enum class Event { none, outage_began, outage_ended };
const char* to_string(Event e);  // "none", "outage-began", "outage-ended"

// What every answer carries besides its data.
struct Outcome {
    Status status = Status::ok;
    std::string reason;            // set when status != ok, for logs: "timeout after 200 ms", "WRONGTYPE ..."
    Event event = Event::none;     // see Event
    uint64_t outage_failures = 0;  // with outage_ended: how many calls failed during the outage
    bool ok() const { return status == Status::ok; }
};

// A key names one remembered fact by kind and a 128-bit digest (the first 16
// bytes of SHA-256) of the fact's canonical text. The text may hold any bytes
// and be of any length; the key is always 17 bytes, and as Redis text
// PREFIX + "t:" + 32 hex digits, at most max_prefix + 34 bytes (<= 512).
enum class KeyKind : uint8_t {
    triplet = 't',  // greylisting: (client network, sender, recipient)
    client = 'c',   // greylisting: a client network's passed-triplet count (auto_allow)
    counter = 'r',  // rate limits: one counter per network, class, kind and window
};

constexpr size_t max_prefix = 64;  // bytes of a Redis key prefix

struct Key {
    KeyKind kind = KeyKind::triplet;
    std::array<uint8_t, 16> digest{};

    static Key of(KeyKind kind, std::string_view canonical);
    std::string hex() const;  // 32 lower-case hex digits of the digest
    // "t:" + hex(): the Redis key without its prefix
    std::string text() const;
    // Parses what text() prints; false for anything else.
    static bool parse(std::string_view text, Key& out);
    bool operator==(const Key& o) const { return kind == o.kind && digest == o.digest; }
};

// How greylisting treats a triplet; durations in seconds.
struct GreylistRules {
    int64_t delay = 300;           // a retry passes from first_seen + delay on
    int64_t retry_window = 14400;  // ... up to first_seen + retry_window, inclusive
    int64_t pass_lifetime =
        3110400;              // a passed triplet (or allowed client) is kept this long after its last use
    uint32_t auto_allow = 5;  // a client network with this many passed triplets passes (0: off)
};

// The one greylisting step, the same in every Store (MemoryStore in C++,
// RedisStore in Lua: t/support/state_scenarios checks both against one table).
// An entry whose `expires` is earlier than `now` counts as absent.
//   1. client network count n (0 if absent). If auto_allow > 0 and
//      n >= auto_allow: the client's expiry becomes now + pass_lifetime;
//      answer allowed.
//   2. triplet absent: store {first_seen = now, pending, expires = now +
//      retry_window}; answer created.
//   3. triplet pending, now - first_seen < delay: answer early (nothing changes).
//   4. triplet pending, otherwise (it has not expired, so it is within
//      retry_window): it becomes passed, expires = now + pass_lifetime; the
//      client's count becomes n + 1 and its expiry now + pass_lifetime;
//      answer passed_now.
//   5. triplet passed: expires = now + pass_lifetime; answer passed. (The
//      client's count is not touched: it lives pass_lifetime after the last
//      triplet that passed_now.)
// With Mode::peek nothing is written and the answer is what update would say.
//
// The client step is step 1 alone, for a caller that knows the client but
// not yet a recipient (MAIL FROM): allowed (and the client's expiry renewed,
// with update) when step 1 would answer allowed; otherwise created, with
// client_passes = n and nothing written: the triplets decide.
enum class TripletState { created, early, passed_now, passed, allowed };
const char* to_string(TripletState s);  // "created", "early", "passed-now", "passed", "allowed"

struct GreylistAnswer : Outcome {
    TripletState state = TripletState::created;
    UnixTime first_seen = 0;     // created, early, passed_now, passed (allowed: 0)
    uint32_t client_passes = 0;  // the client network's count after this step
};

// The rate-limit step: a counter that is absent (or expired) is 0; with
// v + n > limit (limit > 0) the answer is not admitted, value v + n, and
// nothing changes; otherwise the counter becomes v + n, forgotten after
// `expires`, and the answer is admitted with value v + n.
struct CounterAnswer : Outcome {
    bool admitted = true;
    uint64_t value = 0;
};

enum class Mode { update, peek };

class Store {
public:
    virtual ~Store() = default;

    // The greylisting step above for `triplet` and its client network `client`.
    virtual GreylistAnswer greylist(const Key& triplet, const Key& client, const GreylistRules& rules,
                                    UnixTime now, Mode mode, Deadline deadline) = 0;

    // The client step above for the client network `client`. This default
    // never allows, so that every recipient's greylisting step decides.
    virtual GreylistAnswer client(const Key& client, const GreylistRules& rules, UnixTime now, Mode mode,
                                  Deadline deadline);

    // The rate-limit step above; limit 0 = no limit.
    virtual CounterAnswer count(const Key& counter, uint64_t n, uint64_t limit, UnixTime expires,
                                UnixTime now, Mode mode, Deadline deadline) = 0;

    // For logs: "memory", "redis 127.0.0.1:6379", "redis unix:/run/redis.sock".
    virtual std::string describe() const = 0;
};

}  // namespace regmilter::state
