// state: MemoryStore — the greylisting and rate-limit steps of store.hpp on an
// in-process table with an expiry heap.
#include "state/memory_store.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

namespace regmilter::state {

namespace {

// Expired entries dropped per update call, so that memory follows the clock
// without a sweep; purge() drops them all.
constexpr size_t purge_per_call = 8;

// Passed-at times are kept in 32 bits (unix seconds until 2106).
uint32_t to_u32(int64_t t) {
    return uint32_t(std::clamp<int64_t>(t, 1, std::numeric_limits<uint32_t>::max()));
}

}  // namespace

size_t MemoryStore::KeyHash::operator()(const Key& k) const noexcept {
    uint64_t h;
    std::memcpy(&h, k.digest.data(), sizeof h);  // a digest: already uniform
    return size_t(h ^ uint8_t(k.kind));
}

// ---- Table -------------------------------------------------------------------

MemoryStore::Entry* MemoryStore::Table::find(const Key& k, UnixTime now) {
    auto it = map_.find(k);
    if (it == map_.end()) return nullptr;
    if (it->second.expires < now) {
        erase(&*it);
        return nullptr;
    }
    return &it->second;
}

bool MemoryStore::Table::add(const Key& k, int64_t expires, int64_t a, uint32_t b) {
    if (max_ == 0) return true;
    while (map_.size() >= max_ && !heap_.empty()) {
        erase(heap_.front());
        ++evictions_;
    }
    auto [it, inserted] = map_.emplace(k, Entry{expires, a, b, 0});
    if (!inserted) return false;
    heap_.push_back(&*it);
    it->second.heap_pos = uint32_t(heap_.size() - 1);
    sift_up(heap_.size() - 1);
    return true;
}

void MemoryStore::Table::set_expires(Entry& e, int64_t expires) {
    int64_t old = e.expires;
    e.expires = expires;
    if (expires < old)
        sift_up(e.heap_pos);
    else
        sift_down(e.heap_pos);
}

size_t MemoryStore::Table::purge(UnixTime now, size_t limit) {
    size_t n = 0;
    while (n < limit && !heap_.empty() && heap_.front()->second.expires < now) {
        erase(heap_.front());
        ++n;
    }
    return n;
}

void MemoryStore::Table::erase(Node* n) {
    size_t i = n->second.heap_pos;
    Node* last = heap_.back();
    heap_.pop_back();
    if (last != n) {
        place(i, last);
        sift_up(i);
        sift_down(last->second.heap_pos);
    }
    Key k = n->first;  // not a reference into the node being erased
    map_.erase(k);
}

void MemoryStore::Table::place(size_t i, Node* n) {
    heap_[i] = n;
    n->second.heap_pos = uint32_t(i);
}

void MemoryStore::Table::sift_up(size_t i) {
    Node* n = heap_[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (heap_[parent]->second.expires <= n->second.expires) break;
        place(i, heap_[parent]);
        i = parent;
    }
    place(i, n);
}

void MemoryStore::Table::sift_down(size_t i) {
    Node* n = heap_[i];
    const size_t size = heap_.size();
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= size) break;
        if (child + 1 < size && heap_[child + 1]->second.expires < heap_[child]->second.expires) ++child;
        if (heap_[child]->second.expires >= n->second.expires) break;
        place(i, heap_[child]);
        i = child;
    }
    place(i, n);
}

// ---- MemoryStore ----------------------------------------------------------------

MemoryStore::MemoryStore(MemoryOptions options) : options_(options), table_(options.max_entries) {}

size_t MemoryStore::size() {
    return table_.lock()->size();
}
uint64_t MemoryStore::evictions() {
    return table_.lock()->evictions();
}
size_t MemoryStore::purge(UnixTime now) {
    return table_.lock()->purge(now, std::numeric_limits<size_t>::max());
}

