// greylist and ratelimit over a MemoryStore with an injected clock: the delay
// and window boundaries with the seconds to wait, auto_allow, network grouping
// (v4, v6, IPv4-mapped), hostile addresses, settings checks, rate limits N /
// N+1 and the window roll-over, and store errors passed through as values.
#include <catch2/catch.hpp>

#include "greylist/greylist.hpp"
#include "ratelimit/ratelimit.hpp"
#include "state/memory_store.hpp"

using namespace regmilter;

namespace {

constexpr state::UnixTime T0 = 1700000000;

state::Deadline soon() {
    return state::deadline_in(std::chrono::seconds(5));
}

net::Address ip(const char* text) {
    auto a = net::Address::parse(text);
    REQUIRE(a);
    return *a;
}

// "new wait=300", "early wait=1", "passed", "allowed", "error"
std::string show(const greylist::Result& r) {
    std::string s = greylist::to_string(r.outcome);
    if (r.delays()) s += " wait=" + std::to_string(r.wait);
    return s;
}

// A store that fails every call the same way, and counts the calls.
class FailingStore : public state::Store {
public:
    int calls = 0;
    state::GreylistAnswer greylist(const state::Key&, const state::Key&, const state::GreylistRules&,
                                   state::UnixTime, state::Mode, state::Deadline) override {
        ++calls;
        state::GreylistAnswer a;
        fail(a);
        return a;
    }
    state::CounterAnswer count(const state::Key&, uint64_t, uint64_t, state::UnixTime, state::UnixTime,
                               state::Mode, state::Deadline) override {
        ++calls;
        state::CounterAnswer a;
        fail(a);
        return a;
    }
    std::string describe() const override { return "failing"; }

private:
    void fail(state::Outcome& o) {
        o.status = state::Status::timeout;
        o.reason = "failing did not answer within 200 ms";
        o.event = calls == 1 ? state::Event::outage_began : state::Event::none;
    }
};

}  // namespace

TEST_CASE("greylist: delay and retry_window boundaries, with the seconds to wait", "[greylist]") {
    greylist::Settings s;  // delay 300, retry_window 14400
    struct Step {
        int64_t at;
        const char* want;
    };
    struct Case {
        const char* name;
        std::vector<Step> steps;
    };
    const std::vector<Case> cases = {
        {"first attempt, delay-1, delay",
         {{0, "new wait=300"},
          {1, "early wait=299"},
          {299, "early wait=1"},
          {300, "passed"},
          {301, "passed"}}},
        {"the window's end passes", {{0, "new wait=300"}, {14400, "passed"}}},
        {"window+1 is new again",
         {{0, "new wait=300"}, {14401, "new wait=300"}, {14700, "early wait=1"}, {14701, "passed"}}},
        {"a passed triplet is remembered",
         {{0, "new wait=300"}, {300, "passed"}, {300 + 36 * 86400, "passed"}}},
        {"... and forgotten after pass_lifetime unused",
         {{0, "new wait=300"}, {300, "passed"}, {301 + 36 * 86400, "new wait=300"}}},
    };
    for (const auto& c : cases) {
        state::MemoryStore store;
        greylist::Request r{ip("198.51.100.7"), "alice@example.com", "bob@example.net"};
        for (const auto& step : c.steps) {
            INFO(c.name << " at +" << step.at);
            auto res = greylist::check(store, s, r, T0 + step.at, soon());
            CHECK(show(res) == step.want);
            CHECK(res.store.ok());
            CHECK(res.network.str() == "198.51.100.0/24");
        }
    }
}

TEST_CASE("greylist: peek says what check would, and changes nothing", "[greylist]") {
    state::MemoryStore store;
    greylist::Settings s;
    greylist::Request r{ip("198.51.100.7"), "a@example.com", "b@example.net"};
    CHECK(show(greylist::peek(store, s, r, T0, soon())) == "new wait=300");
    CHECK(store.size() == 0);
    CHECK(show(greylist::check(store, s, r, T0, soon())) == "new wait=300");
    CHECK(show(greylist::peek(store, s, r, T0 + 300, soon())) == "passed");
    CHECK(show(greylist::peek(store, s, r, T0 + 100, soon())) == "early wait=200");
}

