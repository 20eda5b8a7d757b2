// policy::Session with greylisting and rate limits: who is greylisted (an
// unregistered or listed client whose zone says greylist; never a trusted,
// authenticated or registered one), the delay and window boundaries through
// the Session with an injected clock, enforce_after and observe mode, the
// rate limits of each class at MAIL FROM and RCPT TO, a failing store under
// [state] on_error with one notice per outage, decision lines that never name
// the store, and a store that outlives a new Runtime. Over a strict
// MemoryResolver and a MemoryStore.
#include <catch2/catch.hpp>

#include "../support/config_fixture.hpp"
#include "../support/session_fixture.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "policy/replies.hpp"
#include "policy/report.hpp"
#include "policy/session.hpp"
#include "policy/throttle.hpp"
#include "state/memory_store.hpp"

using namespace regmilter;
using policy::Action;
using regmilter::testing::cfg_of;
using regmilter::testing::environment_of;
using regmilter::testing::runtime_of;

namespace {

constexpr int64_t t0 = 1780315200;  // 2026-06-01 12:00 UTC

// The test's configuration; `milter` goes into [milter], `extra` after the rest.
std::string cfg_text(const std::string& extra, const std::string& milter = "") {
    return "[milter]\nauthserv_id = mx.example.org\n" + milter +
           "[trust]\nnetworks = 127.0.0.0/8 10.0.0.0/8\n"
           "[registry reg]\nzone = reg.example\nunregistered = greylist\n"
           "[registry bl]\nzone = bl.example\nformat = reversed\nmeaning = blocked\nlisted = greylist\n"
           "[spf]\ncheck_helo = no\n" +
           extra;
}

// 192.0.2.7 registered, 192.0.2.66 and 198.51.100.9 not; 192.0.2.99 registered
// and block-listed; 203.0.113.5 unregistered and block-listed.
void zones(dns::MemoryResolver& dns) {
    for (const char* ip : {"192-0-2-7", "192-0-2-99"})
        dns.add(std::string(ip) + ".reg.example", dns::RrType::a, "127.0.0.2");
    for (const char* ip : {"192-0-2-66", "192-0-2-67", "198-51-100-9", "10-1-2-3", "203-0-113-5"})
        dns.add_empty(std::string(ip) + ".reg.example");
    for (const char* ip : {"7.2.0.192", "66.2.0.192", "67.2.0.192", "9.100.51.198", "3.2.1.10"})
        dns.add_empty(std::string(ip) + ".bl.example");
    dns.add("99.2.0.192.bl.example", dns::RrType::a, "127.0.0.2");
    dns.add("5.113.0.203.bl.example", dns::RrType::a, "127.0.0.2");
    dns.add("example.com", dns::RrType::txt,
            "v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.0/24 ip4:203.0.113.0/24 ~all");
}

// A Store that fails while `down` (as RedisStore does: the first failure of
// an outage carries outage_began, the first success after it outage_ended),
// or answers a wrong type for every call while `wrong_type`.
class FlakyStore : public state::Store {
public:
    bool down = false;
    bool wrong_type = false;
    state::MemoryStore inner;
    int greylist_calls = 0, client_calls = 0;

