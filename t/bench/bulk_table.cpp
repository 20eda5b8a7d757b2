// Benchmark: a bulk opt-out table of a million entries: load time, resident
// memory it adds, lookups per second. Prints numbers; never passes or fails
// on timing.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "bulk/bulk.hpp"

using namespace regmilter;

namespace {

long rss_kib() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
    return -1;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
    const size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1000000;
    long baseline = rss_kib();
    std::string text;
    text.reserve(n * 40);
    for (size_t i = 0; i < n; ++i) {
        text += "user" + std::to_string(i) + "@domain" + std::to_string(i % 5000) + ".example";
        text += i % 3 ? " accept\n" : " reject\n";
    }
    auto t0 = std::chrono::steady_clock::now();
    auto loaded = bulk::Table::parse(text, "bench");
    double load_s = seconds_since(t0);
    if (!loaded.value) {
        std::fprintf(stderr, "bulk_table: %s\n",
                     loaded.problems.empty() ? "no table" : loaded.problems[0].str().c_str());
        return 1;
    }
    std::string().swap(text);  // only the table stays resident
    long after = rss_kib();

    bulk::Settings cfg;
    const size_t lookups = 2000000;
    size_t rejected = 0;
    std::string rcpt;
    auto t1 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < lookups; ++i) {
        size_t k = (i * 7919) % (n + n / 4);  // a fifth of them miss the table
        rcpt = "User" + std::to_string(k) + "+tag@Domain" + std::to_string(k % 5000) + ".example";
        rejected += bulk::lookup(loaded.value.get(), rcpt, cfg).choice == bulk::Choice::reject;
    }
    double lookup_s = seconds_since(t1);
    std::printf("bulk_table: entries=%zu load_s=%.2f table_rss_mib=%.1f process_rss_mib=%.1f\n",
                loaded.value->size(), load_s, (after - baseline) / 1024.0, after / 1024.0);
    std::printf(
        "bulk_table: lookups=%zu lookups_per_s=%.0f (address, folded +detail, @domain; %zu rejected)\n",
        lookups, lookups / lookup_s, rejected);
    return 0;
}
