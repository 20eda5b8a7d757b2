// ratelimit: has a client network used up its messages or recipients for the
// current window? Counters over a state::Store, one per (network, registered
// or not, messages or recipients, window), in fixed windows aligned to
// multiples of `window` seconds since the epoch, so that every MX host counts
// in the same window. A limit of N lets N through per window and refuses the
// N+1-th; a refused one is not counted. Never logs; the only I/O is the Store
// call; results are values. Reentrant; thread-safe as the Store is.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "net/address.hpp"
#include "state/store.hpp"

namespace regmilter::ratelimit {

// [ratelimit]; limits per client network and window, 0 = no limit. The
// network prefixes are [greylist] network_v4 / network_v6.
struct Settings {
    int64_t window = 3600;  // seconds
    uint64_t registered_messages = 0;
    uint64_t registered_recipients = 0;
    uint64_t unregistered_messages = 0;
    uint64_t unregistered_recipients = 0;
    int network_v4 = 24;
    int network_v6 = 64;
};

struct Range {
    int64_t min, max;
};
constexpr Range window_range{1, 7 * 86400};
constexpr Range limit_range{0, 1000000000};

// Every problem with `s`, one sentence each naming the key. Empty when usable.
std::vector<std::string> check_settings(const Settings& s);

enum class Kind { messages, recipients };
const char* to_string(Kind k);  // "messages", "recipients"

// The limit that applies (0 = none).
uint64_t limit_for(const Settings& s, bool registered, Kind kind);

enum class Outcome {
    off,      // no limit for this class and kind: the store was not asked
    pass,     // within the limit (and counted)
    limited,  // over the limit: refuse with reply_text() (not counted)
    error,    // the store failed (store.status, store.reason): apply [state] on_error
};
// "off", "pass", "limited", "error": the log line's ratelimit= value.
const char* to_string(Outcome o);

struct Result {
    Outcome outcome = Outcome::off;
    Kind kind = Kind::messages;
    bool registered = false;
    uint64_t limit = 0;
    uint64_t count = 0;       // pass: the count with this one; limited: what it would have been
    int64_t window = 0;       // seconds
    int64_t retry_after = 0;  // limited: seconds until the window ends
    net::Cidr network;
    state::Outcome store;  // status, reason (names the store) and the outage event
};

// Counts `n` messages or recipients for `client` at `now` (unix seconds).
Result count(state::Store& store, const Settings& s, const net::Address& client, bool registered, Kind kind,
             state::UnixTime now, state::Deadline deadline, uint64_t n = 1);
// What count() would answer, changing nothing (regmilter-query --state-peek).
Result peek(state::Store& store, const Settings& s, const net::Address& client, bool registered, Kind kind,
            state::UnixTime now, state::Deadline deadline, uint64_t n = 1);

// "rate limit: 100 messages per 3600 s for 198.51.100.0/24"
std::string reply_text(const Result& r);

// The counter's key for the window that holds `now`.
state::Key counter_key(const Settings& s, const net::Address& client, bool registered, Kind kind,
                       state::UnixTime now);

}  // namespace regmilter::ratelimit
