#include "stats/exposition.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <stdexcept>

namespace regmilter::stats {

// ---- counter.hpp ----

const Bounds& latency_bounds() {
    static const Bounds b = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                             0.1,    0.25,    0.5,    1,     2.5,    5,     10,   25};
    return b;
}

Histogram::Histogram(Shape shape) : bounds_(shape.bounds ? shape.bounds : &latency_bounds()) {
    for (size_t i = 0; i < bounds_->size(); ++i) {
        double b = (*bounds_)[i];
        if (!(b > 0) || (i > 0 && !(b > (*bounds_)[i - 1])))
            throw std::invalid_argument("histogram bounds must be positive and increasing");
        bounds_ns_.push_back(static_cast<uint64_t>(std::llround(b * 1e9)));
    }
    buckets_ = std::make_unique<std::atomic<uint64_t>[]>(bounds_ns_.size() + 1);
    for (size_t i = 0; i <= bounds_ns_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(std::chrono::nanoseconds d) noexcept {
    uint64_t ns = d.count() > 0 ? static_cast<uint64_t>(d.count()) : 0;
    // Upper bounds are inclusive (le = "less than or equal").
    size_t i = 0;
    while (i < bounds_ns_.size() && ns > bounds_ns_[i]) ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(ns, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
    Snapshot s;
    uint64_t running = 0;
    for (size_t i = 0; i <= bounds_ns_.size(); ++i) {
        running += buckets_[i].load(std::memory_order_relaxed);
        s.cumulative.push_back(running);
    }
    s.sum_seconds = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
    return s;
}

// ---- text format ----

namespace {

// Backslash and newline escaped as the text format wants, and '"' too in a
// label value; other control and non-ASCII bytes become '?'.
std::string escape(std::string_view text, bool quote) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        unsigned char u = static_cast<unsigned char>(c);
        if (c == '\\')
            out += "\\\\";
        else if (c == '"' && quote)
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else if (u < 0x20 || u >= 0x7f)
            out += '?';
        else
            out += c;
    }
    return out;
}

}  // namespace

std::string escape_help(std::string_view text) {
    return escape(text, false);
}

std::string escape_label_value(std::string_view value) {
    return escape(value, true);
}

std::string format_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    // Plain decimals ("0.00025", not "2.5e-04") where they stay short.
    double a = std::fabs(v);
    auto format =
        a == 0 || (a >= 1e-6 && a < 1e15) ? std::chars_format::fixed : std::chars_format::scientific;
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v, format);
    return std::string(buf, r.ptr);
}

namespace {

bool name_char(char c, bool first, bool colon) {
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
    return alpha || (!first && c >= '0' && c <= '9');
}

}  // namespace

bool valid_metric_name(std::string_view name) {
    if (name.empty()) return false;
    for (size_t i = 0; i < name.size(); ++i)
        if (!name_char(name[i], i == 0, true)) return false;
    return true;
}

bool valid_label_name(std::string_view name) {
    if (name.empty() || name.substr(0, 2) == "__") return false;
    for (size_t i = 0; i < name.size(); ++i)
        if (!name_char(name[i], i == 0, false)) return false;
    return true;
}

void Writer::family(std::string_view name, std::string_view help, std::string_view type) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += escape_help(help);
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
}

void Writer::labels(const Labels& labels) {
    if (labels.empty()) return;
    out_ += '{';
    bool first = true;
    for (const auto& [n, v] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += n;
        out_ += "=\"";
        out_ += escape_label_value(v);
        out_ += '"';
    }
    out_ += '}';
}

void Writer::sample(std::string_view name, const Labels& l, uint64_t value) {
    out_ += name;
    labels(l);
    out_ += ' ';
    out_ += std::to_string(value);
    out_ += '\n';
}

void Writer::sample(std::string_view name, const Labels& l, double value) {
    out_ += name;
    labels(l);
    out_ += ' ';
    out_ += format_value(value);
    out_ += '\n';
}

void Writer::histogram(std::string_view name, const Labels& l, const Histogram& h) {
    Histogram::Snapshot s = h.snapshot();
    const Bounds& bounds = h.bounds();
    std::string bucket = std::string(name) + "_bucket";
    Labels with_le = l;
    with_le.emplace_back("le", "");
    for (size_t i = 0; i < s.cumulative.size(); ++i) {
        std::string le = i < bounds.size() ? format_value(bounds[i]) : "+Inf";
        with_le.back().second = le;
        sample(bucket, with_le, s.cumulative[i]);
    }
    sample(std::string(name) + "_sum", l, s.sum_seconds);
    sample(std::string(name) + "_count", l, s.cumulative.back());
}

