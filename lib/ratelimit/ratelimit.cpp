// ratelimit: counter keys per window, and the store's count turned into a result.
#include "ratelimit/ratelimit.hpp"

#include <algorithm>

#include "state/network.hpp"

namespace regmilter::ratelimit {

namespace {

int64_t window_of(const Settings& s) {
    return std::max<int64_t>(1, s.window);
}

int64_t window_start(const Settings& s, state::UnixTime now) {
    int64_t w = window_of(s);
    int64_t r = now % w;
    if (r < 0) r += w;
    return now - r;
}

void check_range(std::vector<std::string>& out, const char* key, int64_t v, Range r) {
    if (v < r.min || v > r.max)
        out.push_back(std::string("[ratelimit] ") + key + " = " + std::to_string(v) + " is out of range " +
                      std::to_string(r.min) + ".." + std::to_string(r.max));
}

Result run(state::Store& store, const Settings& s, const net::Address& client, bool registered, Kind kind,
           state::UnixTime now, state::Deadline deadline, uint64_t n, state::Mode mode) {
    Result res;
    res.kind = kind;
    res.registered = registered;
    res.limit = limit_for(s, registered, kind);
    res.window = window_of(s);
    res.network = state::client_network(client, {s.network_v4, s.network_v6});
    if (res.limit == 0) return res;                         // off
    const int64_t end = window_start(s, now) + res.window;  // first second of the next window
    state::CounterAnswer a = store.count(counter_key(s, client, registered, kind, now), n, res.limit, end - 1,
                                         now, mode, deadline);
    res.store = static_cast<const state::Outcome&>(a);
    if (!res.store.ok()) {
        res.outcome = Outcome::error;
        return res;
    }
    res.count = a.value;
    res.outcome = a.admitted ? Outcome::pass : Outcome::limited;
    if (!a.admitted) res.retry_after = end - now;
    return res;
}

}  // namespace

std::vector<std::string> check_settings(const Settings& s) {
    std::vector<std::string> out;
    check_range(out, "window", s.window, window_range);
    auto limit = [&](const char* key, uint64_t v) {
        if (v > uint64_t(limit_range.max))
            out.push_back(std::string("[ratelimit] ") + key + " = " + std::to_string(v) +
                          " is out of range 0.." + std::to_string(limit_range.max));
    };
    limit("registered_messages", s.registered_messages);
    limit("registered_recipients", s.registered_recipients);
    limit("unregistered_messages", s.unregistered_messages);
    limit("unregistered_recipients", s.unregistered_recipients);
    return out;
}

const char* to_string(Kind k) {
    return k == Kind::messages ? "messages" : "recipients";
}

uint64_t limit_for(const Settings& s, bool registered, Kind kind) {
    if (registered) return kind == Kind::messages ? s.registered_messages : s.registered_recipients;
    return kind == Kind::messages ? s.unregistered_messages : s.unregistered_recipients;
}

const char* to_string(Outcome o) {
    switch (o) {
        case Outcome::off:
            return "off";
        case Outcome::pass:
            return "pass";
        case Outcome::limited:
            return "limited";
        case Outcome::error:
            return "error";
    }
    return "error";
}

state::Key counter_key(const Settings& s, const net::Address& client, bool registered, Kind kind,
                       state::UnixTime now) {
    std::string text = "ratelimit\n";
    text += registered ? "registered\n" : "unregistered\n";
    text += to_string(kind);
    text += '\n';
    text += state::client_network(client, {s.network_v4, s.network_v6}).str();
    text += '\n' + std::to_string(window_of(s)) + '\n' + std::to_string(window_start(s, now)) + '\n';
    return state::Key::of(state::KeyKind::counter, text);
}

Result count(state::Store& store, const Settings& s, const net::Address& client, bool registered, Kind kind,
             state::UnixTime now, state::Deadline deadline, uint64_t n) {
    return run(store, s, client, registered, kind, now, deadline, n, state::Mode::update);
}

Result peek(state::Store& store, const Settings& s, const net::Address& client, bool registered, Kind kind,
            state::UnixTime now, state::Deadline deadline, uint64_t n) {
    return run(store, s, client, registered, kind, now, deadline, n, state::Mode::peek);
}

std::string reply_text(const Result& r) {
    return "rate limit: " + std::to_string(r.limit) + " " + to_string(r.kind) + " per " +
           std::to_string(r.window) + " s for " + r.network.str();
}

}  // namespace regmilter::ratelimit