    state::GreylistAnswer greylist(const state::Key& t, const state::Key& c, const state::GreylistRules& r,
                                   state::UnixTime now, state::Mode m, state::Deadline d) override {
        ++greylist_calls;
        state::GreylistAnswer a;
        if (!down && !wrong_type) a = inner.greylist(t, c, r, now, m, d);
        note(a);
        return a;
    }
    state::GreylistAnswer client(const state::Key& c, const state::GreylistRules& r, state::UnixTime now,
                                 state::Mode m, state::Deadline d) override {
        ++client_calls;
        state::GreylistAnswer a;
        if (!down && !wrong_type) a = inner.client(c, r, now, m, d);
        note(a);
        return a;
    }
    state::CounterAnswer count(const state::Key& k, uint64_t n, uint64_t limit, state::UnixTime expires,
                               state::UnixTime now, state::Mode m, state::Deadline d) override {
        state::CounterAnswer a;
        if (!down && !wrong_type) a = inner.count(k, n, limit, expires, now, m, d);
        note(a);
        return a;
    }
    std::string describe() const override { return "redis 10.9.8.7:6379"; }

private:
    void note(state::Outcome& o) {
        if (wrong_type) {
            o.status = state::Status::wrong_type;
            o.reason =
                "redis 10.9.8.7:6379: WRONGTYPE Operation against a key holding the wrong kind of value";
            return;
        }
        if (down) {
            o.status = state::Status::timeout;
            o.reason = "redis 10.9.8.7:6379: timeout after 200 ms";
            if (!failing_) o.event = state::Event::outage_began;
            failing_ = true;
            ++failures_;
        } else if (failing_) {
            o.event = state::Event::outage_ended;
            o.outage_failures = failures_;
            failing_ = false;
            failures_ = 0;
        }
    }
    bool failing_ = false;
    uint64_t failures_ = 0;
};

// One configuration, one store, a clock the test moves, the notices.
struct Rig {
    dns::MemoryResolver dns;
    std::shared_ptr<policy::Runtime> rt;
    std::shared_ptr<state::Store> store;
    int64_t now = t0;
    std::vector<std::string> notices;

    explicit Rig(const std::string& cfg,
                 std::shared_ptr<state::Store> s = std::make_shared<state::MemoryStore>())
        : store(std::move(s)) {
        zones(dns);
        rt = runtime_of(cfg_of(cfg), dns);
    }
    policy::Environment env() {
        policy::Environment e = environment_of(rt);
        e.clock = [this] { return std::chrono::system_clock::time_point(std::chrono::seconds(now)); };
        e.store = [this] { return store; };
        e.notice = [this](policy::LogLevel, const std::string& line) { notices.push_back(line); };
        return e;
    }
    state::MemoryStore& memory() { return dynamic_cast<state::MemoryStore&>(*store); }
};

// The replies of one transaction, as an MTA drives it.
struct Tx {
    policy::Reply mail;
    std::vector<policy::Reply> rcpts;
    policy::Reply data;  // end of message, when a recipient was accepted
};

// Connects `s` from `ip` and says HELO, as an MTA opens a session.
void open_session(policy::Session& s, const char* ip) {
    policy::ConnectInfo c;
    c.ip = net::Address::parse(ip);
    c.hostname = "mail.example.com";
    s.connect(c);
    s.helo("mail.example.com", {});
}

Tx send(Rig& rig, const char* ip, const std::vector<std::string>& rcpts, const policy::Macros& macros = {},
        const char* from = "<alice@example.com>") {
    policy::Session s(rig.env());
    open_session(s, ip);
    Tx t;
    t.mail = s.mail(from, macros);
    bool any = false;
    if (!policy::refuses(t.mail.action))
        for (const auto& r : rcpts) {
            t.rcpts.push_back(s.rcpt("<" + r + ">", {}));
            any = any || !policy::refuses(t.rcpts.back().action);
        }
    if (any) {
        s.end_of_headers({});
        t.data = s.end_of_message({});
    }
    s.close();
    INFO("unexpected DNS: " << rig.dns.unexpected().size());
    CHECK(rig.dns.unexpected().empty());
    return t;
}

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

std::string x_regmilter(const policy::Reply& r) {
    std::string out;
    for (const auto& h : r.add_headers)
        if (h.name == "X-Regmilter") out += h.value + "\n";
    return out;
}

}  // namespace

