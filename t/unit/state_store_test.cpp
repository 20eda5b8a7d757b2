// state: MemoryStore against the shared scenario table (the same table runs
// on Redis in t/integration/state-redis.sh), eviction of the soonest-expiring
// entry, purge, keys, snapshot save/load round trip and a table of malformed
// snapshots (each refused at its FILE:LINE, the store unchanged), Redis
// addresses, and a RedisStore whose server is missing (an error per call, one
// outage event, backoff).
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "../support/state_scenarios.hpp"
#include "state/memory_store.hpp"
#include "state/pass_memory.hpp"
#include "state/redis_store.hpp"

using namespace regmilter;
using namespace regmilter::state;

namespace {

constexpr UnixTime T0 = 1700000000;  // 2023-11-14, any fixed wall-clock time

Deadline soon() {
    return deadline_in(std::chrono::seconds(5));
}

Key tkey(int n) {
    return Key::of(KeyKind::triplet, "triplet " + std::to_string(n));
}
Key ckey(int n) {
    return Key::of(KeyKind::client, "client " + std::to_string(n));
}
Key rkey(int n) {
    return Key::of(KeyKind::counter, "counter " + std::to_string(n));
}

// A directory removed with its files at scope exit.
struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/regmilter-state-XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::string cmd = "rm -rf '" + path + "'";
        if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "cannot remove %s\n", path.c_str());
    }
    std::string file(const std::string& name) const { return path + "/" + name; }
    std::string write(const std::string& name, const std::string& text) const {
        std::ofstream out(file(name), std::ios::binary | std::ios::trunc);
        out << text;
        return file(name);
    }
};

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

const GreylistRules rules{300, 14400, 3110400, 3};

std::string peek_triplet(MemoryStore& s, const Key& t, const Key& c, UnixTime now) {
    return testing::describe(s.greylist(t, c, rules, now, Mode::peek, soon()), T0);
}

}  // namespace

TEST_CASE("MemoryStore follows every step of the shared store scenarios", "[state]") {
    for (const auto& scenario : testing::store_scenarios()) {
        MemoryStore store;
        auto failures = testing::run_store_scenario(store, scenario, "unit", T0);
        INFO(scenario.name);
        for (const auto& f : failures) FAIL_CHECK(f);
        CHECK(failures.empty());
    }
}

TEST_CASE("keys are 17 bytes whatever they name, and differ when the text differs", "[state]") {
    const std::string huge(10 * 1024, 'x');
    const std::string with_nul("a\0b", 3);
    const std::string eight_bit = "\xff\xfe\x80 caf\xc3\xa9";
    const std::vector<std::string> texts = {"",   "a",        with_nul, std::string("a\0c", 3),
                                            huge, huge + "y", eight_bit};
    std::vector<Key> keys;
    for (const auto& t : texts) {
        Key k = Key::of(KeyKind::triplet, t);
        CHECK(k.hex().size() == 32);
        CHECK(k.text().size() == 34);
        CHECK(k.hex().find_first_not_of("0123456789abcdef") == std::string::npos);
        Key back;
        REQUIRE(Key::parse(k.text(), back));
        CHECK(back == k);
        for (const auto& other : keys) CHECK_FALSE(other == k);
        keys.push_back(k);
    }
    // The kind is part of the key.
    CHECK_FALSE(Key::of(KeyKind::triplet, "x") == Key::of(KeyKind::client, "x"));
    Key k;
    CHECK_FALSE(Key::parse("x:00000000000000000000000000000000", k));
    CHECK_FALSE(Key::parse("t:0000000000000000000000000000000G", k));
    CHECK_FALSE(Key::parse("t:000", k));
}

