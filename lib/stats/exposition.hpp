// stats: metric families with labels, and the Prometheus text exposition
// format (version 0.0.4): "# HELP" and "# TYPE" lines, then one line per
// sample, label values escaped; histograms as NAME_bucket{le="..."} (the last
// le="+Inf"), NAME_sum and NAME_count.
// A Family finds or adds a series by its label values without a lock: a
// fixed table of buckets, each a list that only grows, new series pushed with
// compare-and-swap; series live as long as their Family. Counting through a
// series reference is a relaxed atomic add (counter.hpp). No I/O here.
// Thread-safe: at() and render() from any thread at any time; a Writer
// belongs to one thread.
#pragma once

#include <array>
#include <atomic>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "stats/counter.hpp"

namespace regmilter::stats {

// Label name and value pairs of one sample, in order.
using Labels = std::vector<std::pair<std::string_view, std::string_view>>;

// Builds the exposition text.
class Writer {
public:
    // The HELP and TYPE lines of a family; `type` is counter, gauge or histogram.
    void family(std::string_view name, std::string_view help, std::string_view type);
    // NAME{LABELS} VALUE
    void sample(std::string_view name, const Labels& labels, uint64_t value);
    void sample(std::string_view name, const Labels& labels, double value);
    // A histogram's _bucket, _sum and _count lines.
    void histogram(std::string_view name, const Labels& labels, const Histogram& h);

    const std::string& text() const { return out_; }
    std::string take() { return std::move(out_); }

private:
    void labels(const Labels& labels);
    std::string out_;
};

// Text format escapes (exposition format 0.0.4). A HELP text: \ as \\ and a
// line feed as \n. A label value: also " as \". Other control bytes and bytes
// outside ASCII become '?' (label values here are ASCII words).
std::string escape_help(std::string_view text);
std::string escape_label_value(std::string_view value);
// A number as the format writes it: shortest round-trip decimal, +Inf, -Inf, NaN.
std::string format_value(double v);
// [a-zA-Z_:][a-zA-Z0-9_:]* (metric names) or [a-zA-Z_][a-zA-Z0-9_]* without a
// leading "__" (label names).
bool valid_metric_name(std::string_view name);
bool valid_label_name(std::string_view name);

// The most series a family holds; the label values of any further series are
// all "overflow" (one shared series), so that a mistake cannot eat the memory.
inline constexpr size_t max_series = 1000;

template <class Metric>
class Family {
public:
    using Shape = typename Metric::Shape;

    // Throws std::invalid_argument for a bad metric or label name (a
    // programming error, found at start-up).
    Family(std::string name, std::string help, std::vector<std::string> label_names, Shape shape = {});
    ~Family();
    Family(const Family&) = delete;
    Family& operator=(const Family&) = delete;

    // The series with these label values (as many as label names), added at
    // first use. The reference stays valid as long as the Family. Allocates
    // only for a new series (may throw std::bad_alloc then).
    Metric& at(std::initializer_list<std::string_view> values);

    // The HELP/TYPE lines and every series, sorted by label values. A family
    // without any series writes only its HELP and TYPE lines.
    void render(Writer& w) const;

    const std::string& name() const { return name_; }

private:
    struct Node {
        Node(std::vector<std::string> v, size_t h, Shape s) : values(std::move(v)), hash(h), metric(s) {}
        std::vector<std::string> values;
        size_t hash;
        Metric metric;
        Node* next = nullptr;
    };
    static constexpr size_t bucket_count = 64;

    static size_t hash_of(std::initializer_list<std::string_view> values);
    static bool same(const Node& n, size_t hash, std::initializer_list<std::string_view> values);
    Node* find(Node* from, size_t hash, std::initializer_list<std::string_view> values) const;

    std::string name_, help_;
    std::vector<std::string> label_names_;
    Shape shape_;
    std::array<std::atomic<Node*>, bucket_count> buckets_{};
    std::atomic<size_t> size_{0};
    Node* overflow_;  // every label "overflow"; used beyond max_series
    std::atomic<bool> overflowed_{false};
};

extern template class Family<Counter>;
extern template class Family<Histogram>;

}  // namespace regmilter::stats
