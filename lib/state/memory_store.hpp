// state: MemoryStore, the embedded Store for a single host. A hash table of
// at most max_entries entries: when full, the entry that expires soonest is
// dropped (passed triplets, kept for weeks, outlive pending ones and rate
// counters); expired entries go as calls pass by and on purge(). A snapshot
// file keeps everything (pending and passed triplets, client counts, rate
// counters) across a restart: save() writes a temporary file and renames it,
// load() takes all of a file or none of it. Calls never fail (Status::ok) and
// never wait except for the one lock. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "state/store.hpp"
#include "util/lock_guarded.hpp"

namespace regmilter::state {

struct MemoryOptions {
    size_t max_entries = 1000000;  // 0 = remember nothing
};

// The result of save() or load().
struct SnapshotResult {
    enum class Status {
        ok,         // written / read completely
        missing,    // load: the file does not exist (a first start); the store is unchanged
        malformed,  // load: refused at file:line; the store is unchanged
        io_error,   // cannot read, write, sync or rename (message says which and why)
    };
    Status status = Status::ok;
    size_t entries = 0;  // entries written, or loaded
    size_t expired = 0;  // load: entries skipped because they had expired
    std::string file;
    int line = 0;         // malformed: the line at fault (1-based); otherwise 0
    std::string message;  // why, when status != ok
    // "FILE:LINE: message", or "FILE: message" when line is 0.
    std::string str() const;
};

class MemoryStore : public Store {
public:
    explicit MemoryStore(MemoryOptions options = {});

    GreylistAnswer greylist(const Key& triplet, const Key& client, const GreylistRules& rules, UnixTime now,
                            Mode mode, Deadline deadline) override;
    GreylistAnswer client(const Key& client, const GreylistRules& rules, UnixTime now, Mode mode,
                          Deadline deadline) override;
    CounterAnswer count(const Key& counter, uint64_t n, uint64_t limit, UnixTime expires, UnixTime now,
                        Mode mode, Deadline deadline) override;
    std::string describe() const override { return "memory"; }

    size_t size();
    uint64_t evictions();  // entries dropped to stay within max_entries (not expiries)
    // Drops every entry that expired before `now`; returns how many.
    size_t purge(UnixTime now);

    // Replaces the content with `other`'s unexpired entries (as many as
    // max_entries allows: the soonest-expiring go first); returns how many
    // were kept. For a reload that changes max_entries.
    size_t adopt(MemoryStore& other, UnixTime now);

    // Writes every unexpired entry to PATH.tmp.PID (mode 0600), syncs it and
    // renames it to `path`. The lock is held only while the entries are copied.
    SnapshotResult save(const std::string& path, UnixTime now);
    // Replaces the content with the file's unexpired entries; on any problem
    // (missing, malformed, unreadable) the store is left as it was.
    SnapshotResult load(const std::string& path, UnixTime now);

    // Snapshot format, version 1 (text; '#' comment lines and blank lines are ignored):
    //   regmilter-state 1                      the first line
    //   t KEY FIRST_SEEN PASSED_AT EXPIRES     a triplet; PASSED_AT 0 = pending
    //   c KEY PASSES EXPIRES                   a client network's passed-triplet count
    //   r KEY VALUE EXPIRES                    a rate-limit counter
    //   end COUNT                              the last line; COUNT = number of records
    // KEY is Key::hex(); times are unix seconds; numbers are decimal, 0..2^63-1
    // (PASSED_AT below 2^32). Lines are at most 255 bytes.

private:
    // One remembered fact. For a triplet `a` is first_seen and `b` passed_at
    // (0 = pending); for a client `a` is the count; for a counter `a` is the value.
    struct Entry {
        int64_t expires = 0;  // absent once now > expires
        int64_t a = 0;
        uint32_t b = 0;
        uint32_t heap_pos = 0;  // index in Table::heap_
    };
    struct KeyHash {
        size_t operator()(const Key& k) const noexcept;
    };

    // The entries, and a binary min-heap on `expires` over them (for expiry
    // and for eviction of the soonest-expiring entry when full).
    class Table {
    public:
        using Map = std::unordered_map<Key, Entry, KeyHash>;
        using Node = Map::value_type;

        explicit Table(size_t max_entries) : max_(max_entries) {}
        // The entry, or null when absent; an expired entry is dropped on the way.
        Entry* find(const Key& k, UnixTime now);
        // Adds an entry for a key that find() said is absent (may evict
        // first); false, and nothing added, when the key is there already.
        bool add(const Key& k, int64_t expires, int64_t a, uint32_t b);
        void set_expires(Entry& e, int64_t expires);
        size_t purge(UnixTime now, size_t limit);
        void reserve(size_t n) {
            map_.reserve(n);
            heap_.reserve(n);
        }
        size_t size() const { return map_.size(); }
        uint64_t evictions() const { return evictions_; }
        const Map& entries() const { return map_; }

    private:
        void erase(Node* n);
        void sift_up(size_t i);
        void sift_down(size_t i);
        void place(size_t i, Node* n);

        size_t max_;
        Map map_;
        std::vector<Node*> heap_;  // nodes of an unordered_map do not move on rehash
        uint64_t evictions_ = 0;
    };

    static Entry* client_step(Table& t, const Key& client, const GreylistRules& rules, UnixTime now,
                              bool update, GreylistAnswer& ans);

    const MemoryOptions options_;
    util::LockGuarded<Table> table_;
};

}  // namespace regmilter::state
