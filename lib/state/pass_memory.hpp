// state: PassMemory, a Store in front of another (Redis) that remembers, for
// a short while, the triplets it saw pass and the client networks it saw
// allowed, and answers those again without asking the store behind it. A pass
// is final until it expires (store.hpp: nothing turns a passed triplet or an
// allowed client back), so the answer stays right on every MX host; what the
// shortcut skips is the store's extension of the entry's expiry, which lives
// pass_lifetime (weeks) and is extended by the next call after `remember`.
// Everything else goes to the store behind it: created and early answers,
// peeks, rate-limit counts and every failure. Bounded: at most max_entries
// remembered; when full, what expired goes, and everything when that frees
// less than a quarter. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "state/store.hpp"
#include "util/lock_guarded.hpp"

namespace regmilter::state {

struct PassMemoryOptions {
    int64_t remember = 60;        // seconds an answer is given again without asking; 0: never
    size_t max_entries = 100000;  // remembered answers at most
};

class PassMemory : public Store {
public:
    PassMemory(std::shared_ptr<Store> behind, PassMemoryOptions options);

    GreylistAnswer greylist(const Key& triplet, const Key& client, const GreylistRules& rules, UnixTime now,
                            Mode mode, Deadline deadline) override;
    GreylistAnswer client(const Key& client, const GreylistRules& rules, UnixTime now, Mode mode,
                          Deadline deadline) override;
    CounterAnswer count(const Key& counter, uint64_t n, uint64_t limit, UnixTime expires, UnixTime now,
                        Mode mode, Deadline deadline) override;
    std::string describe() const override { return behind_->describe(); }

    size_t size();
    uint64_t hits();  // answers given without asking the store behind

private:
    struct Remembered {
        UnixTime until = 0;  // given again while now < until
        UnixTime first_seen = 0;
        uint32_t client_passes = 0;
    };
    struct KeyHash {
        size_t operator()(const Key& k) const;
    };
    struct Memory {
        std::unordered_map<Key, Remembered, KeyHash> entries;
        uint64_t hits = 0;
    };
    // What is remembered for `key` at `now`, or null (an expired entry is dropped).
    static const Remembered* given(Memory& m, const Key& key, UnixTime now);
    // A remembered allowed `client` into `a` (counted as a hit); false when none.
    static bool allowed(Memory& m, const Key& client, UnixTime now, GreylistAnswer& a);
    void remember(const Key& key, const GreylistAnswer& a, UnixTime now, UnixTime until);

    const std::shared_ptr<Store> behind_;
    const PassMemoryOptions options_;
    util::LockGuarded<Memory> memory_;
};

}  // namespace regmilter::state