TEST_CASE("greylist: auto_allow = N lets the network through from its N-th passed triplet on", "[greylist]") {
    state::MemoryStore store;
    greylist::Settings s;
    s.auto_allow = 2;
    // Two hosts of one /24 and their triplets all count for 198.51.100.0/24.
    greylist::Request a{ip("198.51.100.7"), "a@example.com", "x@example.net"};
    greylist::Request b{ip("198.51.100.8"), "b@example.com", "y@example.net"};
    greylist::Request c{ip("198.51.100.9"), "c@example.com", "z@example.net"};
    greylist::Request other{ip("198.51.101.9"), "c@example.com", "z@example.net"};
    CHECK(show(greylist::check(store, s, a, T0, soon())) == "new wait=300");
    CHECK(show(greylist::check(store, s, b, T0, soon())) == "new wait=300");
    auto first = greylist::check(store, s, a, T0 + 300, soon());
    CHECK(show(first) == "passed");
    CHECK(first.client_passes == 1);
    CHECK(show(greylist::check(store, s, c, T0 + 301, soon())) == "new wait=300");  // one pass is not enough
    auto second = greylist::check(store, s, b, T0 + 302, soon());
    CHECK(show(second) == "passed");  // the N-th passed triplet ...
    CHECK(second.client_passes == 2);
    CHECK(show(greylist::check(store, s, c, T0 + 303, soon())) == "allowed");  // ... and from then on
    CHECK(show(greylist::check(store, s, other, T0 + 303, soon())) == "new wait=300");
}

TEST_CASE("greylist: clients are grouped by network, v4 and v6; IPv4-mapped is IPv4", "[greylist]") {
    struct Case {
        const char* a;
        const char* b;
        int v4, v6;
        bool same;
        const char* network_of_a;
    };
    const std::vector<Case> cases = {
        {"198.51.100.7", "198.51.100.250", 24, 64, true, "198.51.100.0/24"},
        {"198.51.100.7", "198.51.101.7", 24, 64, false, "198.51.100.0/24"},
        {"198.51.100.7", "198.51.100.8", 32, 64, false, "198.51.100.7/32"},
        {"198.51.100.7", "198.51.100.135", 25, 64, false, "198.51.100.0/25"},
        {"198.51.100.7", "198.51.100.127", 25, 64, true, "198.51.100.0/25"},
        {"::ffff:198.51.100.9", "198.51.100.7", 24, 64, true, "198.51.100.0/24"},
        {"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", 24, 64, true, "2001:db8:1:2::/64"},
        {"2001:db8:1:2::1", "2001:db8:1:3::1", 24, 64, false, "2001:db8:1:2::/64"},
        {"2001:db8:1:2::1", "2001:db8:1:3::1", 24, 48, true, "2001:db8:1::/48"},
        {"2001:db8:1:2::1", "2001:db8:1:2::2", 24, 128, false, "2001:db8:1:2::1/128"},
        {"2001:db8:1:2::1", "2001:db8:1:2:8000::1", 24, 65, false, "2001:db8:1:2::/65"},
        {"198.51.100.7", "::ffff:198.51.100.7", 32, 128, true, "198.51.100.7/32"},
        {"0.0.0.7", "::7", 24, 64, false, "0.0.0.0/24"},  // families never mix
    };
    for (const auto& c : cases) {
        INFO(c.a << " vs " << c.b << " at /" << c.v4 << " /" << c.v6);
        greylist::Settings s;
        s.network_v4 = c.v4;
        s.network_v6 = c.v6;
        greylist::Request ra{ip(c.a), "s@example.com", "r@example.net"};
        greylist::Request rb{ip(c.b), "s@example.com", "r@example.net"};
        CHECK((greylist::triplet_key(s, ra) == greylist::triplet_key(s, rb)) == c.same);
        CHECK((greylist::client_key(s, ra.client) == greylist::client_key(s, rb.client)) == c.same);
        state::MemoryStore store;
        auto first = greylist::check(store, s, ra, T0, soon());
        CHECK(first.network.str() == c.network_of_a);
        CHECK(show(greylist::check(store, s, rb, T0 + 1, soon())) ==
              (c.same ? "early wait=299" : "new wait=300"));
    }
}

