// daemon: the parts of the milter that run without an MTA — carrying out a
// Reply (status codes, '%' escaping, the order of header edits, a refused
// edit), and the Service (start, SIGHUP reload, a broken file refused, the
// bulk table reloaded once a change has settled, draining).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "milter/daemon/log.hpp"
#include "milter/daemon/mta.hpp"
#include "milter/daemon/service.hpp"
#include "state/memory_store.hpp"

using namespace regmilter;
using policy::Action;

namespace {

// Records every call; refuses the call named in `refuse`.
class FakeMta : public daemon::Mta {
public:
    std::vector<std::string> calls;
    std::string refuse;
    bool set_reply(const std::string& code, const std::string& xcode, const std::string& text) override {
        return record("reply " + code + " " + xcode + " " + daemon::escape_reply_text(text));
    }
    bool insert_header(int index, const std::string& name, const std::string& value) override {
        return record("insert " + std::to_string(index) + " " + name + ": " + value);
    }
    bool remove_header(const std::string& name, int index) override {
        return record("remove " + name + "[" + std::to_string(index) + "]");
    }
    bool remove_rcpt(const std::string& arg) override { return record("delrcpt " + arg); }

private:
    bool record(std::string call) {
        bool ok = refuse.empty() || call.rfind(refuse, 0) != 0;
        calls.push_back(std::move(call));
        return ok;
    }
};

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/regmilter-daemon-XXXXXX";
        REQUIRE(mkdtemp(tmpl));
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
    std::string write(const std::string& name, const std::string& text) const {
        std::string p = path + "/" + name, tmp = p + ".new";
        std::ofstream(tmp, std::ios::trunc) << text;
        std::rename(tmp.c_str(), p.c_str());
        return p;
    }
};

// Captures the daemon's log lines for one test.
struct LogCapture {
    std::vector<std::string> lines;
    LogCapture() {
        daemon::log_to([this](int, std::string_view l) { lines.emplace_back(l); });
    }
    ~LogCapture() { daemon::log_to(nullptr); }
    bool has(const std::string& part) const {
        for (const auto& l : lines)
            if (l.find(part) != std::string::npos) return true;
        return false;
    }
};

}  // namespace

TEST_CASE("daemon: each action becomes its libmilter status; reply texts escape %", "[daemon]") {
    struct Case {
        Action action;
        sfsistat want;
    };
    const Case cases[] = {{Action::continue_, SMFIS_CONTINUE}, {Action::tag, SMFIS_CONTINUE},
                          {Action::accept, SMFIS_ACCEPT},      {Action::tempfail, SMFIS_TEMPFAIL},
                          {Action::reject, SMFIS_REJECT},      {Action::discard, SMFIS_DISCARD}};
    for (const auto& c : cases) {
        INFO(policy::to_string(c.action));
        FakeMta mta;
        policy::Reply r;
        r.action = c.action;
        if (c.action == Action::reject || c.action == Action::tempfail) {
            r.code = c.action == Action::reject ? "550" : "451";
            r.xcode = c.action == Action::reject ? "5.7.23" : "4.7.24";
            r.text = "100% of example.com's mail comes from elsewhere";
        }
        std::string failed;
        CHECK(daemon::carry_out(mta, r, false, failed) == c.want);
        CHECK(failed.empty());
        if (!r.code.empty()) {
            REQUIRE(mta.calls.size() == 1);
            CHECK(mta.calls[0] ==
                  "reply " + r.code + " " + r.xcode + " 100%% of example.com's mail comes from elsewhere");
        } else {
            CHECK(mta.calls.empty());
        }
    }
    CHECK(daemon::escape_reply_text("%%x%") == "%%%%x%%");
}

TEST_CASE("daemon: end-of-message edits in order — forged headers out first, ours at the top", "[daemon]") {
    policy::Reply r;
    r.remove_headers = {{"Authentication-Results", 2}};
    r.add_headers = {{"Authentication-Results", "mx.example.org; spf=pass"}, {"Received-SPF", "pass"}};
    r.remove_rcpts = {"<Bob@Example.org>"};
    FakeMta mta;
    std::string failed;
    CHECK(daemon::carry_out(mta, r, true, failed) == SMFIS_CONTINUE);
    CHECK(mta.calls == std::vector<std::string>{"remove Authentication-Results[2]",
                                                "insert 0 Authentication-Results: mx.example.org; spf=pass",
                                                "insert 1 Received-SPF: pass", "delrcpt <Bob@Example.org>"});
    // Not at other stages.
    FakeMta before;
    CHECK(daemon::carry_out(before, r, false, failed) == SMFIS_CONTINUE);
    CHECK(before.calls.empty());
}

