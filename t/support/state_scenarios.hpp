// Test support: the greylisting and rate-limit steps of state/store.hpp as a
// table of scenarios, run against any Store — MemoryStore in the unit tests,
// RedisStore (its Lua scripts) through `state-probe conformance` in the
// integration test — so that the two implementations of one rule are checked
// against the same cases. Times are offsets from a base the runner chooses.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "state/store.hpp"

namespace regmilter::testing {

struct StoreStep {
    enum class Op { greylist, greylist_peek, client, client_peek, count, count_peek };
    Op op;
    int64_t at;  // seconds after the scenario's start
    // greylist: triplet and client numbers (keys distinct per scenario and
    // run); client: the client number alone
    int triplet = 0;
    int client = 0;
    // count: counter number, n, limit, the counter's expiry (offset)
    int counter = 0;
    uint64_t n = 0;
    uint64_t limit = 0;
    int64_t expires = 0;
    // What the step answers, as describe() prints it:
    //   greylist: "created first=0 passes=0", "early first=0 passes=0",
    //             "passed-now first=0 passes=1", "passed first=0 passes=1", "allowed passes=3"
    //   client:   "allowed passes=3", "not-allowed passes=2"
    //   count:    "admitted 3", "refused 4"
    const char* want = "";
};

struct StoreScenario {
    const char* name;
    state::GreylistRules rules;
    std::vector<StoreStep> steps;
};

const std::vector<StoreScenario>& store_scenarios();

// Runs every scenario on `store` at times base + offset; keys are derived from
// `salt` and the scenario's name (use a fresh salt per run on a shared store).
// Returns one line per failing step: "NAME step N: got X, want Y"; one line
// per store error: "NAME step N: store error STATUS: REASON".
std::vector<std::string> run_store_scenario(state::Store& store, const StoreScenario& s,
                                            std::string_view salt, state::UnixTime base);

std::string describe(const state::GreylistAnswer& a, state::UnixTime base);
std::string describe(const state::CounterAnswer& a);

}  // namespace regmilter::testing