TEST_CASE("MemoryStore: when full, the entry that expires soonest goes first", "[state]") {
    MemoryStore store(MemoryOptions{10});
    // A passed triplet (kept 36 days) and nine pending ones (4 hours).
    store.greylist(tkey(0), ckey(0), rules, T0, Mode::update, soon());
    store.greylist(tkey(0), ckey(0), rules, T0 + 300, Mode::update, soon());
    REQUIRE(store.size() == 2);  // the triplet and its client count
    for (int i = 1; i <= 8; ++i) store.greylist(tkey(i), ckey(1), rules, T0 + 300 + i, Mode::update, soon());
    REQUIRE(store.size() == 10);
    CHECK(store.evictions() == 0);
    // Ten more new triplets: each evicts the oldest pending one.
    for (int i = 9; i <= 18; ++i) store.greylist(tkey(i), ckey(1), rules, T0 + 400 + i, Mode::update, soon());
    CHECK(store.size() == 10);
    CHECK(store.evictions() == 10);
    CHECK(peek_triplet(store, tkey(0), ckey(0), T0 + 500) == "passed first=0 passes=1");
    for (int i = 1; i <= 10; ++i) {
        INFO("triplet " << i << " was evicted");
        CHECK(peek_triplet(store, tkey(i), ckey(1), T0 + 500).rfind("created", 0) == 0);
    }
    for (int i = 11; i <= 18; ++i) {
        INFO("triplet " << i << " is kept");
        CHECK(peek_triplet(store, tkey(i), ckey(1), T0 + 500).rfind("early", 0) == 0);
    }
}

TEST_CASE("MemoryStore with max_entries 0 remembers nothing", "[state]") {
    MemoryStore store(MemoryOptions{0});
    store.greylist(tkey(1), ckey(1), rules, T0, Mode::update, soon());
    CHECK(store.size() == 0);
    CHECK(peek_triplet(store, tkey(1), ckey(1), T0 + 300) == "created first=300 passes=0");
}

TEST_CASE("MemoryStore: purge drops what expired, and nothing else", "[state]") {
    MemoryStore store;
    for (int i = 0; i < 100; ++i) store.count(rkey(i), 1, 0, T0 + i, T0, Mode::update, soon());
    store.greylist(tkey(1), ckey(1), rules, T0, Mode::update, soon());  // expires T0 + 14400
    REQUIRE(store.size() == 101);
    CHECK(store.purge(T0 + 50) == 50);  // counters 0..49 expired before T0 + 50
    CHECK(store.size() == 51);
    CHECK(store.purge(T0 + 14400) == 50);
    CHECK(store.size() == 1);
    CHECK(store.purge(T0 + 14401) == 1);
    CHECK(store.size() == 0);
}

TEST_CASE("MemoryStore: counting from 8 threads loses nothing", "[state][threads]") {
    MemoryStore store;
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&store, t] {
            for (int i = 0; i < 2000; ++i) {
                store.count(rkey(0), 1, 0, T0 + 3600, T0, Mode::update, soon());
                store.greylist(tkey(t * 10000 + i), ckey(t), rules, T0, Mode::update, soon());
            }
        });
    for (auto& th : threads) th.join();
    CHECK(testing::describe(store.count(rkey(0), 0, 0, T0 + 3600, T0, Mode::peek, soon())) ==
          "admitted 16000");
    CHECK(store.size() == 1 + 16000);
}