TEST_CASE("greylist: addresses of any bytes and length give distinct bounded keys", "[greylist]") {
    greylist::Settings s;
    const net::Address client = ip("198.51.100.7");
    const std::string huge(10 * 1024, 'a');
    const std::string nul("bob\0@example.net", 17);
    const std::vector<std::pair<std::string, std::string>> distinct = {
        {"alice@example.com", "bob@example.net"},
        {"", "bob@example.net"},       // null sender
        {"alice@example.com", nul},    // NUL
        {"alice@example.com", "bob"},  // what the NUL would cut to
        {"ab", "c"},                   // the split between the two
        {"a", "bc"},                   // ... matters
        {huge, "bob@example.net"},     // 10 kB
        {huge + "b", "bob@example.net"},
        {"\xff\xfe@\x80\x81", "b\xc3\xa9@example.net"},  // 8-bit
        {"alice@example.com\nbob@example.net", ""},      // a newline inside
        {"alice@example.com", "\nbob@example.net"},
    };
    std::vector<state::Key> keys;
    for (const auto& [from, to] : distinct) {
        state::Key k = greylist::triplet_key(s, {client, from, to});
        CHECK(k.text().size() == 34);
        for (const auto& other : keys) CHECK_FALSE(other == k);
        keys.push_back(k);
        state::MemoryStore store;
        CHECK(show(greylist::check(store, s, {client, from, to}, T0, soon())) == "new wait=300");
    }
    // Case is folded in ASCII only; one pair of <> is not part of the address.
    auto key = [&](const char* f, const char* t) { return greylist::triplet_key(s, {client, f, t}); };
    CHECK(key("Alice@Example.COM", "<BOB@example.net>") == key("alice@example.com", "bob@example.net"));
    CHECK_FALSE(key("\xc3\x89@example.com", "b") == key("\xc3\xa9@example.com", "b"));
    CHECK_FALSE(key("<<a>>", "b") == key("a", "b"));
}

TEST_CASE("greylist: settings out of range or a window not longer than the delay", "[greylist]") {
    greylist::Settings s;
    CHECK(greylist::check_settings(s).empty());
    s.delay = 0;
    s.network_v4 = 33;
    s.auto_allow = 1001;
    auto problems = greylist::check_settings(s);
    REQUIRE(problems.size() == 3);
    CHECK(problems[0] == "[greylist] delay = 0 is out of range 1..86400");
    CHECK(problems[1] == "[greylist] network_v4 = 33 is out of range 8..32");
    CHECK(problems[2] == "[greylist] auto_allow = 1001 is out of range 0..1000");
    greylist::Settings w;
    w.delay = 600;
    w.retry_window = 600;
    problems = greylist::check_settings(w);
    REQUIRE(problems.size() == 1);
    CHECK_THAT(problems[0], Catch::Contains("retry_window (600) must be longer than delay (600)"));
}

TEST_CASE("greylist: the reply says greylisted and the seconds to wait", "[greylist]") {
    greylist::Result r;
    r.outcome = greylist::Outcome::early;
    r.wait = 120;
    CHECK(greylist::reply_text(r) == "greylisted, please retry in 120 seconds");
    r.wait = 1;
    CHECK(greylist::reply_text(r) == "greylisted, please retry in 1 second");
    CHECK(std::string(greylist::to_string(greylist::Outcome::new_)) == "new");
}

TEST_CASE("greylist and ratelimit: a failing store is an error outcome with its reason and event",
          "[greylist]") {
    FailingStore store;
    auto g = greylist::check(store, greylist::Settings{}, {ip("192.0.2.1"), "a@b", "c@d"}, T0, soon());
    CHECK(g.outcome == greylist::Outcome::error);
    CHECK(g.store.status == state::Status::timeout);
    CHECK(g.store.reason == "failing did not answer within 200 ms");
    CHECK(g.store.event == state::Event::outage_began);
    CHECK_FALSE(g.delays());
    ratelimit::Settings rs;
    rs.unregistered_messages = 10;
    auto r = ratelimit::count(store, rs, ip("192.0.2.1"), false, ratelimit::Kind::messages, T0, soon());
    CHECK(r.outcome == ratelimit::Outcome::error);
    CHECK(r.store.status == state::Status::timeout);
    CHECK(r.store.event == state::Event::none);
    CHECK(store.calls == 2);
}