// ---- Family ----

template <class Metric>
Family<Metric>::Family(std::string name, std::string help, std::vector<std::string> label_names, Shape shape)
    : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)), shape_(shape) {
    if (!valid_metric_name(name_)) throw std::invalid_argument("bad metric name \"" + name_ + "\"");
    for (const auto& l : label_names_)
        if (!valid_label_name(l) || (std::is_same_v<Metric, Histogram> && l == "le"))
            throw std::invalid_argument("bad label name \"" + l + "\" of " + name_);
    overflow_ = new Node(std::vector<std::string>(label_names_.size(), "overflow"), 0, shape_);
}

template <class Metric>
Family<Metric>::~Family() {
    for (auto& b : buckets_) {
        Node* n = b.load(std::memory_order_acquire);
        while (n) {
            Node* next = n->next;
            delete n;
            n = next;
        }
    }
    delete overflow_;
}

template <class Metric>
size_t Family<Metric>::hash_of(std::initializer_list<std::string_view> values) {
    size_t h = 0;
    for (auto v : values) h = h * 1099511628211u ^ std::hash<std::string_view>{}(v);
    return h;
}

template <class Metric>
bool Family<Metric>::same(const Node& n, size_t hash, std::initializer_list<std::string_view> values) {
    if (n.hash != hash || n.values.size() != values.size()) return false;
    size_t i = 0;
    for (auto v : values)
        if (n.values[i++] != v) return false;
    return true;
}

template <class Metric>
typename Family<Metric>::Node* Family<Metric>::find(Node* from, size_t hash,
                                                    std::initializer_list<std::string_view> values) const {
    for (Node* n = from; n; n = n->next)
        if (same(*n, hash, values)) return n;
    return nullptr;
}

template <class Metric>
Metric& Family<Metric>::at(std::initializer_list<std::string_view> values) {
    if (values.size() != label_names_.size())
        throw std::invalid_argument(name_ + ": " + std::to_string(values.size()) + " label values for " +
                                    std::to_string(label_names_.size()) + " labels");
    size_t hash = hash_of(values);
    std::atomic<Node*>& bucket = buckets_[hash % bucket_count];
    Node* head = bucket.load(std::memory_order_acquire);
    if (Node* n = find(head, hash, values)) return n->metric;
    if (size_.load(std::memory_order_relaxed) >= max_series) {
        overflowed_.store(true, std::memory_order_relaxed);
        return overflow_->metric;
    }
    auto node = new Node(std::vector<std::string>(values.begin(), values.end()), hash, shape_);
    node->next = head;
    // Another thread may push first: look again at what it pushed, then retry.
    while (!bucket.compare_exchange_weak(node->next, node, std::memory_order_release,
                                         std::memory_order_acquire)) {
        if (Node* n = find(node->next, hash, values)) {
            delete node;
            return n->metric;
        }
    }
    size_.fetch_add(1, std::memory_order_relaxed);
    return node->metric;
}

namespace {

void write_series(Writer& w, const std::string& name, const Labels& l, const Counter& c) {
    w.sample(name, l, c.value());
}
void write_series(Writer& w, const std::string& name, const Labels& l, const Histogram& h) {
    w.histogram(name, l, h);
}

}  // namespace

template <class Metric>
void Family<Metric>::render(Writer& w) const {
    w.family(name_, help_, std::is_same_v<Metric, Histogram> ? "histogram" : "counter");
    std::vector<const Node*> nodes;
    for (const auto& b : buckets_)
        for (Node* n = b.load(std::memory_order_acquire); n; n = n->next) nodes.push_back(n);
    std::sort(nodes.begin(), nodes.end(), [](const Node* a, const Node* b) { return a->values < b->values; });
    if (overflowed_.load(std::memory_order_relaxed)) nodes.push_back(overflow_);
    Labels labels;
    for (const Node* n : nodes) {
        labels.clear();
        for (size_t i = 0; i < label_names_.size(); ++i) labels.emplace_back(label_names_[i], n->values[i]);
        write_series(w, name_, labels, n->metric);
    }
}

template class Family<Counter>;
template class Family<Histogram>;

}  // namespace regmilter::stats