TEST_CASE("greylisting: the delay and window boundaries through the Session", "[throttle]") {
    Rig rig(cfg_text("[greylist]\ndelay = 300\nretry_window = 3600\nauto_allow = 0\n"));
    struct Step {
        int64_t at;  // seconds after the first attempt
        Action action;
        const char* text;      // reply text (tempfail)
        const char* greylist;  // the rcpt line's greylist= (tempfail) or the data line's
    };
    const Step steps[] = {
        {0, Action::tempfail, "greylisted, please retry in 300 seconds", "greylist=new"},
        {1, Action::tempfail, "greylisted, please retry in 299 seconds", "greylist=early"},
        {299, Action::tempfail, "greylisted, please retry in 1 second", "greylist=early"},
        {300, Action::continue_, "", "greylist=passed"},
        {300 + 30 * 86400, Action::continue_, "", "greylist=passed"},  // passed: remembered
    };
    for (const auto& st : steps) {
        INFO("at +" << st.at << " s");
        rig.now = t0 + st.at;
        Tx t = send(rig, "192.0.2.66", {"bob@example.org"});
        CHECK(t.mail.action == Action::continue_);
        REQUIRE(t.rcpts.size() == 1);
        CHECK(t.rcpts[0].action == st.action);
        if (st.action == Action::tempfail) {
            CHECK(t.rcpts[0].code == "451");
            CHECK(t.rcpts[0].xcode == "4.7.1");
            CHECK(t.rcpts[0].text == st.text);
            CHECK(contains(t.rcpts[0].log, std::string(st.greylist) + " "));
            CHECK(contains(t.rcpts[0].log, "reason=greylist:registry:unregistered:reg.example"));
            CHECK(t.data.log.empty());
        } else {
            CHECK(t.rcpts[0].log.empty());
            CHECK(contains(t.data.log, std::string(st.greylist) + " "));
        }
    }
    SECTION("a retry after the window starts over") {
        rig.now = t0 + 100000;
        CHECK(send(rig, "192.0.2.66", {"carol@example.org"}).rcpts[0].action == Action::tempfail);
        rig.now = t0 + 100000 + 3601;
        Tx t = send(rig, "192.0.2.66", {"carol@example.org"});
        CHECK(t.rcpts[0].action == Action::tempfail);
        CHECK(contains(t.rcpts[0].log, "greylist=new "));
    }
    SECTION("another address of the /24, the same sender and recipient: the same triplet") {
        CHECK(send(rig, "192.0.2.67", {"bob@example.org"}).rcpts[0].action == Action::continue_);
    }
    SECTION("per recipient: a passed one is kept, a new one is greylisted") {
        Tx t = send(rig, "192.0.2.66", {"bob@example.org", "dave@example.org"});
        CHECK(t.rcpts[0].action == Action::continue_);
        CHECK(t.rcpts[1].action == Action::tempfail);
        CHECK(contains(t.rcpts[1].log, "rcpt=<dave@example.org>"));
        CHECK(contains(t.data.log, "greylist=passed "));  // what went through
    }
}

TEST_CASE("greylisting: auto_allow lets a client network through from its Nth passed triplet on",
          "[throttle]") {
    Rig rig(cfg_text("[greylist]\ndelay = 60\nauto_allow = 2\n"));
    for (const char* r : {"a@example.org", "b@example.org"}) {
        rig.now = t0;
        CHECK(send(rig, "192.0.2.66", {r}).rcpts[0].action == Action::tempfail);
        rig.now = t0 + 60;
        CHECK(send(rig, "192.0.2.66", {r}).rcpts[0].action == Action::continue_);
    }
    Tx t = send(rig, "192.0.2.66", {"never-seen@example.org"});
    CHECK(t.rcpts[0].action == Action::continue_);
    CHECK(contains(t.data.log, "greylist=allowed "));
    // Another /24 has passed nothing.
    CHECK(send(rig, "198.51.100.9", {"never-seen@example.org"}).rcpts[0].action == Action::tempfail);
}