TEST_CASE("daemon: an edit the MTA refuses stops the edits and is reported", "[daemon]") {
    policy::Reply r;
    r.remove_headers = {{"Authentication-Results", 1}};
    r.add_headers = {{"Authentication-Results", "x"}};
    r.remove_rcpts = {"<a@example.org>", "<b@example.org>"};
    FakeMta mta;
    mta.refuse = "delrcpt";  // an MTA that did not grant SMFIF_DELRCPT
    std::string failed;
    daemon::carry_out(mta, r, true, failed);
    CHECK(failed == "could not remove recipient <a@example.org>");
    CHECK(mta.calls.size() == 3);  // the forged header went before anything failed
    CHECK(mta.calls[0] == "remove Authentication-Results[1]");
}

TEST_CASE("daemon: start, reload, a broken file refused and the running snapshot kept", "[daemon]") {
    TempDir dir;
    LogCapture log;
    std::string ini = dir.write(
        "regmilter.ini", "[milter]\nauthserv_id = mx.example.org\n[resolver]\nnameservers = 127.0.0.1\n");
    daemon::Service service(ini);
    CHECK(service.start().empty());
    REQUIRE(service.current());
    CHECK(service.current()->generation == 1);
    CHECK(service.current()->authserv_id == "mx.example.org");

    dir.write("regmilter.ini",
              "[milter]\nauthserv_id = other.example.org\n[resolver]\nnameservers = 127.0.0.1\n");
    service.reload();
    CHECK(service.current()->generation == 2);
    CHECK(service.current()->authserv_id == "other.example.org");
    CHECK(log.has("reloaded " + ini + ": configuration generation 2, bulk table none"));

    auto kept = service.current();
    dir.write("regmilter.ini", "[milter]\nmode = sometimes\n[nonsense\n");
    service.reload();
    CHECK(service.current() == kept);
    CHECK(log.has("reload refused: " + ini + ":2: [milter] mode: \"sometimes\" is not a valid choice"));
    CHECK(log.has("keeping configuration generation 2"));

    daemon::Service broken(dir.path + "/missing.ini");
    auto problems = broken.start();
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].str() == dir.path + "/missing.ini: cannot read: No such file or directory");
    CHECK_FALSE(broken.current());
}

TEST_CASE("daemon: a configuration without a bulk table starts (no table is watched)", "[daemon]") {
    // Regression: with no [bulk] table the service once called adopt() on an
    // empty std::optional, which crashed the start when the memory under it
    // was not zero. The bytes under the Service are made garbage first.
    TempDir dir;
    std::string ini = dir.write("regmilter.ini", "[resolver]\nnameservers = 127.0.0.1\n");
    alignas(daemon::Service) unsigned char storage[sizeof(daemon::Service)];
    std::memset(storage, 0xA5, sizeof storage);
    auto* service = new (storage) daemon::Service(ini);
    CHECK(service->start().empty());
    CHECK_FALSE(service->current()->bulk_table);
    service->poll_table(std::chrono::steady_clock::now());
    service->reload();
    CHECK(service->current()->generation == 2);
    service->~Service();
}

TEST_CASE("daemon: the bulk table is reloaded once a change has settled; a broken one is refused once",
          "[daemon]") {
    using std::chrono::seconds;
    TempDir dir;
    LogCapture log;
    std::string table = dir.write("bulk", "a@example.org reject\n");
    std::string ini =
        dir.write("regmilter.ini", "[resolver]\nnameservers = 127.0.0.1\n[bulk]\ntable = " + table + "\n");
    daemon::Service service(ini);
    REQUIRE(service.start().empty());
    CHECK(service.current()->bulk_table->size() == 1);
    auto t0 = std::chrono::steady_clock::now();

    service.poll_table(t0);  // unchanged
    CHECK(service.current()->generation == 1);
    dir.write("bulk", "a@example.org reject\nb@example.org reject\n");
    service.poll_table(t0 + seconds(10));
    CHECK(service.current()->generation == 1);  // changed, not settled
    service.poll_table(t0 + seconds(12));
    CHECK(service.current()->generation == 2);
    CHECK(service.current()->bulk_table->size() == 2);
    CHECK(log.has("bulk table " + table + " changed: 2 entries, configuration generation 2"));

    dir.write("bulk", "a@example.org maybe\n");
    service.poll_table(t0 + seconds(20));
    service.poll_table(t0 + seconds(22));
    service.poll_table(t0 + seconds(30));
    CHECK(service.current()->bulk_table->size() == 2);
    size_t refusals = 0;
    for (const auto& l : log.lines)
        refusals += l.find("bulk table reload refused: " + table + ":1:") != std::string::npos;
    CHECK(refusals == 1);
}

