// greylist: triplet keys, and the store's answer turned into a result.
#include "greylist/greylist.hpp"

#include <algorithm>

#include "state/network.hpp"

namespace regmilter::greylist {

namespace {

state::NetworkPrefixes prefixes_of(const Settings& s) {
    return {s.network_v4, s.network_v6};
}

// An envelope address as hashed: one pair of <> removed, A-Z folded (other
// bytes as they are), prefixed by its length so that no two (sender,
// recipient) pairs give the same text.
void append_address(std::string& out, std::string_view a) {
    if (a.size() >= 2 && a.front() == '<' && a.back() == '>') a = a.substr(1, a.size() - 2);
    out += std::to_string(a.size());
    out += ':';
    for (char c : a) out += (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
    out += '\n';
}

void check_range(std::vector<std::string>& out, const char* key, int64_t v, Range r) {
    if (v < r.min || v > r.max)
        out.push_back(std::string("[greylist] ") + key + " = " + std::to_string(v) + " is out of range " +
                      std::to_string(r.min) + ".." + std::to_string(r.max));
}

state::Key triplet_key_in(const std::string& network, const Request& r) {
    std::string text;
    text.reserve(40 + network.size() + r.sender.size() + r.recipient.size());
    text.append("greylist-triplet\n").append(network).append("\n");
    append_address(text, r.sender);
    append_address(text, r.recipient);
    return state::Key::of(state::KeyKind::triplet, text);
}

state::Key client_key_in(const std::string& network) {
    return state::Key::of(state::KeyKind::client, "greylist-client\n" + network + "\n");
}

Result run(state::Store& store, const Settings& s, const Request& r, state::UnixTime now,
           state::Deadline deadline, state::Mode mode) {
    Result res;
    res.network = state::client_network(r.client, prefixes_of(s));
    const std::string network = res.network.str();
    state::GreylistAnswer a =
        store.greylist(triplet_key_in(network, r), client_key_in(network), rules_of(s), now, mode, deadline);
    res.client_passes = a.client_passes;
    res.store = static_cast<const state::Outcome&>(a);
    if (!res.store.ok()) {
        res.outcome = Outcome::error;
        return res;
    }
    switch (a.state) {
        case state::TripletState::created:
            res.outcome = Outcome::new_;
            res.wait = std::max<int64_t>(1, s.delay);
            break;
        case state::TripletState::early:
            res.outcome = Outcome::early;
            res.wait = std::max<int64_t>(1, a.first_seen + s.delay - now);
            break;
        case state::TripletState::passed_now:
        case state::TripletState::passed:
            res.outcome = Outcome::passed;
            break;
        case state::TripletState::allowed:
            res.outcome = Outcome::allowed;
            break;
    }
    return res;
}

}  // namespace

std::vector<std::string> check_settings(const Settings& s) {
    std::vector<std::string> out;
    check_range(out, "delay", s.delay, delay_range);
    check_range(out, "retry_window", s.retry_window, retry_window_range);
    check_range(out, "pass_lifetime", s.pass_lifetime, pass_lifetime_range);
    check_range(out, "network_v4", s.network_v4, network_v4_range);
    check_range(out, "network_v6", s.network_v6, network_v6_range);
    check_range(out, "auto_allow", s.auto_allow, auto_allow_range);
    if (s.retry_window <= s.delay)
        out.push_back("[greylist] retry_window (" + std::to_string(s.retry_window) +
                      ") must be longer than delay (" + std::to_string(s.delay) +
                      "), or no retry could ever pass");
    return out;
}

state::GreylistRules rules_of(const Settings& s) {
    state::GreylistRules g;
    g.delay = s.delay;
    g.retry_window = s.retry_window;
    g.pass_lifetime = s.pass_lifetime;
    g.auto_allow = s.auto_allow;
    return g;
}

state::Key triplet_key(const Settings& s, const Request& r) {
    return triplet_key_in(state::client_network(r.client, prefixes_of(s)).str(), r);
}

state::Key client_key(const Settings& s, const net::Address& client) {
    return client_key_in(state::client_network(client, prefixes_of(s)).str());
}

const char* to_string(Outcome o) {
    switch (o) {
        case Outcome::new_:
            return "new";
        case Outcome::early:
            return "early";
        case Outcome::passed:
            return "passed";
        case Outcome::allowed:
            return "allowed";
        case Outcome::error:
            return "error";
    }
    return "error";
}

Result check(state::Store& store, const Settings& s, const Request& r, state::UnixTime now,
             state::Deadline deadline) {
    return run(store, s, r, now, deadline, state::Mode::update);
}

Result peek(state::Store& store, const Settings& s, const Request& r, state::UnixTime now,
            state::Deadline deadline) {
    return run(store, s, r, now, deadline, state::Mode::peek);
}

std::optional<Result> check_client(state::Store& store, const Settings& s, const net::Address& client,
                                   state::UnixTime now, state::Deadline deadline, state::Mode mode,
                                   state::Outcome& store_outcome) {
    if (s.auto_allow == 0) return std::nullopt;
    Result res;
    res.network = state::client_network(client, prefixes_of(s));
    state::GreylistAnswer a =
        store.client(client_key_in(res.network.str()), rules_of(s), now, mode, deadline);
    store_outcome = static_cast<const state::Outcome&>(a);
    if (!a.ok() || a.state != state::TripletState::allowed) return std::nullopt;
    res.outcome = Outcome::allowed;
    res.client_passes = a.client_passes;
    return res;
}

std::string reply_text(const Result& r) {
    return "greylisted, please retry in " + std::to_string(r.wait) + (r.wait == 1 ? " second" : " seconds");
}

}  // namespace regmilter::greylist
