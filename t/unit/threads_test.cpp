// Concurrency (tag [threads], what make check SANITIZE=thread runs with the
// resolver and cache tests): SMTP sessions on several threads while the
// snapshot is swapped under them -- policy::RuntimeHolder directly, and the
// daemon's Service reloading its file (SIGHUP) and its bulk table. Each
// session keeps the snapshot it connected with to its end. Over a strict
// MemoryResolver (and, for the Service, trusted clients that ask no DNS).
#include <catch2/catch.hpp>

#include "../support/config_fixture.hpp"
#include "../support/session_fixture.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "milter/daemon/log.hpp"
#include "milter/daemon/service.hpp"
#include "policy/runtime.hpp"
#include "policy/session.hpp"

using namespace regmilter;
using regmilter::testing::cfg_of;
using regmilter::testing::environment_of;
using regmilter::testing::runtime_of;

namespace {

const policy::Macros no_macros;

// One SMTP transaction; the snapshot it connected with, and what went wrong.
struct Seen {
    unsigned generation = 0;
    std::string problem;  // empty: the whole session used one snapshot
};

Seen one_session(policy::Environment env, const char* ip) {
    policy::Session s(std::move(env));
    policy::ConnectInfo c;
    c.ip = net::Address::parse(ip);
    c.hostname = "mail.example.com";
    s.connect(c);
    auto rt = s.runtime();
    Seen seen;
    if (!rt) return {0, "no snapshot at connect"};
    seen.generation = rt->generation;
    const std::string id = rt->authserv_id;
    s.helo("mail.example.com", no_macros);
    s.mail("<alice@example.com>", no_macros);
    s.rcpt("<bob@example.org>", no_macros);
    s.header("Authentication-Results", id + "; spf=pass");  // forged: claims our id
    s.end_of_headers(no_macros);
    policy::Reply r = s.end_of_message(no_macros);
    s.close();
    if (s.runtime() != rt) return {seen.generation, "snapshot changed during the session"};
    if (r.remove_headers.size() != 1) return {seen.generation, "forged header of " + id + " not removed"};
    bool ours = false;
    for (const auto& h : r.add_headers)
        if (h.name == "Authentication-Results" && h.value.rfind(id + ";", 0) == 0) ours = true;
    if (!ours) return {seen.generation, "no Authentication-Results of " + id};
    return seen;
}

// Runs `sessions` sessions on each of `threads` threads; every problem and
// every backwards step of a thread's generation are collected.
template <class Env>
std::vector<std::string> run_sessions(int threads, int sessions, const char* ip, Env env,
                                      std::atomic<bool>& done) {
    std::vector<std::string> problems;
    std::mutex mu;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&] {
            unsigned last = 0;
            for (int i = 0; i < sessions; ++i) {
                Seen s = one_session(env(), ip);
                std::string p = s.problem;
                if (p.empty() && s.generation < last)
                    p = "generation " + std::to_string(s.generation) + " after " + std::to_string(last);
                last = std::max(last, s.generation);
                if (!p.empty()) {
                    std::lock_guard<std::mutex> g(mu);
                    problems.push_back(p);
                }
            }
        });
    for (auto& th : pool) th.join();
    done = true;
    return problems;
}

}  // namespace

TEST_CASE("threads: sessions on 4 threads while the RuntimeHolder swaps snapshots", "[threads][session]") {
    dns::MemoryResolver dns;
    dns.add("192-0-2-7.reg.example", dns::RrType::a, "127.0.0.2");
    dns.add("192-0-2-7.reg.example", dns::RrType::txt, "registered=2025-01-01");
    dns.add("example.com", dns::RrType::txt, "v=spf1 ip4:192.0.2.0/24 -all");
    const std::string base =
        "[registry reg]\nzone = reg.example\nunregistered = reject\n[spf]\ncheck_helo = no\n";
    auto cfg_a = cfg_of("[milter]\nauthserv_id = a.example.org\n" + base);
    auto cfg_b = cfg_of("[milter]\nauthserv_id = b.example.org\n" + base);

    policy::RuntimeHolder holder;
    auto first = runtime_of(cfg_a, dns, nullptr, "a.example.org");
    holder.install(first);
    std::atomic<bool> done{false};
    // The reloader: a new snapshot (alternating ids, the same warm cache) as
    // fast as it can until the sessions are over.
    unsigned installed = 1;
    std::thread reloader([&] {
        while (!done) {
            bool a = installed % 2 == 0;
            auto next = runtime_of(a ? cfg_a : cfg_b, dns, nullptr, a ? "a.example.org" : "b.example.org");
            next->cache = first->cache;
            next->generation = ++installed;
            holder.install(next);
            std::this_thread::yield();
        }
    });
    auto env = [&holder] {
        policy::Environment e = environment_of(nullptr);
        e.runtime = [&holder] { return holder.current(); };
        return e;
    };
    std::vector<std::string> problems = run_sessions(4, 300, "192.0.2.7", env, done);
    reloader.join();
    INFO((problems.empty() ? std::string() : problems.front()));
    CHECK(problems.empty());
    CHECK(installed > 2);
    CHECK(dns.unexpected().empty());
}

TEST_CASE("threads: the daemon's Service reloads its file and bulk table while sessions run",
          "[threads][daemon]") {
    char tmpl[] = "/tmp/regmilter-threads-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    const std::string dir = tmpl;
    auto write = [&dir](const std::string& name, const std::string& text) {
        std::string p = dir + "/" + name, tmp = p + ".new";
        std::ofstream(tmp, std::ios::trunc) << text;
        std::rename(tmp.c_str(), p.c_str());
        return p;
    };
    std::vector<std::string> logged;
    std::mutex log_mu;
    daemon::log_to([&](int, std::string_view l) {
        std::lock_guard<std::mutex> g(log_mu);
        logged.emplace_back(l);
    });
    std::string table = write("bulk", "a@example.org reject\n");
    auto ini_text = [&table](int n) {
        return "[milter]\nauthserv_id = gen" + std::to_string(n) +
               ".example.org\n[resolver]\nnameservers = "
               "127.0.0.1\n[trust]\nnetworks = 127.0.0.0/8\n[bulk]\ntable = " +
               table + "\n";
    };
    std::string ini = write("regmilter.ini", ini_text(0));
    daemon::Service service(ini);
    REQUIRE(service.start().empty());

    std::atomic<bool> done{false};
    int reloads = 0;
    std::thread reloader([&] {  // the daemon's reload thread: SIGHUP and the table poll
        auto t = std::chrono::steady_clock::now();
        // At least three reloads even when the sessions end first (a loaded
        // machine may schedule this thread late).
        while (!done || reloads < 3) {
            ++reloads;
            write("regmilter.ini", ini_text(reloads));
            service.reload();
            write("bulk", "a@example.org reject\nn" + std::to_string(reloads) + "@example.org accept\n");
            t += std::chrono::seconds(3);  // settled by the next poll
            service.poll_table(t);
            service.poll_table(t + std::chrono::seconds(3));
        }
    });
    // 127.0.0.1 is trusted: no registry, no SPF, no DNS at all.
    std::vector<std::string> problems = run_sessions(
        4, 200, "127.0.0.1", [&service] { return service.environment(); }, done);
    reloader.join();
    daemon::log_to(nullptr);
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
    INFO((problems.empty() ? std::string() : problems.front()));
    CHECK(problems.empty());
    CHECK(service.current()->generation > 3);
    for (const auto& l : logged) CHECK(l.find("refused") == std::string::npos);
}