// Step 1: the client network's count into `ans`; auto_allow. The client's
// entry, or null when it has none.
MemoryStore::Entry* MemoryStore::client_step(Table& t, const Key& client, const GreylistRules& rules,
                                             UnixTime now, bool update, GreylistAnswer& ans) {
    Entry* c = t.find(client, now);
    const int64_t n = c ? c->a : 0;
    ans.client_passes = uint32_t(std::min<int64_t>(n, std::numeric_limits<uint32_t>::max()));
    if (rules.auto_allow > 0 && n >= int64_t(rules.auto_allow)) {
        if (update) t.set_expires(*c, now + rules.pass_lifetime);
        ans.state = TripletState::allowed;
    }
    return c;
}

GreylistAnswer MemoryStore::client(const Key& client, const GreylistRules& rules, UnixTime now, Mode mode,
                                   Deadline) {
    GreylistAnswer ans;
    auto t = table_.lock();
    client_step(*t, client, rules, now, mode == Mode::update, ans);
    return ans;
}

GreylistAnswer MemoryStore::greylist(const Key& triplet, const Key& client, const GreylistRules& rules,
                                     UnixTime now, Mode mode, Deadline) {
    const bool update = mode == Mode::update;
    GreylistAnswer ans;
    auto t = table_.lock();
    if (update) t->purge(now, purge_per_call);

    Entry* c = client_step(*t, client, rules, now, update, ans);
    const int64_t n = c ? c->a : 0;
    if (ans.state == TripletState::allowed) return ans;
    Entry* e = t->find(triplet, now);
    if (!e) {  // step 2
        ans.state = TripletState::created;
        ans.first_seen = now;
        if (update) t->add(triplet, now + rules.retry_window, now, 0);
        return ans;
    }
    ans.first_seen = e->a;
    if (e->b != 0) {  // step 5
        ans.state = TripletState::passed;
        if (update) t->set_expires(*e, now + rules.pass_lifetime);
        return ans;
    }
    if (now - e->a < rules.delay) {  // step 3
        ans.state = TripletState::early;
        return ans;
    }
    // Step 4. add() may evict, so it comes last and no pointer is used after it.
    ans.state = TripletState::passed_now;
    ans.client_passes = uint32_t(std::min<int64_t>(n + 1, std::numeric_limits<uint32_t>::max()));
    if (update) {
        e->b = to_u32(now);
        t->set_expires(*e, now + rules.pass_lifetime);
        if (c) {
            c->a = n + 1;
            t->set_expires(*c, now + rules.pass_lifetime);
        } else {
            t->add(client, now + rules.pass_lifetime, n + 1, 0);
        }
    }
    return ans;
}

CounterAnswer MemoryStore::count(const Key& counter, uint64_t n, uint64_t limit, UnixTime expires,
                                 UnixTime now, Mode mode, Deadline) {
    CounterAnswer ans;
    auto t = table_.lock();
    if (mode == Mode::update) t->purge(now, purge_per_call);
    Entry* e = t->find(counter, now);
    const uint64_t v = e ? uint64_t(e->a) : 0;
    const uint64_t limit_max = uint64_t(std::numeric_limits<int64_t>::max());
    ans.value = n > limit_max - v ? limit_max : v + n;
    if (limit > 0 && ans.value > limit) {
        ans.admitted = false;
        return ans;
    }
    if (mode == Mode::update) {
        if (e) {
            e->a = int64_t(ans.value);
            t->set_expires(*e, expires);
        } else {
            t->add(counter, expires, int64_t(ans.value), 0);
        }
    }
    return ans;
}

size_t MemoryStore::adopt(MemoryStore& other, UnixTime now) {
    if (&other == this) return size();
    std::vector<std::pair<Key, Entry>> copy;
    {
        auto t = other.table_.lock();
        copy.reserve(t->size());
        for (const auto& [k, e] : t->entries())
            if (e.expires >= now) copy.emplace_back(k, e);
    }
    Table table(options_.max_entries);
    table.reserve(std::min(copy.size(), options_.max_entries));
    for (const auto& [k, e] : copy) table.add(k, e.expires, e.a, e.b);
    size_t kept = table.size();
    *table_.lock() = std::move(table);
    return kept;
}

}  // namespace regmilter::state
