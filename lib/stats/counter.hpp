// stats: the two things many threads count at once — a Counter (a total that
// only grows) and a Histogram (how many observations fell at or below each
// bound, their sum) — each a few relaxed atomics: no lock, no allocation, no
// system call when counting. Reading is for rendering (exposition.hpp): a
// read while others count sees each atomic at some recent value.
// Thread-safe: any thread may count and read at any time.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

namespace regmilter::stats {

class Counter {
public:
    // What a series of this metric is built from (Family): nothing.
    struct Shape {};
    Counter() = default;
    explicit Counter(Shape) {}
    Counter(const Counter&) = delete;
    Counter& operator=(const Counter&) = delete;

    void add(uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
    uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<uint64_t> value_{0};
};

// Upper bounds of a histogram's buckets in seconds, increasing; the +Inf
// bucket is implicit.
using Bounds = std::vector<double>;

// Latencies of the SMTP stages: 100 µs (a warm decision) to 25 s (the
// largest [resolver] stage_timeout_ms).
const Bounds& latency_bounds();

// What a histogram is built from: its bounds, which must outlive it (a
// static Bounds); null: latency_bounds().
struct HistogramShape {
    const Bounds* bounds = nullptr;
};

class Histogram {
public:
    using Shape = HistogramShape;
    explicit Histogram(Shape shape = {});
    Histogram(const Histogram&) = delete;
    Histogram& operator=(const Histogram&) = delete;

    // One observation; a negative duration counts as 0.
    void observe(std::chrono::nanoseconds d) noexcept;

    struct Snapshot {
        std::vector<uint64_t> cumulative;  // per bound, then +Inf (= the count)
        double sum_seconds = 0;
    };
    // Cumulative counts as the exposition format wants them; the +Inf bucket
    // is the sum of all buckets, so it always equals the count rendered.
    Snapshot snapshot() const;
    const Bounds& bounds() const { return *bounds_; }

private:
    const Bounds* bounds_;
    std::vector<uint64_t> bounds_ns_;
    std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // per bound, then +Inf; not cumulative
    std::atomic<uint64_t> sum_ns_{0};
};

}  // namespace regmilter::stats