TEST_CASE("ratelimit: a limit of N lets N through per window and refuses the N+1-th", "[ratelimit]") {
    ratelimit::Settings s;
    s.window = 3600;
    s.unregistered_messages = 3;
    s.unregistered_recipients = 5;
    s.registered_messages = 0;  // no limit
    s.registered_recipients = 1;
    state::MemoryStore store;
    const net::Address a = ip("198.51.100.7"), b = ip("198.51.100.77");
    const state::UnixTime start = T0 - T0 % 3600;  // a window's first second
    auto msg = [&](const net::Address& c, bool reg, state::UnixTime at) {
        auto r = ratelimit::count(store, s, c, reg, ratelimit::Kind::messages, at, soon());
        return std::string(ratelimit::to_string(r.outcome)) + " " + std::to_string(r.count);
    };
    CHECK(msg(a, false, start) == "pass 1");
    CHECK(msg(b, false, start + 1) == "pass 2");  // the same /24
    CHECK(msg(a, false, start + 2) == "pass 3");
    CHECK(msg(b, false, start + 3) == "limited 4");
    CHECK(msg(a, false, start + 3599) == "limited 4");  // the window's last second; refusals not counted
    CHECK(msg(a, false, start + 3600) == "pass 1");     // the next window
    CHECK(msg(a, true, start + 3600) == "off 0");       // registered: no limit
    CHECK(store.size() == 1);  // this window's counter: the last one expired, registered is not stored

    auto rcpt = [&](bool reg, uint64_t n) {
        auto r = ratelimit::count(store, s, a, reg, ratelimit::Kind::recipients, start + 10, soon(), n);
        return std::string(ratelimit::to_string(r.outcome)) + " " + std::to_string(r.count);
    };
    CHECK(rcpt(false, 4) == "pass 4");
    CHECK(rcpt(false, 2) == "limited 6");
    CHECK(rcpt(false, 1) == "pass 5");
    CHECK(rcpt(true, 1) == "pass 1");  // registered counts apart
    CHECK(rcpt(true, 1) == "limited 2");

    auto limited = ratelimit::count(store, s, a, false, ratelimit::Kind::recipients, start + 10, soon());
    CHECK(limited.outcome == ratelimit::Outcome::limited);
    CHECK(limited.retry_after == 3590);
    CHECK(ratelimit::reply_text(limited) == "rate limit: 5 recipients per 3600 s for 198.51.100.0/24");
    auto peeked = ratelimit::peek(store, s, a, false, ratelimit::Kind::messages, start + 3600, soon());
    CHECK(peeked.outcome == ratelimit::Outcome::pass);
    CHECK(peeked.count == 2);
    CHECK(ratelimit::peek(store, s, a, false, ratelimit::Kind::messages, start + 3600, soon()).count == 2);
}

TEST_CASE("ratelimit: IPv6 networks, limit 0 never asks the store, settings ranges", "[ratelimit]") {
    ratelimit::Settings s;
    s.unregistered_messages = 100;
    state::MemoryStore store;
    auto r = ratelimit::count(store, s, ip("2001:db8:1:2::7"), false, ratelimit::Kind::messages, T0, soon());
    CHECK(r.outcome == ratelimit::Outcome::pass);
    r.limit = 100;
    CHECK(ratelimit::reply_text(r) == "rate limit: 100 messages per 3600 s for 2001:db8:1:2::/64");
    FailingStore failing;
    auto off = ratelimit::count(failing, s, ip("192.0.2.1"), true, ratelimit::Kind::recipients, T0, soon());
    CHECK(off.outcome == ratelimit::Outcome::off);
    CHECK(failing.calls == 0);
    CHECK(ratelimit::check_settings(s).empty());
    s.window = 0;
    s.registered_recipients = 2000000000;
    auto problems = ratelimit::check_settings(s);
    REQUIRE(problems.size() == 2);
    CHECK(problems[0] == "[ratelimit] window = 0 is out of range 1..604800");
    CHECK(problems[1] == "[ratelimit] registered_recipients = 2000000000 is out of range 0..1000000000");
}