TEST_CASE("greylisting: an allowed network is known at MAIL FROM, its recipients need no store call",
          "[throttle]") {
    auto store = std::make_shared<FlakyStore>();
    Rig rig(cfg_text("[greylist]\ndelay = 60\nauto_allow = 2\n"), store);
    for (const char* r : {"a@example.org", "b@example.org"}) {
        rig.now = t0;
        send(rig, "192.0.2.66", {r});
        rig.now = t0 + 60;
        send(rig, "192.0.2.66", {r});
    }
    CHECK(store->client_calls == 4);  // one per MAIL FROM: not allowed yet
    CHECK(store->greylist_calls == 4);
    store->client_calls = store->greylist_calls = 0;
    // Another address of the /24, three recipients: one client step, no triplet.
    Tx t = send(rig, "192.0.2.67", {"c@example.org", "d@example.org", "e@example.org"});
    CHECK(store->client_calls == 1);
    CHECK(store->greylist_calls == 0);
    for (const auto& r : t.rcpts) CHECK(r.action == Action::continue_);
    CHECK(contains(t.data.log, "greylist=allowed "));
    // The client step renews the network, as the triplet step does: 36 days
    // (pass_lifetime) after this last use it is still allowed, a day later not.
    rig.now = t0 + 60 + 3110400;
    CHECK(send(rig, "192.0.2.67", {"f@example.org"}).rcpts[0].action == Action::continue_);
    rig.now += 3110400 + 1;
    CHECK(send(rig, "192.0.2.67", {"f@example.org"}).rcpts[0].action == Action::tempfail);
    // The store failing at MAIL FROM: the recipients' own calls decide (on_error).
    store->down = true;
    t = send(rig, "192.0.2.66", {"g@example.org"});
    CHECK(t.rcpts[0].action == Action::continue_);
    CHECK(contains(t.data.log, "greylist=error "));
    CHECK(rig.notices.size() == 1);  // one outage, one line
}

TEST_CASE("greylisting: never for trusted, authenticated or registered clients", "[throttle]") {
    Rig rig(cfg_text("[ratelimit]\nunregistered_messages = 1\nunregistered_recipients = 1\n"));
    struct Case {
        const char* name;
        const char* ip;
        policy::Macros macros;
    };
    const Case cases[] = {
        {"registered", "192.0.2.7", {}},
        {"registered and block-listed", "192.0.2.99", {}},
        {"trusted network", "10.1.2.3", {}},
        {"authenticated", "198.51.100.9", {{"auth_authen", "alice"}}},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        for (int i = 0; i < 3; ++i) {
            Tx t = send(rig, c.ip, {"bob@example.org", "carol@example.org"}, c.macros);
            CHECK(t.mail.action == Action::continue_);
            for (const auto& r : t.rcpts) CHECK(r.action == Action::continue_);
            CHECK_FALSE(contains(t.data.log, "greylist="));
        }
    }
    CHECK(rig.memory().size() == 0);  // the store was never asked
}

TEST_CASE("greylisting: a block-list listing with listed = greylist", "[throttle]") {
    Rig rig(cfg_text(""));
    Tx t = send(rig, "203.0.113.5", {"bob@example.org"});
    CHECK(t.rcpts[0].action == Action::tempfail);
    // The first zone asking for greylisting gives the reason.
    CHECK(contains(t.rcpts[0].log, "reason=greylist:registry:unregistered:reg.example"));
}

TEST_CASE("greylisting: enforce_after turns it into a tag before the date; uncertain registry: a tag",
          "[throttle]") {
    SECTION("before enforce_after") {
        Rig rig(
            "[milter]\nauthserv_id = mx.example.org\n[registry late]\nzone = late.example\n"
            "unregistered = greylist\nenforce_after = 2027-01-01\n[spf]\ncheck_helo = no\n");
        rig.dns.add_empty("192-0-2-66.late.example");
        Tx t = send(rig, "192.0.2.66", {"bob@example.org"});
        CHECK(t.rcpts[0].action == Action::continue_);
        CHECK(t.data.action == Action::tag);
        CHECK(contains(x_regmilter(t.data),
                       "unregistered 192.0.2.66 (not in late.example) (enforced from 2027-01-01)"));
        CHECK(rig.memory().size() == 0);
    }
    SECTION("another registered zone could not be asked") {
        Rig rig(cfg_text("[registry other]\nzone = other.example\n"));
        rig.dns.add_failure("192-0-2-66.other.example", dns::DnsStatus::timeout);
        Tx t = send(rig, "192.0.2.66", {"bob@example.org"});
        CHECK(t.rcpts[0].action == Action::continue_);
        CHECK(t.data.action == Action::tag);
        CHECK_FALSE(contains(t.data.log, "greylist="));
    }
}