TEST_CASE("snapshot: save then load keeps pending and passed triplets, clients and counters", "[state]") {
    TempDir dir;
    const std::string path = dir.file("state.snapshot");
    MemoryStore a;
    a.greylist(tkey(1), ckey(1), rules, T0, Mode::update, soon());  // pending
    a.greylist(tkey(2), ckey(1), rules, T0, Mode::update, soon());  // passed at T0 + 300
    a.greylist(tkey(2), ckey(1), rules, T0 + 300, Mode::update, soon());
    a.count(rkey(1), 2, 10, T0 + 3599, T0 + 10, Mode::update, soon());  // counter at 2
    a.count(rkey(2), 1, 10, T0 + 350, T0 + 10, Mode::update, soon());   // expires before the load
    REQUIRE(a.size() == 5);

    auto saved = a.save(path, T0 + 301);
    REQUIRE(saved.status == SnapshotResult::Status::ok);
    CHECK(saved.entries == 5);
    struct stat st;
    REQUIRE(stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(access((path + ".tmp." + std::to_string(getpid())).c_str(), F_OK) != 0);
    const std::string text = read_file(path);
    CHECK(text.rfind("regmilter-state 1\n", 0) == 0);
    CHECK(text.find("\nend 5\n") != std::string::npos);

    MemoryStore b;
    auto loaded = b.load(path, T0 + 400);
    REQUIRE(loaded.status == SnapshotResult::Status::ok);
    CHECK(loaded.entries == 4);
    CHECK(loaded.expired == 1);
    CHECK(b.size() == 4);
    // The pending triplet passes at its time, the passed one stays passed,
    // the client count and the counter carry on.
    CHECK(peek_triplet(b, tkey(1), ckey(1), T0 + 400) == "passed-now first=0 passes=2");
    CHECK(peek_triplet(b, tkey(2), ckey(1), T0 + 400) == "passed first=0 passes=1");
    CHECK(testing::describe(b.count(rkey(1), 1, 10, T0 + 3599, T0 + 400, Mode::peek, soon())) ==
          "admitted 3");
    CHECK(testing::describe(b.count(rkey(2), 1, 10, T0 + 3599, T0 + 400, Mode::peek, soon())) ==
          "admitted 1");

    // A second save replaces the file whole.
    REQUIRE(b.save(path, T0 + 400).status == SnapshotResult::Status::ok);
    CHECK(read_file(path).find("\nend 4\n") != std::string::npos);
}

TEST_CASE("snapshot: a missing file is not an error, an unwritable place is", "[state]") {
    TempDir dir;
    MemoryStore s;
    s.greylist(tkey(1), ckey(1), rules, T0, Mode::update, soon());
    auto r = s.load(dir.file("none"), T0);
    CHECK(r.status == SnapshotResult::Status::missing);
    CHECK(s.size() == 1);
    auto w = s.save(dir.file("no/such/dir/state"), T0);
    CHECK(w.status == SnapshotResult::Status::io_error);
    CHECK(w.message.find("cannot create") != std::string::npos);
}

TEST_CASE("snapshot: a malformed file is refused at its FILE:LINE and the store is unchanged", "[state]") {
    const std::string H = "regmilter-state 1\n";
    const std::string K = "0123456789abcdef0123456789abcdef";
    const std::string t_ok = "t " + K + " 1700000000 0 1700014400\n";
    struct Case {
        const char* name;
        std::string text;
        int line;
        std::string message;  // a part of the message
    };
    const std::vector<Case> cases = {
        {"empty file", "", 1, "empty file"},
        {"no header", t_ok + "end 1\n", 1, "not a regmilter state snapshot"},
        {"another version", "regmilter-state 2\nend 0\n", 1, "version \"2\" is not supported"},
        {"header with junk", "regmilter-state 1 x\nend 0\n", 1, "not a regmilter state snapshot"},
        {"unknown type", H + "x " + K + " 1 2\nend 1\n", 2, "unknown record type \"x\""},
        {"too few fields", H + "t " + K + " 1 2\nend 1\n", 2, "this one has 4"},
        {"too many fields", H + "c " + K + " 1 2 3\nend 1\n", 2, "this one has 5"},
        {"short key", H + "r 0123 1 2\nend 1\n", 2, "bad key \"0123\""},
        {"upper-case key", H + "r 0123456789ABCDEF0123456789abcdef 1 2\nend 1\n", 2, "bad key"},
        {"negative number", H + "r " + K + " -1 2\nend 1\n", 2, "bad number \"-1\" in field 3"},
        {"number with junk", H + "r " + K + " 1 2x\nend 1\n", 2, "bad number \"2x\" in field 4"},
        {"number too large", H + "r " + K + " 99999999999999999999 2\nend 1\n", 2, "bad number"},
        {"passed before first", H + "t " + K + " 1700000000 1600000000 1800000000\nend 1\n", 2,
         "passed time 1600000000 is before the first-seen time 1700000000"},
        {"passed after 2106", H + "t " + K + " 1 4294967296 1800000000\nend 1\n", 2, "out of range"},
        {"duplicate key", H + t_ok + "# a comment\n" + t_ok + "end 2\n", 4,
         "duplicate key " + K.substr(0, 8)},
        {"cut in a record", H + t_ok + t_ok.substr(0, 10), 3, "this one has 2"},
        {"no end line", H + t_ok, 3, "no end line: the snapshot is truncated"},
        {"end count wrong", H + t_ok + "end 2\n", 3, "counts 2 records, the file has 1"},
        {"end without count", H + "end\n", 2, "the end line is \"end COUNT\""},
        {"text after end", H + t_ok + "end 1\n" + t_ok, 4, "text after the end line"},
        {"NUL byte", H + "r " + K + " 1" + std::string(1, '\0') + " 2\n" + "end 1\n", 2, "NUL byte"},
        {"long line", H + "# " + std::string(300, 'x') + "\nend 0\n", 2, "longer than 255 bytes"},
        {"endless line", H + std::string(5 << 20, 'y'), 2, "longer than 255 bytes"},
    };
    TempDir dir;
    for (const auto& c : cases) {
        INFO(c.name);
        const std::string path = dir.write("snap", c.text);
        MemoryStore s;
        s.count(rkey(9), 1, 0, T0 + 60, T0, Mode::update, soon());
        auto r = s.load(path, T0);
        CHECK(r.status == SnapshotResult::Status::malformed);
        CHECK(r.line == c.line);
        CHECK(r.str().rfind(path + ":" + std::to_string(c.line) + ": ", 0) == 0);
        CHECK_THAT(r.message, Catch::Contains(c.message));
        CHECK(s.size() == 1);  // unchanged
    }
    // The well-formed neighbours load: comments, blank lines, a last line without '\n'.
    const std::string path = dir.write("good", H + "# c\n\n" + t_ok + "c " + K + " 2 1800000000\nend 2");
    MemoryStore s;
    auto r = s.load(path, T0);
    CHECK(r.status == SnapshotResult::Status::ok);
    CHECK(r.str() == path + ": ");
    CHECK(s.size() == 2);
}

TEST_CASE("Redis addresses: HOST:PORT, [IPv6]:PORT, HOST, unix:PATH", "[state]") {
    struct Case {
        const char* text;
        bool ok;
        const char* want;  // describe() of the store, or a part of the error
    };
    const std::vector<Case> cases = {
        {"127.0.0.1:6380", true, "redis 127.0.0.1:6380"},
        {"localhost", true, "redis localhost:6379"},
        {"[::1]:7000", true, "redis [::1]:7000"},
        {"::1", true, "redis [::1]:6379"},
        {"[::1]", true, "redis [::1]:6379"},
        {"unix:/run/redis/redis.sock", true, "redis unix:/run/redis/redis.sock"},
        {"unix:run/redis.sock", false, "must be absolute"},
        {"127.0.0.1:", false, "no port"},
        {"127.0.0.1:99999", false, "1..65535"},
        {"127.0.0.1:6x", false, "not a number"},
        {":6379", false, "no host"},
        {"[::1", false, "no closing"},
        {"[nothost]:1", false, "not an IPv6 address"},
        {"2001:db8::1:6379:", false, "not an address"},
        {"a b:1", false, "bad character"},
        {"", false, "no host"},
    };
    for (const auto& c : cases) {
        INFO(c.text);
        RedisOptions o;
        std::string error;
        bool ok = parse_redis_address(c.text, o, error);
        REQUIRE(ok == c.ok);
        if (ok)
            CHECK(RedisStore(o).describe() == c.want);
        else
            CHECK_THAT(error, Catch::Contains(c.want) && Catch::Contains("unix:/PATH"));
    }
    RedisOptions o;
    o.prefix = std::string(65, 'p');
    CHECK(check_redis_options(o).size() == 1);
    o.prefix = "has space:";
    CHECK(check_redis_options(o).size() == 1);
    o.prefix = std::string(64, 'p');
    CHECK(check_redis_options(o).empty());
    o.timeout = std::chrono::milliseconds(9);
    REQUIRE(check_redis_options(o).size() == 1);
    CHECK(check_redis_options(o)[0] == "timeout_ms = 9 is out of range 10..5000");
    o.timeout = std::chrono::milliseconds(5000);
    CHECK(check_redis_options(o).empty());
    // The longest key stays far below 512 bytes.
    CHECK(RedisStore(o).redis_key(tkey(1)).size() == 64 + 34);
}

TEST_CASE("RedisStore without a server: an error per call, one outage event, then fast failures", "[state]") {
    TempDir dir;
    RedisOptions o;
    o.unix_path = dir.file("no-redis.sock");
    o.backoff_min = std::chrono::milliseconds(60000);  // stays in backoff for the whole test
    RedisStore store(o);
    auto a = store.greylist(tkey(1), ckey(1), rules, T0, Mode::update, soon());
    CHECK(a.status == Status::unreachable);
    CHECK_THAT(a.reason, Catch::Contains("cannot connect to redis unix:" + o.unix_path));
    CHECK(a.event == Event::outage_began);
    auto b = store.count(rkey(1), 1, 5, T0 + 60, T0, Mode::update, soon());
    CHECK(b.status == Status::unreachable);
    CHECK_THAT(b.reason, Catch::Contains("retrying in"));
    CHECK(b.event == Event::none);
    auto c = store.greylist(tkey(1), ckey(1), rules, T0, Mode::peek, Clock::now());
    CHECK(c.status == Status::timeout);  // no time left: not even the backoff check
    CHECK(c.event == Event::none);
}

namespace {

// The store behind a PassMemory, counting what reaches it.
class Counting : public Store {
public:
    MemoryStore inner;
    std::atomic<int> greylists{0}, clients{0}, counts{0};
    bool failing = false;
    GreylistAnswer client(const Key& c, const GreylistRules& r, UnixTime now, Mode mode,
                          Deadline d) override {
        ++clients;
        return inner.client(c, r, now, mode, d);
    }
    GreylistAnswer greylist(const Key& t, const Key& c, const GreylistRules& r, UnixTime now, Mode mode,
                            Deadline d) override {
        ++greylists;
        if (failing) {
            GreylistAnswer a;
            a.status = Status::unreachable;
            a.reason = "down";
            return a;
        }
        return inner.greylist(t, c, r, now, mode, d);
    }
    CounterAnswer count(const Key& k, uint64_t n, uint64_t limit, UnixTime expires, UnixTime now, Mode mode,
                        Deadline d) override {
        ++counts;
        return inner.count(k, n, limit, expires, now, mode, d);
    }
    std::string describe() const override { return "counting"; }
};

GreylistAnswer step(Store& s, int triplet, int client, UnixTime now, const GreylistRules& r = rules) {
    return s.greylist(tkey(triplet), ckey(client), r, now, Mode::update, soon());
}

}  // namespace

TEST_CASE("PassMemory answers a passed triplet again for `remember` seconds without asking", "[state]") {
    auto behind = std::make_shared<Counting>();
    PassMemory pm(behind, PassMemoryOptions{60, 1000});
    CHECK(step(pm, 1, 1, T0).state == TripletState::created);
    CHECK(step(pm, 1, 1, T0 + 10).state == TripletState::early);
    CHECK(step(pm, 1, 1, T0 + 300).state == TripletState::passed_now);
    CHECK(behind->greylists == 3);  // created and early are never remembered
    GreylistAnswer a = step(pm, 1, 1, T0 + 301);
    CHECK(a.ok());
    CHECK(a.state == TripletState::passed);
    CHECK(a.first_seen == T0);
    CHECK(a.client_passes == 1);
    CHECK(step(pm, 1, 1, T0 + 359).state == TripletState::passed);
    CHECK(behind->greylists == 3);
    CHECK(pm.hits() == 2);
    // At until (T0 + 300 + 60) the store is asked again, and its answer remembered anew.
    CHECK(step(pm, 1, 1, T0 + 360).state == TripletState::passed);
    CHECK(behind->greylists == 4);
    CHECK(step(pm, 1, 1, T0 + 419).state == TripletState::passed);
    CHECK(behind->greylists == 4);
    // Another triplet of the same client is its own.
    CHECK(step(pm, 2, 1, T0 + 400).state == TripletState::created);
    CHECK(behind->greylists == 5);
}

TEST_CASE("PassMemory: an allowed client is remembered while auto_allow is on", "[state]") {
    auto behind = std::make_shared<Counting>();
    PassMemory pm(behind, PassMemoryOptions{60, 1000});
    const GreylistRules one{300, 14400, 3110400, 1};  // one passed triplet allows the client
    step(pm, 1, 7, T0, one);
    REQUIRE(step(pm, 1, 7, T0 + 300, one).state == TripletState::passed_now);
    REQUIRE(step(pm, 2, 7, T0 + 301, one).state == TripletState::allowed);
    int asked = behind->greylists;
    GreylistAnswer a = step(pm, 3, 7, T0 + 302, one);  // a new triplet of the allowed client
    CHECK(a.state == TripletState::allowed);
    CHECK(a.client_passes == 1);
    CHECK(behind->greylists == asked);
    // auto_allow turned off (a reload): the remembered client does not count.
    GreylistRules off = one;
    off.auto_allow = 0;
    CHECK(step(pm, 4, 7, T0 + 303, off).state == TripletState::created);
    CHECK(behind->greylists == asked + 1);
}

TEST_CASE("PassMemory: the client step shares what is remembered of an allowed client", "[state]") {
    auto behind = std::make_shared<Counting>();
    PassMemory pm(behind, PassMemoryOptions{60, 1000});
    const GreylistRules one{300, 14400, 3110400, 1};
    auto client_step = [&](int client, UnixTime now, Mode mode = Mode::update) {
        return pm.client(ckey(client), one, now, mode, soon());
    };
    CHECK(client_step(7, T0).state == TripletState::created);  // not allowed: asked, not remembered
    CHECK(client_step(7, T0).state == TripletState::created);
    CHECK(behind->clients == 2);
    step(pm, 1, 7, T0, one);
    REQUIRE(step(pm, 1, 7, T0 + 300, one).state == TripletState::passed_now);
    // Allowed: asked once, then remembered for 60 s, by either step.
    CHECK(client_step(7, T0 + 301).state == TripletState::allowed);
    CHECK(behind->clients == 3);
    GreylistAnswer a = client_step(7, T0 + 302);
    CHECK(a.state == TripletState::allowed);
    CHECK(a.client_passes == 1);
    int asked = behind->greylists;
    CHECK(step(pm, 2, 7, T0 + 303, one).state == TripletState::allowed);
    CHECK(behind->clients == 3);
    CHECK(behind->greylists == asked);
    // A peek always asks; at until (T0 + 301 + 60) the store is asked again.
    CHECK(client_step(7, T0 + 304, Mode::peek).state == TripletState::allowed);
    CHECK(behind->clients == 4);
    CHECK(client_step(7, T0 + 361).state == TripletState::allowed);
    CHECK(behind->clients == 5);
}

TEST_CASE("PassMemory: peeks, counts and failures always reach the store", "[state]") {
    auto behind = std::make_shared<Counting>();
    PassMemory pm(behind, PassMemoryOptions{60, 1000});
    step(pm, 1, 1, T0);
    step(pm, 1, 1, T0 + 300);  // passed_now, remembered
    int asked = behind->greylists;
    CHECK(pm.greylist(tkey(1), ckey(1), rules, T0 + 301, Mode::peek, soon()).state == TripletState::passed);
    CHECK(behind->greylists == asked + 1);
    CHECK(pm.count(rkey(1), 1, 10, T0 + 3600, T0, Mode::update, soon()).admitted);
    CHECK(pm.count(rkey(1), 1, 10, T0 + 3600, T0, Mode::update, soon()).value == 2);
    CHECK(behind->counts == 2);
    // The store fails: a remembered pass is still a pass; nothing new is remembered.
    behind->failing = true;
    CHECK(step(pm, 1, 1, T0 + 302).state == TripletState::passed);
    GreylistAnswer f = step(pm, 2, 1, T0 + 302);
    CHECK(f.status == Status::unreachable);
    CHECK(step(pm, 2, 1, T0 + 303).status == Status::unreachable);
    CHECK(pm.describe() == "counting");
}

TEST_CASE("PassMemory: bounded, and never longer than pass_lifetime", "[state]") {
    auto behind = std::make_shared<Counting>();
    PassMemory pm(behind, PassMemoryOptions{60, 3});
    for (int i = 1; i <= 5; ++i) {
        step(pm, i, i, T0);
        REQUIRE(step(pm, i, i, T0 + 300).state == TripletState::passed_now);
        CHECK(pm.size() <= 3);
    }
    CHECK(pm.size() >= 1);
    // A pass_lifetime shorter than `remember` bounds it: the store is asked after 10 s.
    auto b2 = std::make_shared<Counting>();
    PassMemory short_lived(b2, PassMemoryOptions{60, 1000});
    const GreylistRules brief{300, 14400, 10, 0};
    step(short_lived, 1, 1, T0, brief);
    REQUIRE(step(short_lived, 1, 1, T0 + 300, brief).state == TripletState::passed_now);
    int asked = b2->greylists;
    CHECK(step(short_lived, 1, 1, T0 + 309, brief).state == TripletState::passed);
    CHECK(b2->greylists == asked);
    step(short_lived, 1, 1, T0 + 310, brief);
    CHECK(b2->greylists == asked + 1);
}

TEST_CASE("PassMemory: 8 threads passing and repeating triplets get the answers one thread would",
          "[state][threads]") {
    auto behind = std::make_shared<Counting>();
    PassMemory pm(behind, PassMemoryOptions{60, 64});  // small: the bound is hit while threads race
    const GreylistRules no_auto{300, 14400, 3110400, 0};
    for (int i = 0; i < 200; ++i) step(pm, i, i, T0, no_auto);  // created, one thread
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&, t] {
            for (int round = 0; round < 20; ++round)
                for (int i = 0; i < 200; ++i) {
                    TripletState st = step(pm, (i + t * 25) % 200, 0, T0 + 300 + round, no_auto).state;
                    if (st != TripletState::passed && st != TripletState::passed_now) ++wrong;
                }
        });
    for (auto& th : threads) th.join();
    CHECK(wrong == 0);
    CHECK(pm.size() <= 64);
    CHECK(pm.hits() > 0);
}