TEST_CASE("daemon: a draining service turns new sessions away", "[daemon]") {
    TempDir dir;
    std::string ini = dir.write("regmilter.ini", "[resolver]\nnameservers = 127.0.0.1\n");
    daemon::Service service(ini);
    REQUIRE(service.start().empty());
    policy::Session s(service.environment());
    policy::ConnectInfo c;
    c.ip = net::Address::parse("127.0.0.1");
    CHECK(s.connect(c).action == Action::continue_);
    service.begin_drain();
    auto r = s.connect(c);
    CHECK(r.action == Action::tempfail);
    CHECK(r.xcode == "4.3.2");
}

TEST_CASE("daemon: the state store outlives reloads; its snapshot is read at start and saved at stop",
          "[daemon][throttle]") {
    TempDir dir;
    LogCapture log;
    const std::string snap = dir.path + "/state";
    auto config = [&](const std::string& state) {
        return dir.write("regmilter.ini",
                         "[resolver]\nnameservers = 127.0.0.1\n[state]\nsnapshot = " + snap + "\n" + state);
    };
    std::string ini = config("");
    daemon::Service service(ini);
    REQUIRE(service.start().empty());
    CHECK_FALSE(service.state().current());  // made after the privileges are dropped
    service.state().start(*service.current()->config);
    CHECK(log.has("state: no snapshot " + snap + " yet; starting with empty state"));
    auto store = service.state().current();
    REQUIRE(store);
    CHECK(service.environment().store() == store);  // what sessions get
    auto* memory = dynamic_cast<state::MemoryStore*>(store.get());
    REQUIRE(memory);
    const state::UnixTime now = state::wall_now();
    auto k = state::Key::of(state::KeyKind::triplet, "one");
    auto c = state::Key::of(state::KeyKind::client, "net");
    memory->greylist(k, c, {}, now, state::Mode::update, state::deadline_in(std::chrono::seconds(1)));

    // A reload that leaves [state] as it is keeps the very store.
    config("snapshot_interval = 60\n");
    service.reload();
    CHECK(service.state().current() == store);
    CHECK_FALSE(log.has("[state] changed"));
    // One that changes max_entries makes a new store and carries the entries over.
    config("max_entries = 2000\n");
    service.reload();
    auto next = service.state().current();
    CHECK(next != store);
    CHECK(
        log.has("reload: [state] changed: greylisting and rate limits now in memory (at most 2000 entries, "
                "snapshot " +
                snap + "); 1 entries kept from the previous memory store"));
    CHECK(dynamic_cast<state::MemoryStore&>(*next).size() == 1);

    service.state().stop();  // SIGTERM, after the drain
    CHECK(log.has("state: saved 1 entries to " + snap));
    std::ifstream f(snap);
    std::string first;
    std::getline(f, first);
    CHECK(first == "regmilter-state 1");

    // The next start reads it; a malformed one is refused with FILE:LINE and the store starts empty.
    daemon::Service again(ini);
    REQUIRE(again.start().empty());
    again.state().start(*again.current()->config);
    CHECK(log.has("state: read 1 entries from " + snap));
    CHECK(dynamic_cast<state::MemoryStore&>(*again.state().current()).size() == 1);
    dir.write("state", "regmilter-state 1\nx 1 2 3\nend 1\n");
    daemon::Service broken(ini);
    REQUIRE(broken.start().empty());
    broken.state().start(*broken.current()->config);
    CHECK(log.has(snap +
                  ":2: unknown record type \"x\" (want t, c, r or end); state snapshot refused, starting "
                  "with empty state"));
    CHECK(dynamic_cast<state::MemoryStore&>(*broken.state().current()).size() == 0);
}
