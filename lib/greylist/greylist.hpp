// greylist: is a (client network, sender, recipient) triplet let through now,
// or asked to come back later (greylisting, RFC 6647 §2.1)? Over a
// state::Store, with the caller's clock. It never chooses whom to greylist —
// the policy does (unregistered or listed clients; never trusted,
// authenticated or registered ones) — and never logs. The only I/O is the
// Store call; the result is a value, never an exception. Reentrant;
// thread-safe as the Store is.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/address.hpp"
#include "state/store.hpp"

namespace regmilter::greylist {

// [greylist]: durations in seconds, prefix lengths in bits.
struct Settings {
    int64_t delay = 300;              // a retry passes this long after the first attempt
    int64_t retry_window = 4 * 3600;  // ... and until this long after it (inclusive)
    int64_t pass_lifetime =
        36 * 86400;       // a passed triplet (or allowed client) is kept this long after its last use
    int network_v4 = 24;  // client addresses grouped by this prefix
    int network_v6 = 64;
    uint32_t auto_allow = 5;  // from its N-th passed triplet on, a client network passes (0: never)
};

// The ranges a configuration may set (inclusive).
struct Range {
    int64_t min, max;
};
constexpr Range delay_range{1, 86400};
constexpr Range retry_window_range{60, 30 * 86400};
constexpr Range pass_lifetime_range{3600, 366 * 86400};
constexpr Range network_v4_range{8, 32};
constexpr Range network_v6_range{16, 128};
constexpr Range auto_allow_range{0, 1000};

// Every problem with `s`, one sentence each naming the key: out of range, or
// retry_window not longer than delay. Empty when usable.
std::vector<std::string> check_settings(const Settings& s);

// The store's rules for these settings.
state::GreylistRules rules_of(const Settings& s);

// sender and recipient as the envelope gives them, with or without <>; ""
// is the null sender. Any bytes, any length: they are only hashed.
struct Request {
    net::Address client;  // IPv4-mapped addresses count as IPv4
    std::string_view sender;
    std::string_view recipient;
};

// Keys of a triplet and of its client network: SHA-256 digests of
// (network, sender, recipient) with ASCII case folded in the addresses.
state::Key triplet_key(const Settings& s, const Request& r);
state::Key client_key(const Settings& s, const net::Address& client);

enum class Outcome {
    new_,     // first attempt of this triplet (or first since it expired): retry after `wait`
    early,    // retried before the delay ran out: retry after `wait`
    passed,   // retried in the window, or passed before: let through
    allowed,  // the client network passed auto_allow triplets: let through
    error,    // the store failed (store.status, store.reason): apply [state] on_error
};
// "new", "early", "passed", "allowed", "error": the log line's greylist= value.
const char* to_string(Outcome o);

struct Result {
    Outcome outcome = Outcome::error;
    int64_t wait = 0;            // new, early: seconds until a retry passes (>= 1)
    net::Cidr network;           // the client's network ("198.51.100.0/24")
    uint32_t client_passes = 0;  // passed triplets of the network so far
    // The store call: status, reason (it names the store: for the outage
    // line, not the decision line) and the outage event to log once.
    state::Outcome store;
    bool delays() const { return outcome == Outcome::new_ || outcome == Outcome::early; }
};

// One attempt of the triplet at `now` (unix seconds): records it and says
// what to do. Every store failure is Outcome::error.
Result check(state::Store& store, const Settings& s, const Request& r, state::UnixTime now,
             state::Deadline deadline);
// What check() would answer at `now`, changing nothing (regmilter-query --state-peek).
Result peek(state::Store& store, const Settings& s, const Request& r, state::UnixTime now,
            state::Deadline deadline);

// At MAIL FROM, before any recipient: when the client's network is allowed
// (auto_allow), the result every recipient's check() would give (outcome
// allowed; update also renews the network, as check() does), else nullopt:
// each recipient's triplet decides. `store_outcome` gets the call's outcome (a
// failure is nullopt here; the recipients' calls then apply on_error).
std::optional<Result> check_client(state::Store& store, const Settings& s, const net::Address& client,
                                   state::UnixTime now, state::Deadline deadline, state::Mode mode,
                                   state::Outcome& store_outcome);

// The reply text for new/early: "greylisted, please retry in 300 seconds".
std::string reply_text(const Result& r);

}  // namespace regmilter::greylist
