// optout-load: the milter's RCPT opt-out lookups under load, for
// t/bench/registry-zone.sh. THREADS threads, each with its own ldns resolver
// behind one shared dns::Cache (as the milter's sessions are), ask
// bulk::lookup_zones for COUNT generated recipients "userI@dJ.example"
// (I uniform in 1..2*N, J = I mod 1000: about half of them in a table of N
// entries that the bench published, the rest only under their @domain),
// twice: cold (an empty cache), then warm (the same recipients again).
// Prints one line per pass:
//   PASS: COUNT lookups, THREADS threads, MS ms, R lookups/s, p50 A ms, p99 B ms,
//         queries Q (cache hits H), opted-out X, opted-in Y, none Z, errors E
//
//   optout-load --nameserver NS --zone ZONE --table-size N [--threads T]
//               [--count C] [--timeout-ms MS]
//
// Exit: 0 when both passes ran (whatever the numbers), 2 on bad usage.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bulk/optout.hpp"
#include "dns/cache.hpp"
#include "dns/ldns_resolver.hpp"

#include "../support/nameserver_arg.hpp"

using namespace regmilter;

namespace {

int usage() {
    std::fprintf(stderr,
                 "usage: optout-load --nameserver NS --zone ZONE --table-size N [--threads T] [--count C] "
                 "[--timeout-ms MS]\n");
    return 2;
}

struct Tally {
    std::vector<double> ms;          // per lookup
    std::array<size_t, 4> status{};  // lookups per bulk::ZoneStatus (opted-out, opted-in, none, error)
};

// One pass over `rcpts` with `threads` threads; each takes every threads-th recipient.
Tally pass(const dns::ResolverOptions& opt, const std::shared_ptr<dns::Cache>& cache,
           const std::vector<std::string>& rcpts, const std::string& zone, int threads, int timeout_ms) {
    std::vector<Tally> per(threads);
    std::vector<std::thread> pool;
    const std::vector<std::string> zones{zone};
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            std::string error;
            auto up = dns::LdnsResolver::create(opt, error);
            if (!up) {
                std::fprintf(stderr, "optout-load: %s\n", error.c_str());
                return;
            }
            dns::CachingResolver dns(std::move(up), cache);
            Tally& mine = per[t];
            for (size_t i = t; i < rcpts.size(); i += threads) {
                auto t0 = std::chrono::steady_clock::now();
                auto z = bulk::lookup_zones(dns, rcpts[i], zones, "+",
                                            dns::deadline_in(std::chrono::milliseconds(timeout_ms)));
                mine.ms.push_back(
                    std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
                ++mine.status.at(static_cast<size_t>(z.status));
            }
        });
    for (auto& th : pool) th.join();
    Tally all;
    for (auto& p : per) {
        all.ms.insert(all.ms.end(), p.ms.begin(), p.ms.end());
        for (size_t s = 0; s < all.status.size(); ++s) all.status[s] += p.status[s];
    }
    return all;
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, size_t(p * double(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
    dns::ResolverOptions opt;
    opt.retries = 1;
    std::string zone;
    long table_size = 0, count = 20000;
    int threads = 100, timeout_ms = 5000;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (i + 1 >= argc) return usage();
        std::string v = argv[++i];
        if (a == "--nameserver") {
            if (!testing::add_nameserver(opt, v, "optout-load")) return 2;
        } else if (a == "--zone") {
            zone = v;
        } else if (a == "--table-size") {
            table_size = std::strtol(v.c_str(), nullptr, 10);
        } else if (a == "--threads") {
            threads = int(std::strtol(v.c_str(), nullptr, 10));
        } else if (a == "--count") {
            count = std::strtol(v.c_str(), nullptr, 10);
        } else if (a == "--timeout-ms") {
            timeout_ms = int(std::strtol(v.c_str(), nullptr, 10));
        } else {
            return usage();
        }
    }
    if (zone.empty() || opt.nameservers.empty() || table_size < 1 || threads < 1 || threads > 1000 ||
        count < 1 || count > 10000000 || timeout_ms < 100)
        return usage();

    std::mt19937_64 rng(42);
    std::uniform_int_distribution<long> pick(1, 2 * table_size);
    std::vector<std::string> rcpts;
    rcpts.reserve(size_t(count));
    for (long i = 0; i < count; ++i) {
        long u = pick(rng);
        rcpts.push_back("user" + std::to_string(u) + "@d" + std::to_string(u % 1000) + ".example");
    }
    dns::CacheOptions copt;
    copt.max_entries = 10000000;
    auto cache = std::make_shared<dns::Cache>(copt);
    for (const char* name : {"cold", "warm"}) {
        auto before = cache->stats();
        auto t0 = std::chrono::steady_clock::now();
        Tally t = pass(opt, cache, rcpts, zone, threads, timeout_ms);
        double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        auto after = cache->stats();
        std::printf(
            "%s: %zu lookups, %d threads, %.0f ms, %.0f lookups/s, p50 %.2f ms, p99 %.2f ms, queries %llu "
            "(cache "
            "hits %llu), opted-out %zu, opted-in %zu, none %zu, errors %zu\n",
            name, t.ms.size(), threads, ms, ms > 0 ? double(t.ms.size()) * 1000.0 / ms : 0.0,
            percentile(t.ms, 0.5), percentile(t.ms, 0.99),
            static_cast<unsigned long long>(after.hits + after.misses - before.hits - before.misses),
            static_cast<unsigned long long>(after.hits - before.hits), t.status[0], t.status[1], t.status[2],
            t.status[3]);
    }
    return 0;
}
