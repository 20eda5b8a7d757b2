// Benchmark: greylisting and rate-limit state. Prints numbers; never passes
// or fails on timing.
//
//   bench-state [--count N]
//       MemoryStore: the cost of one greylist check (new triplet, retried
//       triplet) and one rate-limit count in microseconds, the resident memory
//       N triplets take (default 1,000,000), snapshot save and load times and
//       size at N triplets.
//   bench-state --redis ADDR [--password PW] [--latency-only] [--count N] [--threads T]
//       RedisStore against a running server (t/bench/state-redis.sh starts
//       one): the cost of one check on one connection in microseconds, then
//       Redis's used_memory (INFO memory) before and after N new triplets,
//       written by T threads.
#include <hiredis/hiredis.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "greylist/greylist.hpp"
#include "ratelimit/ratelimit.hpp"
#include "state/memory_store.hpp"
#include "state/redis_store.hpp"

using namespace regmilter;

namespace {

constexpr state::UnixTime T0 = 1700000000;

long rss_kib() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
    return -1;
}

// CPU seconds (user + system) of this process so far: less dependent than
// wall time on what else the machine runs.
double cpu_seconds() {
    rusage u;
    getrusage(RUSAGE_SELF, &u);
    return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Triplet i: 65536 client /24 networks, 50 senders per network, distinct recipients.
greylist::Request request(size_t i, std::string& from, std::string& rcpt) {
    uint32_t net = uint32_t(i % 65536);
    from = "sender" + std::to_string(i % 50) + "@example" + std::to_string(net) + ".com";
    rcpt = "user" + std::to_string(i) + "@example.net";
    auto ip = net::Address::v4((10u << 24) | (net << 8) | uint32_t(i % 250 + 1));
    return greylist::Request{ip, from, rcpt};
}

state::Deadline later() {
    return state::deadline_in(std::chrono::seconds(10));
}

struct Cost {
    double wall_us, cpu_us;  // per check
};

// Greylist checks of triplets [first, first + n) at `now`: microseconds per
// check, wall clock and this process's CPU (meaningful with one thread).
Cost time_checks(state::Store& store, size_t first, size_t n, state::UnixTime now, greylist::Outcome want,
                 size_t& unexpected) {
    greylist::Settings s;
    std::string from, rcpt;
    auto t = std::chrono::steady_clock::now();
    double c = cpu_seconds();
    for (size_t i = first; i < first + n; ++i) {
        auto r = greylist::check(store, s, request(i, from, rcpt), now, later());
        unexpected += r.outcome != want;
    }
    return {seconds_since(t) * 1e6 / double(n), (cpu_seconds() - c) * 1e6 / double(n)};
}

int memory_bench(size_t n) {
    std::printf("state: MemoryStore, %zu triplets\n", n);
    size_t unexpected = 0;
    long before = rss_kib();
    state::MemoryStore store(state::MemoryOptions{n + 200000});
    auto t = std::chrono::steady_clock::now();
    Cost new_us = time_checks(store, 0, n, T0, greylist::Outcome::new_, unexpected);
    double fill_s = seconds_since(t);
    long after = rss_kib();
    Cost early_us = time_checks(store, 0, 200000, T0 + 10, greylist::Outcome::early, unexpected);
    Cost pass_us = time_checks(store, 200000, 200000, T0 + 300, greylist::Outcome::passed, unexpected);
    Cost passed_us = time_checks(store, 200000, 200000, T0 + 301, greylist::Outcome::passed, unexpected);
    ratelimit::Settings rs;
    rs.unregistered_recipients = 1000000;
    t = std::chrono::steady_clock::now();
    double c0 = cpu_seconds();
    const size_t counts = 200000;
    for (size_t i = 0; i < counts; ++i)
        unexpected += ratelimit::count(store, rs, net::Address::v4(uint32_t(0x0a000000 + i % 4096 * 256)),
                                       false, ratelimit::Kind::recipients, T0 + 301, later())
                          .outcome != ratelimit::Outcome::pass;
    Cost count_us{seconds_since(t) * 1e6 / double(counts), (cpu_seconds() - c0) * 1e6 / double(counts)};
    std::printf(
        "state: memory, us per call, wall (CPU): greylist check of a new triplet %.2f (%.2f), early retry "
        "%.2f (%.2f), passing retry %.2f (%.2f), passed triplet %.2f (%.2f); rate-limit count %.2f (%.2f)\n",
        new_us.wall_us, new_us.cpu_us, early_us.wall_us, early_us.cpu_us, pass_us.wall_us, pass_us.cpu_us,
        passed_us.wall_us, passed_us.cpu_us, count_us.wall_us, count_us.cpu_us);
    std::printf("state: memory entries=%zu fill_s=%.2f rss_mib=%.1f (%.0f bytes per entry)\n", store.size(),
                fill_s, (after - before) / 1024.0, (after - before) * 1024.0 / double(n));

    char dir[] = "/tmp/regmilter-bench-state-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    const std::string path = std::string(dir) + "/state.snapshot";
    t = std::chrono::steady_clock::now();
    auto saved = store.save(path, T0 + 302);
    double save_s = seconds_since(t);
    if (saved.status != state::SnapshotResult::Status::ok) {
        std::fprintf(stderr, "state: %s\n", saved.str().c_str());
        return 1;
    }
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    double mib = double(f.tellg()) / (1024.0 * 1024.0);
    state::MemoryStore loaded(state::MemoryOptions{n + 200000});
    t = std::chrono::steady_clock::now();
    auto r = loaded.load(path, T0 + 303);
    double load_s = seconds_since(t);
    std::remove(path.c_str());
    rmdir(dir);
    if (r.status != state::SnapshotResult::Status::ok) {
        std::fprintf(stderr, "state: %s\n", r.str().c_str());
        return 1;
    }
    std::printf("state: snapshot of %zu entries: %.1f MiB, save %.2f s, load %.2f s (%zu loaded)\n",
                saved.entries, mib, save_s, load_s, r.entries);
    if (unexpected) std::printf("state: %zu checks gave an unexpected outcome\n", unexpected);
    return unexpected ? 1 : 0;
}

// A number from INFO (used_memory, used_cpu_user, ...), or -1.
double redis_info(const state::RedisOptions& o, const char* section, const char* field) {
    redisContext* c =
        o.unix_path.empty() ? redisConnect(o.host.c_str(), o.port) : redisConnectUnix(o.unix_path.c_str());
    if (!c || c->err) return -1;
    double v = -1;
    if (!o.password.empty()) freeReplyObject(redisCommand(c, "AUTH %s", o.password.c_str()));
    auto* r = static_cast<redisReply*>(redisCommand(c, "INFO %s", section));
    const std::string want = std::string("\n") + field + ":";
    if (r && r->type == REDIS_REPLY_STRING) {
        const char* p = std::strstr(r->str, want.c_str());
        if (p) v = std::atof(p + want.size());
    }
    if (r) freeReplyObject(r);
    redisFree(c);
    return v;
}

int redis_bench(const state::RedisOptions& o, size_t n, int threads, bool latency_only) {
    state::RedisStore store(o);
    const std::string where = store.describe();
    // A base far from the memory bench's and from other runs' triplets.
    const size_t base = size_t(getpid()) * 10000000ul;
    size_t unexpected = 0;
    const size_t m = 20000;
    time_checks(store, base, 100, T0, greylist::Outcome::new_, unexpected);  // connect, load the script
    auto server_cpu = [&] {
        return redis_info(o, "cpu", "used_cpu_user") + redis_info(o, "cpu", "used_cpu_sys");
    };
    double s0 = server_cpu();
    Cost new_us = time_checks(store, base + 100, m, T0, greylist::Outcome::new_, unexpected);
    Cost early_us = time_checks(store, base + 100, m, T0 + 10, greylist::Outcome::early, unexpected);
    Cost pass_us = time_checks(store, base + 100, m, T0 + 300, greylist::Outcome::passed, unexpected);
    Cost passed_us = time_checks(store, base + 100, m, T0 + 301, greylist::Outcome::passed, unexpected);
    double server_us = (server_cpu() - s0) * 1e6 / double(4 * m);
    std::printf(
        "state: %s, one connection, us per call, wall (client CPU): greylist check of a new triplet %.1f "
        "(%.1f), early retry %.1f (%.1f), passing retry %.1f (%.1f), passed triplet %.1f (%.1f); Redis CPU "
        "%.1f us per check\n",
        where.c_str(), new_us.wall_us, new_us.cpu_us, early_us.wall_us, early_us.cpu_us, pass_us.wall_us,
        pass_us.cpu_us, passed_us.wall_us, passed_us.cpu_us, server_us);
    if (latency_only) return unexpected ? 1 : 0;

    double before = redis_info(o, "memory", "used_memory");
    std::atomic<size_t> bad{0};
    std::vector<std::thread> pool;
    const size_t first = base + 1000000;
    auto t = std::chrono::steady_clock::now();
    for (int k = 0; k < threads; ++k)
        pool.emplace_back([&, k] {
            size_t u = 0;
            size_t per = n / size_t(threads);
            time_checks(store, first + size_t(k) * per, per, T0, greylist::Outcome::new_, u);
            bad += u;
        });
    for (auto& th : pool) th.join();
    double fill_s = seconds_since(t);
    double after = redis_info(o, "memory", "used_memory");
    unexpected += bad;
    std::printf(
        "state: %s %zu new triplets from %d threads in %.1f s (%.0f checks/s); used_memory %.1f -> %.1f MiB: "
        "%.0f bytes per triplet, %.0f MiB per 1,000,000\n",
        where.c_str(), n, threads, fill_s, double(n) / fill_s, before / 1048576.0, after / 1048576.0,
        double(after - before) / double(n), double(after - before) / double(n) * 1e6 / 1048576.0);
    if (unexpected) std::printf("state: %zu checks gave an unexpected outcome\n", unexpected);
    return unexpected ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    size_t n = 1000000;
    int threads = 4;
    bool latency_only = false;
    std::string redis, password;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
        if (a == "--count")
            n = std::strtoul(value().c_str(), nullptr, 10);
        else if (a == "--redis")
            redis = value();
        else if (a == "--password")
            password = value();
        else if (a == "--threads")
            threads = std::max(1, std::atoi(value().c_str()));
        else if (a == "--latency-only")
            latency_only = true;
        else {
            std::fprintf(stderr,
                         "usage: bench-state [--count N] [--redis ADDR [--password PW] [--latency-only] "
                         "[--threads T]]\n");
            return 2;
        }
    }
    if (n < 400000) n = 400000;  // the retry phases use the first 400,000
    if (redis.empty()) return memory_bench(n);
    state::RedisOptions o;
    std::string error;
    if (!state::parse_redis_address(redis, o, error)) {
        std::fprintf(stderr, "bench-state: %s\n", error.c_str());
        return 2;
    }
    o.password = password;
    o.timeout = std::chrono::milliseconds(2000);
    return redis_bench(o, n, threads, latency_only);
}