TEST_CASE("PassMemory: a full memory drops what expired, and everything when that frees under a quarter",
          "[state]") {
    auto behind = std::make_shared<Counting>();
    PassMemory pm(behind, PassMemoryOptions{60, 4});
    auto pass = [&](int i, UnixTime at) {
        step(pm, i, i, at - 300);
        REQUIRE(step(pm, i, i, at).state == TripletState::passed_now);
    };
    pass(1, T0);
    pass(2, T0);  // both remembered until T0 + 60
    pass(3, T0 + 50);
    pass(4, T0 + 50);
    REQUIRE(pm.size() == 4);
    pass(5, T0 + 70);  // full: 1 and 2 expired (half): 3 and 4 stay
    CHECK(pm.size() == 3);
    int asked = behind->greylists;
    CHECK(step(pm, 3, 3, T0 + 71).state == TripletState::passed);
    CHECK(behind->greylists == asked);  // still remembered
    pass(6, T0 + 71);
    REQUIRE(pm.size() == 4);
    pass(7, T0 + 72);  // full, nothing expired: everything goes, then 7
    CHECK(pm.size() == 1);
    // Too little expired (1 of 8): not walked again at the next insert, cleared.
    PassMemory eight(behind, PassMemoryOptions{60, 8});
    auto pass8 = [&](int i, UnixTime at) {
        step(eight, i, i, at - 300);
        REQUIRE(step(eight, i, i, at).state == TripletState::passed_now);
    };
    pass8(100, T0);
    for (int i = 101; i < 108; ++i) pass8(i, T0 + 50);
    REQUIRE(eight.size() == 8);
    pass8(108, T0 + 61);
    CHECK(eight.size() == 1);
}