TEST_CASE("greylisting: observe mode records, logs and tags \"would greylist\", refuses nothing",
          "[throttle]") {
    Rig rig(cfg_text("", "mode = observe\n"));
    Tx t = send(rig, "192.0.2.66", {"bob@example.org"});
    CHECK(t.rcpts[0].action == Action::continue_);
    CHECK(contains(t.rcpts[0].log, "greylist=new "));
    CHECK(contains(t.rcpts[0].log, "reason=observe:greylist:registry:unregistered:reg.example"));
    CHECK(contains(t.rcpts[0].log, " observe=\"would greylist\""));
    CHECK(t.data.action == Action::continue_);
    CHECK(x_regmilter(t.data) == "would greylist: 451 4.7.1 greylisted, please retry in 300 seconds\n");
    rig.now = t0 + 300;  // the state is real: a retry would have passed
    Tx again = send(rig, "192.0.2.66", {"bob@example.org"});
    CHECK(x_regmilter(again.data).empty());
    CHECK(contains(again.data.log, "greylist=passed "));
}

TEST_CASE("rate limits: N pass per window, the N+1-th gets 451 4.7.1 naming the limit; per class",
          "[throttle]") {
    Rig rig(
        cfg_text("[ratelimit]\nwindow = 3600\nunregistered_messages = 2\nregistered_messages = 3\n"
                 "registered_recipients = 4\n"));
    rig.now = t0 + 10;  // 10 s into a window (t0 is a multiple of 3600)
    // Registered: 3 messages.
    for (int i = 1; i <= 3; ++i) {
        Tx t = send(rig, "192.0.2.7", {"bob@example.org"});
        CHECK(t.mail.action == Action::continue_);
        CHECK(contains(t.mail.log, "ratelimit=messages:pass"));
    }
    Tx over = send(rig, "192.0.2.7", {"bob@example.org"});
    CHECK(over.mail.action == Action::tempfail);
    CHECK(over.mail.code == "451");
    CHECK(over.mail.xcode == "4.7.1");
    CHECK(over.mail.text == "rate limit: 3 messages per 3600 s for 192.0.2.0/24");
    CHECK(contains(over.mail.log, "ratelimit=messages:limited "));
    CHECK(contains(over.mail.log, "reason=ratelimit:registered:messages"));
    // Unregistered, in the same /24: its own class, 2 messages.
    CHECK(send(rig, "192.0.2.66", {}).mail.action == Action::continue_);
    CHECK(send(rig, "192.0.2.66", {}).mail.action == Action::continue_);
    Tx u = send(rig, "192.0.2.66", {});
    CHECK(u.mail.action == Action::tempfail);
    CHECK(u.mail.text == "rate limit: 2 messages per 3600 s for 192.0.2.0/24");
    // The next window counts afresh.
    rig.now = t0 + 3600;
    CHECK(send(rig, "192.0.2.66", {}).mail.action == Action::continue_);
    // Recipients: 4 per window for a registered network; the 5th is refused, the message goes on.
    Tx many = send(rig, "192.0.2.7",
                   {"a@example.org", "b@example.org", "c@example.org", "d@example.org", "e@example.org"});
    REQUIRE(many.rcpts.size() == 5);
    for (int i = 0; i < 4; ++i) CHECK(many.rcpts[i].action == Action::continue_);
    CHECK(many.rcpts[4].action == Action::tempfail);
    CHECK(many.rcpts[4].text == "rate limit: 4 recipients per 3600 s for 192.0.2.0/24");
    CHECK(contains(many.rcpts[4].log, "ratelimit=messages:pass,recipients:limited "));
    CHECK(contains(many.data.log, "ratelimit=messages:pass,recipients:pass,recipients:limited "));
}

