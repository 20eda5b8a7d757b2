#include "state/pass_memory.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

namespace regmilter::state {

size_t PassMemory::KeyHash::operator()(const Key& k) const {
    // The digest is SHA-256: any 8 of its bytes are as good a hash as any.
    uint64_t h;
    std::memcpy(&h, k.digest.data(), sizeof h);
    return size_t(h ^ uint64_t(k.kind));
}

PassMemory::PassMemory(std::shared_ptr<Store> behind, PassMemoryOptions options)
    : behind_(std::move(behind)), options_(options) {}

const PassMemory::Remembered* PassMemory::given(Memory& m, const Key& key, UnixTime now) {
    auto it = m.entries.find(key);
    if (it == m.entries.end()) return nullptr;
    if (now < it->second.until) return &it->second;
    m.entries.erase(it);
    return nullptr;
}

bool PassMemory::allowed(Memory& m, const Key& client, UnixTime now, GreylistAnswer& a) {
    const Remembered* r = given(m, client, now);
    if (!r) return false;
    m.hits++;
    a.state = TripletState::allowed;
    a.client_passes = r->client_passes;
    return true;
}

GreylistAnswer PassMemory::client(const Key& client, const GreylistRules& rules, UnixTime now, Mode mode,
                                  Deadline deadline) {
    if (mode == Mode::update && options_.remember > 0 && rules.auto_allow > 0) {
        GreylistAnswer a;
        if (allowed(*memory_.lock(), client, now, a)) return a;
    }
    GreylistAnswer a = behind_->client(client, rules, now, mode, deadline);
    if (mode == Mode::update && options_.remember > 0 && a.ok() && a.state == TripletState::allowed)
        remember(client, a, now, now + std::min(options_.remember, rules.pass_lifetime));
    return a;
}

GreylistAnswer PassMemory::greylist(const Key& triplet, const Key& client, const GreylistRules& rules,
                                    UnixTime now, Mode mode, Deadline deadline) {
    if (mode == Mode::update && options_.remember > 0) {
        auto m = memory_.lock();
        // The store's own order: an allowed client first (while auto_allow is on).
        GreylistAnswer a;
        if (rules.auto_allow > 0 && allowed(*m, client, now, a)) return a;
        if (const Remembered* r = given(*m, triplet, now)) {
            m->hits++;
            a.state = TripletState::passed;
            a.first_seen = r->first_seen;
            a.client_passes = r->client_passes;
            return a;
        }
    }
    GreylistAnswer a = behind_->greylist(triplet, client, rules, now, mode, deadline);
    if (mode == Mode::update && options_.remember > 0 && a.ok()) {
        UnixTime until = now + std::min(options_.remember, rules.pass_lifetime);
        if (a.state == TripletState::allowed)
            remember(client, a, now, until);
        else if (a.state == TripletState::passed || a.state == TripletState::passed_now)
            remember(triplet, a, now, until);
    }
    return a;
}

void PassMemory::remember(const Key& key, const GreylistAnswer& a, UnixTime now, UnixTime until) {
    if (options_.max_entries == 0) return;
    auto m = memory_.lock();
    if (m->entries.size() >= options_.max_entries) {
        // One pass drops what expired; when that freed less than a quarter,
        // everything goes, so that a full memory is not walked again at the
        // next insert (the walk stays off the per-message path).
        for (auto it = m->entries.begin(); it != m->entries.end();)
            it = it->second.until <= now ? m->entries.erase(it) : std::next(it);
        if (m->entries.size() >= options_.max_entries - options_.max_entries / 4) m->entries.clear();
    }
    m->entries[key] = Remembered{until, a.first_seen, a.client_passes};
}

CounterAnswer PassMemory::count(const Key& counter, uint64_t n, uint64_t limit, UnixTime expires,
                                UnixTime now, Mode mode, Deadline deadline) {
    return behind_->count(counter, n, limit, expires, now, mode, deadline);
}

size_t PassMemory::size() {
    return memory_.lock()->entries.size();
}

uint64_t PassMemory::hits() {
    return memory_.lock()->hits;
}

}  // namespace regmilter::state
