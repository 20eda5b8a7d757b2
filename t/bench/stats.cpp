// Benchmark: what counting costs on the mail path — stats::Metrics told of
// one SMTP transaction's answers (connect, HELO, MAIL FROM with two registry
// zones and SPF, RCPT, the message), from 1 and from 4 threads at once on the
// same series — the clock reads the session adds for the latency
// histograms, and what one scrape costs (render()). CPU time per
// transaction, to set beside the milter's CPU per transaction in
// BENCHMARKS.md. Prints numbers; never passes or fails on timing.
//
//   bench-stats [TRANSACTIONS]        (default 200000 per thread)
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "stats/metrics.hpp"

using namespace regmilter;

namespace {

double thread_cpu_seconds() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

struct Transaction {
    policy::Facts facts;
    policy::Reply connect, helo, mail, rcpt, data;
};

Transaction typical() {
    Transaction t;
    registry::Entry reg, block;
    reg.status = registry::Status::listed;
    block.status = registry::Status::unlisted;
    t.facts.connect.registry = {reg, block};
    spf::Outcome pass;
    pass.result = spf::Result::pass;
    spf::Outcome none;
    none.result = spf::Result::none;
    t.facts.mail.spf_mail = pass;
    t.facts.mail.spf_helo = none;
    t.mail.reason = "spf:mailfrom:pass";
    return t;
}

// One transaction's answers, as policy::Session gives them.
void answer(stats::Metrics& m, const Transaction& t) {
    using policy::Stage;
    const auto d = std::chrono::microseconds(120);
    m.answered(Stage::connect, t.connect, t.facts, d);
    m.answered(Stage::helo, t.helo, t.facts, d);
    m.answered(Stage::mail, t.mail, t.facts, d);
    m.answered(Stage::rcpt, t.rcpt, t.facts, d);
    m.answered(Stage::data, t.data, t.facts, d);
}

// CPU ns per transaction, from `threads` threads at once, `n` each.
double run(stats::Metrics& m, int threads, long n) {
    Transaction t = typical();
    std::vector<double> cpu(threads);
    std::vector<std::thread> ts;
    for (int i = 0; i < threads; ++i)
        ts.emplace_back([&, i] {
            double c0 = thread_cpu_seconds();
            for (long k = 0; k < n; ++k) answer(m, t);
            cpu[i] = thread_cpu_seconds() - c0;
        });
    for (auto& th : ts) th.join();
    double total = 0;
    for (double c : cpu) total += c;
    return total / double(threads * n) * 1e9;
}

}  // namespace

int main(int argc, char** argv) {
    const long n = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 200000;
    stats::Metrics m;
    answer(m, typical());  // the series exist: what is measured is counting
    double one = run(m, 1, n);
    double four = run(m, 4, n);
    std::printf("stats observer: %.0f ns CPU per transaction (5 answers), 1 thread (n=%ld)\n", one, n);
    std::printf(
        "stats observer: %.0f ns CPU per transaction (5 answers), 4 threads on the same series (n=%ld "
        "each)\n",
        four, n);

    // policy::Session reads the clock before and after each stage when an
    // observer is set: 10 reads per transaction.
    const long reads = 2000000;
    double c0 = thread_cpu_seconds();
    long long sink = 0;
    for (long i = 0; i < reads; ++i) sink += std::chrono::steady_clock::now().time_since_epoch().count() & 1;
    double clock_ns = (thread_cpu_seconds() - c0) / double(reads) * 1e9;
    std::printf("stats clock: %.0f ns CPU per steady_clock read, %.0f ns per transaction (10 reads)%s\n",
                clock_ns, 10 * clock_ns, sink < 0 ? " " : "");

    stats::ScrapeFacts sf;
    dns::Counters dc;
    sf.dns = &dc;
    sf.dns_cache_entries = 1000;
    sf.open_connections = 8;
    sf.config_generation = 1;
    const int scrapes = 2000;
    size_t bytes = 0;
    c0 = thread_cpu_seconds();
    for (int i = 0; i < scrapes; ++i) bytes = m.render(sf).size();
    double per = (thread_cpu_seconds() - c0) / scrapes * 1e6;
    std::printf("stats render: %.0f us CPU per scrape, %zu bytes (n=%d)\n", per, bytes, scrapes);
    return 0;
}
