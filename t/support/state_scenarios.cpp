// Test support: one table of Store scenarios for MemoryStore and RedisStore.
#include "state_scenarios.hpp"

namespace regmilter::testing {

namespace {

using Op = StoreStep::Op;

StoreStep g(int64_t at, int triplet, int client, const char* want) {
    StoreStep s{Op::greylist, at};
    s.triplet = triplet;
    s.client = client;
    s.want = want;
    return s;
}
StoreStep gp(int64_t at, int triplet, int client, const char* want) {
    StoreStep s = g(at, triplet, client, want);
    s.op = Op::greylist_peek;
    return s;
}
StoreStep cl(int64_t at, int client, const char* want, Op op = Op::client) {
    StoreStep s{op, at};
    s.client = client;
    s.want = want;
    return s;
}
StoreStep c(int64_t at, int counter, uint64_t n, uint64_t limit, int64_t expires, const char* want) {
    StoreStep s{Op::count, at};
    s.counter = counter;
    s.n = n;
    s.limit = limit;
    s.expires = expires;
    s.want = want;
    return s;
}
StoreStep cp(int64_t at, int counter, uint64_t n, uint64_t limit, int64_t expires, const char* want) {
    StoreStep s = c(at, counter, n, limit, expires, want);
    s.op = Op::count_peek;
    return s;
}

constexpr int64_t D = 300;      // delay
constexpr int64_t W = 14400;    // retry_window
constexpr int64_t L = 3110400;  // pass_lifetime (36 days)
const state::GreylistRules rules{D, W, L, 3};
const state::GreylistRules no_auto{D, W, L, 0};

}  // namespace

const std::vector<StoreScenario>& store_scenarios() {
    static const std::vector<StoreScenario> all = {
        {"delay boundaries: delay-1 early, delay passes",
         rules,
         {g(0, 1, 1, "created first=0 passes=0"), g(D - 1, 1, 1, "early first=0 passes=0"),
          g(D, 1, 1, "passed-now first=0 passes=1"), g(D + 1, 1, 1, "passed first=0 passes=1")}},
        {"the window's last second passes",
         rules,
         {g(0, 1, 1, "created first=0 passes=0"), g(W, 1, 1, "passed-now first=0 passes=1")}},
        {"window+1 starts again",
         rules,
         {g(0, 1, 1, "created first=0 passes=0"), g(W + 1, 1, 1, "created first=14401 passes=0"),
          g(W + D, 1, 1, "early first=14401 passes=0"),
          g(W + 1 + D, 1, 1, "passed-now first=14401 passes=1")}},
        {"early retries do not move first-seen",
         rules,
         {g(0, 1, 1, "created first=0 passes=0"), g(100, 1, 1, "early first=0 passes=0"),
          g(200, 1, 1, "early first=0 passes=0"), g(D, 1, 1, "passed-now first=0 passes=1")}},
        {"a passed triplet lives pass_lifetime after its last use",
         rules,
         {g(0, 1, 1, "created first=0 passes=0"), g(D, 1, 1, "passed-now first=0 passes=1"),
          g(D + L, 1, 1, "passed first=0 passes=1"), g(D + 2 * L, 1, 1, "passed first=0 passes=0"),
          g(D + 3 * L + 1, 1, 2, "created first=9331501 passes=0")}},
        {"a passed triplet counts once for auto_allow",
         rules,
         {g(0, 1, 1, "created first=0 passes=0"), g(D, 1, 1, "passed-now first=0 passes=1"),
          g(D + 1, 1, 1, "passed first=0 passes=1"), g(D + 2, 1, 1, "passed first=0 passes=1"),
          gp(D + 3, 2, 1, "created first=303 passes=1")}},
        {"auto_allow = 3: the third passed triplet allows the client",
         rules,
         {g(0, 1, 1, "created first=0 passes=0"), g(0, 2, 1, "created first=0 passes=0"),
          g(0, 3, 1, "created first=0 passes=0"), g(0, 4, 1, "created first=0 passes=0"),
          g(D, 1, 1, "passed-now first=0 passes=1"), g(D, 2, 1, "passed-now first=0 passes=2"),
          g(D, 3, 1, "passed-now first=0 passes=3"), g(D, 4, 1, "allowed passes=3"),
          g(D + 1, 5, 1, "allowed passes=3"), g(D + 1, 6, 2, "created first=301 passes=0")}},
        {"an allowed client is kept pass_lifetime after its last use",
         rules,
         {g(0, 1, 1, "created first=0 passes=0"), g(0, 2, 1, "created first=0 passes=0"),
          g(0, 3, 1, "created first=0 passes=0"), g(D, 1, 1, "passed-now first=0 passes=1"),
          g(D, 2, 1, "passed-now first=0 passes=2"), g(D, 3, 1, "passed-now first=0 passes=3"),
          g(D + L, 7, 1, "allowed passes=3"), g(D + 2 * L, 8, 1, "allowed passes=3"),
          g(D + 3 * L + 1, 9, 1, "created first=9331501 passes=0")}},
        {"auto_allow = 0 never allows",
         no_auto,
         {g(0, 1, 1, "created first=0 passes=0"), g(0, 2, 1, "created first=0 passes=0"),
          g(D, 1, 1, "passed-now first=0 passes=1"), g(D, 2, 1, "passed-now first=0 passes=2"),
          g(D, 3, 1, "created first=300 passes=2")}},
        {"peek changes nothing",
         rules,
         {gp(0, 1, 1, "created first=0 passes=0"), gp(0, 1, 1, "created first=0 passes=0"),
          g(0, 1, 1, "created first=0 passes=0"), gp(D - 1, 1, 1, "early first=0 passes=0"),
          gp(D, 1, 1, "passed-now first=0 passes=1"), gp(D, 1, 1, "passed-now first=0 passes=1"),
          g(D + 1, 1, 1, "passed-now first=0 passes=1"), gp(D + 2, 1, 1, "passed first=0 passes=1")}},
        {"the client step: allowed from the auto_allow-th passed triplet on, and renewed",
         rules,
         {cl(0, 1, "not-allowed passes=0"), g(0, 1, 1, "created first=0 passes=0"),
          g(0, 2, 1, "created first=0 passes=0"), g(0, 3, 1, "created first=0 passes=0"),
          g(D, 1, 1, "passed-now first=0 passes=1"), g(D, 2, 1, "passed-now first=0 passes=2"),
          cl(D, 1, "not-allowed passes=2"), g(D, 3, 1, "passed-now first=0 passes=3"),
          cl(D + 1, 1, "allowed passes=3"), cl(D + L, 1, "allowed passes=3"),
          cl(D + 2 * L, 1, "allowed passes=3", Op::client_peek), cl(D + 2 * L, 1, "allowed passes=3"),
          g(D + 3 * L, 9, 1, "allowed passes=3"), cl(D + 4 * L + 1, 1, "not-allowed passes=0"),
          cl(D + 4 * L + 1, 2, "not-allowed passes=0")}},
        {"the client step: peek renews nothing, and it writes nothing when not allowed",
         rules,
         {cl(0, 1, "not-allowed passes=0"), g(0, 1, 1, "created first=0 passes=0"),
          g(0, 2, 1, "created first=0 passes=0"), g(0, 3, 1, "created first=0 passes=0"),
          g(D, 1, 1, "passed-now first=0 passes=1"), g(D, 2, 1, "passed-now first=0 passes=2"),
          g(D, 3, 1, "passed-now first=0 passes=3"), cl(D + L, 1, "allowed passes=3", Op::client_peek),
          cl(D + L + 1, 1, "not-allowed passes=0"), cl(D + L + 1, 1, "not-allowed passes=0"),
          g(D + L + 1, 4, 1, "created first=3110701 passes=0")}},
        {"the client step with auto_allow = 0 never allows",
         no_auto,
         {g(0, 1, 1, "created first=0 passes=0"), g(D, 1, 1, "passed-now first=0 passes=1"),
          cl(D, 1, "not-allowed passes=1")}},
        {"limit 3: three pass, the fourth is refused and not counted",
         rules,
         {c(0, 1, 1, 3, 3599, "admitted 1"), c(1, 1, 1, 3, 3599, "admitted 2"),
          c(2, 1, 1, 3, 3599, "admitted 3"), c(3, 1, 1, 3, 3599, "refused 4"),
          c(4, 1, 1, 3, 3599, "refused 4"), cp(5, 1, 1, 3, 3599, "refused 4")}},
        {"a counter is forgotten after its expiry",
         rules,
         {c(0, 1, 1, 2, 59, "admitted 1"), c(59, 1, 1, 2, 59, "admitted 2"), c(59, 1, 1, 2, 59, "refused 3"),
          c(60, 1, 1, 2, 119, "admitted 1")}},
        {"limit 0 counts without refusing",
         rules,
         {c(0, 1, 1, 0, 99, "admitted 1"), c(0, 1, 5, 0, 99, "admitted 6"), cp(0, 1, 1, 0, 99, "admitted 7"),
          c(0, 1, 1, 0, 99, "admitted 7")}},
        {"n > 1 is all or nothing",
         rules,
         {c(0, 1, 2, 3, 99, "admitted 2"), c(0, 1, 2, 3, 99, "refused 4"), c(0, 1, 1, 3, 99, "admitted 3")}},
        {"counters are separate",
         rules,
         {c(0, 1, 1, 1, 99, "admitted 1"), c(0, 1, 1, 1, 99, "refused 2"), c(0, 2, 1, 1, 99, "admitted 1")}},
    };
    return all;
}

std::string describe(const state::GreylistAnswer& a, state::UnixTime base) {
    if (a.state == state::TripletState::allowed)
        return std::string("allowed passes=") + std::to_string(a.client_passes);
    return std::string(state::to_string(a.state)) + " first=" + std::to_string(a.first_seen - base) +
           " passes=" + std::to_string(a.client_passes);
}

std::string describe(const state::CounterAnswer& a) {
    return std::string(a.admitted ? "admitted " : "refused ") + std::to_string(a.value);
}

std::vector<std::string> run_store_scenario(state::Store& store, const StoreScenario& s,
                                            std::string_view salt, state::UnixTime base) {
    std::vector<std::string> failures;
    auto key = [&](state::KeyKind kind, int n) {
        return state::Key::of(kind, std::string(salt) + "\n" + s.name + "\n" + std::to_string(n));
    };
    int i = 0;
    for (const StoreStep& step : s.steps) {
        ++i;
        const std::string where = std::string(s.name) + " step " + std::to_string(i);
        const auto deadline = state::deadline_in(std::chrono::seconds(5));
        const state::UnixTime now = base + step.at;
        std::string got;
        state::Outcome out;
        if (step.op == Op::client || step.op == Op::client_peek) {
            auto a = store.client(key(state::KeyKind::client, step.client), s.rules, now,
                                  step.op == Op::client ? state::Mode::update : state::Mode::peek, deadline);
            out = a;
            got = std::string(a.state == state::TripletState::allowed ? "allowed" : "not-allowed") +
                  " passes=" + std::to_string(a.client_passes);
        } else if (step.op == Op::greylist || step.op == Op::greylist_peek) {
            auto a = store.greylist(
                key(state::KeyKind::triplet, step.triplet), key(state::KeyKind::client, step.client), s.rules,
                now, step.op == Op::greylist ? state::Mode::update : state::Mode::peek, deadline);
            out = a;
            got = describe(a, base);
        } else {
            auto a = store.count(key(state::KeyKind::counter, step.counter), step.n, step.limit,
                                 base + step.expires, now,
                                 step.op == Op::count ? state::Mode::update : state::Mode::peek, deadline);
            out = a;
            got = describe(a);
        }
        if (!out.ok()) {
            failures.push_back(where + ": store error " + state::to_string(out.status) + ": " + out.reason);
            break;
        }
        if (got != step.want) failures.push_back(where + ": got '" + got + "', want '" + step.want + "'");
    }
    return failures;
}

}  // namespace regmilter::testing