TEST_CASE("rate limits: a greylisted recipient is not counted", "[throttle]") {
    Rig rig(cfg_text("[ratelimit]\nunregistered_recipients = 1\n"));
    CHECK(send(rig, "192.0.2.66", {"a@example.org"}).rcpts[0].action == Action::tempfail);  // greylisted
    CHECK(send(rig, "192.0.2.66", {"b@example.org"}).rcpts[0].action == Action::tempfail);  // greylisted
    rig.now = t0 + 300;
    Tx t = send(rig, "192.0.2.66", {"a@example.org", "b@example.org"});
    CHECK(t.rcpts[0].action == Action::continue_);  // the first recipient of the window
    CHECK(t.rcpts[1].action == Action::tempfail);
    CHECK(t.rcpts[1].text == "rate limit: 1 recipients per 3600 s for 192.0.2.0/24");
}

TEST_CASE("a failing store: on_error, one notice per outage and one at its end, never in decision lines",
          "[throttle]") {
    auto flaky = std::make_shared<FlakyStore>();
    for (const char* on_error : {"accept", "tempfail"}) {
        DYNAMIC_SECTION("on_error = " << on_error) {
            Rig rig(cfg_text(std::string("[state]\non_error = ") + on_error +
                             "\n[ratelimit]\nunregistered_messages = 100\n"),
                    flaky);
            flaky->down = true;
            std::vector<std::string> lines;
            for (int i = 0; i < 5; ++i) {
                Tx t = send(rig, "192.0.2.66", {"bob@example.org", "carol@example.org"});
                for (const auto* r : {&t.mail, &t.data}) lines.push_back(r->log);
                for (const auto& r : t.rcpts) lines.push_back(r.log);
                if (std::string(on_error) == "accept") {
                    CHECK(t.mail.action == Action::continue_);
                    CHECK(t.rcpts[0].action == Action::continue_);
                    CHECK(contains(t.mail.log, "ratelimit=messages:error "));
                    CHECK(contains(t.data.log, "greylist=error "));
                    CHECK(contains(t.data.log, "greylist=error ratelimit=messages:error action=continue"));
                } else {
                    CHECK(t.mail.action == Action::tempfail);
                    CHECK(t.mail.code + " " + t.mail.xcode == "451 4.3.0");
                    CHECK(t.mail.text == "greylisting state unavailable, try again later");
                    CHECK(contains(t.mail.log, "reason=state:error"));
                }
            }
            REQUIRE(rig.notices.size() == 1);
            CHECK(rig.notices[0].rfind("state store redis 10.9.8.7:6379 unavailable (timeout): ", 0) == 0);
            CHECK(contains(rig.notices[0], std::string("([state] on_error = ") + on_error + ")"));
            for (const auto& l : lines) CHECK_FALSE(contains(l, "10.9.8.7"));
            flaky->down = false;
            Tx t = send(rig, "192.0.2.66", {"bob@example.org"});
            CHECK(t.rcpts[0].action == Action::tempfail);  // greylisting works again
            CHECK(contains(t.rcpts[0].log, "greylist=new "));
            REQUIRE(rig.notices.size() == 2);
            CHECK(rig.notices[1].rfind("state store redis 10.9.8.7:6379 answers again, after ", 0) == 0);
            send(rig, "192.0.2.66", {"bob@example.org"});
            CHECK(rig.notices.size() == 2);
        }
    }
}

TEST_CASE("a key of the wrong type: on_error for that call, a notice each time, no outage", "[throttle]") {
    auto flaky = std::make_shared<FlakyStore>();
    flaky->wrong_type = true;
    Rig rig(cfg_text(""), flaky);
    Tx t = send(rig, "192.0.2.66", {"bob@example.org"});
    CHECK(t.rcpts[0].action == Action::continue_);
    CHECK(contains(t.data.log, "greylist=error "));
    REQUIRE(rig.notices.size() == 2);  // the MAIL FROM's client step, the RCPT TO's triplet step
    CHECK(contains(rig.notices[0], "WRONGTYPE"));
    CHECK(contains(rig.notices[1], "WRONGTYPE"));
}

