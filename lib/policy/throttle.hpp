// policy: greylisting and rate limits in an SMTP session — which of them a
// transaction gets (never a trusted client; greylisting only where a registry
// verdict says greylist, never for a registered client), their results turned
// into replies under [state] on_error and observe mode, the log line of a
// store outage, and the store a [state] section asks for. Pure functions but
// make_store(); the store calls are policy::Session's, and the store itself
// belongs to the front end, outside the reloadable Runtime, so that a reload
// keeps what it remembers. Reentrant.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "policy/policy.hpp"
#include "state/memory_store.hpp"
#include "state/store.hpp"

namespace regmilter::policy {

// At MAIL FROM, once decide_mail let the transaction go on: whether its
// recipients are greylisted (greylist, greylist_reason), and which rate-limit
// class the client is in (registered: listed in a meaning = registered zone,
// or a registered zone could not be asked; limited: the client is not trusted).
ThrottleFacts plan_throttle(const Facts& facts, const config::Config& cfg);

// new, early: 451 4.7.1 "greylisted, please retry in N seconds"; passed,
// allowed: continue; error: [state] on_error (tempfail: 451 4.3.0). `reason`
// is the asking check's ("registry:unregistered:reg.example").
Reply decide_greylist(const greylist::Result& r, const std::string& reason,
                      const config::Config& cfg) noexcept;
// limited: 451 4.7.1 naming the limit; off, pass: continue; error: on_error.
Reply decide_ratelimit(const ratelimit::Result& r, const config::Config& cfg) noexcept;
// Observe mode: a refusal becomes continue (reason "observe:...", `would` the refusal),
// and its X-Regmilter text ("would greylist: 451 4.7.1 ...") is added to `observed`.
// Enforce mode: `v` as it is.
Reply observe(Reply v, const config::Config& cfg, std::vector<std::string>& observed);

// The operator's line for a store answer, or "" for an ordinary one: the
// first failure of an outage, its end, and a key of the wrong type (a
// problem with that key alone). It names the store; decision lines never do.
std::string store_notice(const state::Outcome& o, std::string_view store, const config::Config& cfg);

// A Store whose every call fails ("no state store"): what a session without
// one greylists with, so that on_error applies.
state::Store& no_store();

// The store a [state] section asks for: a MemoryStore (max_entries), or a
// RedisStore (connected lazily: this never waits for Redis).
struct MadeStore {
    std::shared_ptr<state::Store> store;
    std::shared_ptr<state::MemoryStore> memory;  // the same object when backend = memory
};
MadeStore make_store(const config::State& s);
// True when `a` and `b` make the same store, so a reload keeps the one it has
// (on_error, snapshot and snapshot_interval are read where they are used).
bool same_store(const config::State& a, const config::State& b);
// "memory (at most 1000000 entries)", "redis 127.0.0.1:6379, prefix regmilter:".
std::string describe_store(const config::State& s);

}  // namespace regmilter::policy