TEST_CASE("no store at all: greylisting follows on_error", "[throttle]") {
    Rig rig(cfg_text("[state]\non_error = tempfail\n"));
    rig.store = nullptr;
    Tx t = send(rig, "192.0.2.66", {"bob@example.org"});
    CHECK(t.rcpts[0].action == Action::tempfail);
    CHECK(t.rcpts[0].code + " " + t.rcpts[0].xcode == "451 4.3.0");
}

TEST_CASE("peek: greylisting and rate limits read the store without changing it", "[throttle]") {
    Rig rig(cfg_text("[ratelimit]\nunregistered_messages = 1\n"));
    auto e = rig.env();
    e.state_peek = true;
    for (int i = 0; i < 3; ++i) {
        policy::Session s(e);
        policy::ConnectInfo c;
        c.ip = net::Address::parse("192.0.2.66");
        s.connect(c);
        s.helo("mail.example.com", {});
        CHECK(s.mail("<alice@example.com>", {}).action == Action::continue_);
        auto r = s.rcpt("<bob@example.org>", {});
        CHECK(r.action == Action::tempfail);
        CHECK(contains(r.log, "greylist=new "));
        s.close();
    }
    CHECK(rig.memory().size() == 0);
    send(rig, "192.0.2.66", {"bob@example.org"});  // recorded
    CHECK(rig.memory().size() == 2);               // the triplet and the messages' counter
    Tx t = send(rig, "192.0.2.66", {"bob@example.org"});
    CHECK(t.mail.action == Action::tempfail);  // the limit of 1 message
}

TEST_CASE("the store outlives a new snapshot: a reload keeps what greylisting learnt", "[throttle]") {
    Rig rig(cfg_text("[greylist]\ndelay = 60\n"));
    CHECK(send(rig, "192.0.2.66", {"bob@example.org"}).rcpts[0].action == Action::tempfail);
    // A reload: a new Runtime (another delay) over the same store.
    rig.rt = runtime_of(cfg_of(cfg_text("[greylist]\ndelay = 30\n")), rig.dns);
    rig.rt->generation = 2;
    rig.now = t0 + 30;
    Tx t = send(rig, "192.0.2.66", {"bob@example.org"});
    CHECK(t.rcpts[0].action == Action::continue_);
    CHECK(contains(t.data.log, "greylist=passed "));
}

TEST_CASE("greylisting: addresses of any length and bytes are only hashed, never kept", "[throttle]") {
    Rig rig(cfg_text(""));
    const std::string huge = std::string(100000, 'x') + "@example.org";
    const std::string odd = std::string("a\x01\x7f\xff\"\\ %s") + "@example.org";
    for (const auto& rcpt : {huge, odd}) {
        Tx t = send(rig, "192.0.2.66", {rcpt});
        REQUIRE(t.rcpts.size() == 1);
        CHECK(t.rcpts[0].action == Action::tempfail);
        CHECK(t.rcpts[0].text == "greylisted, please retry in 300 seconds");
    }
    CHECK(rig.memory().size() == 2);
    // Case of the addresses does not make another triplet.
    Tx again = send(rig, "192.0.2.66", {"A" + odd.substr(1)}, {}, "<ALICE@EXAMPLE.COM>");
    CHECK(contains(again.rcpts[0].log, "greylist=early "));
    CHECK(rig.memory().size() == 2);
}

TEST_CASE("regmilter-query's JSON: the state, greylist and ratelimit facts beside the old keys",
          "[throttle]") {
    Rig rig(cfg_text("[ratelimit]\nunregistered_messages = 10\n"));
    policy::Session s(rig.env());
    policy::Scenario sc;
    sc.ip = net::Address::parse("192.0.2.66");
    sc.helo = "mail.example.com";
    sc.mail_from = "alice@example.com";
    sc.rcpts = {"bob@example.org"};
    std::string json = policy::to_json(s, policy::simulate(s, sc));
    for (const char* key : {"\"spf\":", "\"registry\":", "\"bulk\":", "\"verdicts\":", "\"headers\":"})
        CHECK(contains(json, key));
    INFO(json);
    CHECK(contains(json, "\"state\":{\"backend\":\"memory\",\"store\":\"memory\",\"peek\":false}"));
    CHECK(contains(json,
                   "\"greylist\":{\"applies\":true,\"reason\":\"registry:unregistered:reg.example\","
                   "\"recipients\":[{\"rcpt\":\"bob@example.org\",\"outcome\":\"new\",\"wait\":300,"
                   "\"network\":\"192.0.2.0/24\",\"client_passes\":0,\"error\":\"\"}]}"));
    CHECK(contains(json,
                   "\"ratelimit\":{\"class\":\"unregistered\",\"applies\":true,\"messages\":{\"outcome\":"
                   "\"pass\",\"count\":1,\"limit\":10,\"window\":3600,\"retry_after\":0,\"network\":"
                   "\"192.0.2.0/24\",\"error\":\"\"},\"recipients\":[]}"));
    CHECK(contains(
        json, "\"code\":\"451\",\"xcode\":\"4.7.1\",\"text\":\"greylisted, please retry in 300 seconds\""));
}

TEST_CASE("rcpt_continues: after MAIL FROM, only when no recipient can be answered anything but continue",
          "[throttle]") {
    // After mail() answered continue, as the worker asks it.
    auto continues = [](Rig& rig, const char* ip) {
        policy::Session s(rig.env());
        open_session(s, ip);
        policy::Reply mail = s.mail("<alice@example.com>", {});
        REQUIRE(mail.action == Action::continue_);
        bool out = s.rcpt_continues();
        // What it promised: every recipient continues.
        if (out)
            for (const char* r : {"<bob@example.org>", "<abuse@example.org>", "<postmaster@example.org>"})
                CHECK(s.rcpt(r, {}).action == Action::continue_);
        s.close();
        return out;
    };
    SECTION("greylisting") {
        Rig rig(cfg_text(""));
        CHECK(continues(rig, "192.0.2.7"));          // registered
        CHECK(continues(rig, "10.1.2.3"));           // trusted
        CHECK_FALSE(continues(rig, "192.0.2.66"));   // unregistered: greylisted at RCPT TO
        CHECK(continues(rig, "192.0.2.99"));         // registered and block-listed: never greylisted
        CHECK_FALSE(continues(rig, "203.0.113.5"));  // unregistered and block-listed
    }
    SECTION("greylisting, the client's network allowed (auto_allow)") {
        Rig rig(cfg_text("[greylist]\ndelay = 60\nauto_allow = 1\n"));
        CHECK_FALSE(continues(rig, "192.0.2.66"));
        send(rig, "192.0.2.66", {"bob@example.org"});
        rig.now = t0 + 60;
        CHECK_FALSE(continues(rig, "192.0.2.66"));  // not yet: bob's triplet has not passed
        send(rig, "192.0.2.66", {"bob@example.org"});
        CHECK(continues(rig, "192.0.2.66"));
        CHECK(continues(rig, "192.0.2.67"));          // the same /24
        CHECK_FALSE(continues(rig, "198.51.100.9"));  // another network
    }
    SECTION("rate limits: a registered client counts its recipients") {
        Rig rig(cfg_text("[ratelimit]\nregistered_recipients = 4\n"));
        CHECK_FALSE(continues(rig, "192.0.2.7"));
        CHECK(continues(rig, "10.1.2.3"));  // trusted: never limited
    }
    SECTION("exempt_recipients: a refused MAIL FROM waits for the recipients") {
        Rig rig(
            "[milter]\nauthserv_id = mx.example.org\n[registry reg]\nzone = reg.example\n"
            "unregistered = reject\n[spf]\ncheck_helo = no\n[policy]\nexempt_recipients = abuse@\n");
        CHECK(continues(rig, "192.0.2.7"));
        CHECK_FALSE(continues(rig, "192.0.2.66"));  // refused, but abuse@ is accepted
    }
}
