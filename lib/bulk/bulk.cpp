#include "bulk/bulk.hpp"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>

#include "util/file.hpp"
#include "util/strings.hpp"

namespace regmilter::bulk {

using util::iequals;
using util::lower;
using util::trim;

namespace {

constexpr size_t max_address = 1000;  // longer than any RFC 5321 path (256)

// normalize() and normalize_keep_local_case(): fold_local lower-cases the local part too.
std::string normalize_address(std::string_view a, bool fold_local) {
    a = trim(a);
    if (a.size() > max_address) return {};
    if (a.size() >= 2 && a.front() == '<' && a.back() == '>') a = trim(a.substr(1, a.size() - 2));
    // RFC 5321 §4.1.2 / Appendix C: a source route "@a,@b:user@d" is ignored.
    if (!a.empty() && a.front() == '@') {
        auto colon = a.find(':');
        if (colon == std::string_view::npos) return {};
        a = a.substr(colon + 1);
    }
    std::string local;
    std::string_view rest;
    if (!a.empty() && a.front() == '"') {
        // RFC 5321 §4.1.2 Quoted-string: backslash escapes the next character.
        size_t i = 1;
        bool closed = false;
        for (; i < a.size(); ++i) {
            char c = a[i];
            if (c == '\\' && i + 1 < a.size()) {
                local += a[++i];
            } else if (c == '"') {
                closed = true;
                ++i;
                break;
            } else {
                local += c;
            }
        }
        if (!closed) return {};
        rest = a.substr(i);
        if (!rest.empty() && rest.front() != '@') return {};
    } else {
        auto at = a.rfind('@');
        local = std::string(a.substr(0, at));
        rest = at == std::string_view::npos ? std::string_view() : a.substr(at);
    }
    for (char c : local)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return {};
    for (char c : rest)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '"' || c == '<' || c == '>') return {};
    if (rest.size() == 1) return {};  // "user@" has no domain
    return (fold_local ? lower(local) : local) + lower(rest);
}

}  // namespace

std::string normalize(std::string_view a) {
    return normalize_address(a, true);
}

std::string normalize_keep_local_case(std::string_view a) {
    return normalize_address(a, false);
}

namespace {

// One table line (comment and blanks already removed): KEY accept|reject.
// Returns "" and sets key (as the table compares it) and choice, and with
// `written` also the key with the local part as written; or says what is wrong.
std::string parse_entry(std::string_view line, std::string& key, Choice& choice,
                        std::string* written = nullptr) {
    if (line.size() > max_address + 16)
        return "line longer than " + std::to_string(max_address + 16) + " characters";
    auto words = util::split(line, " \t");
    if (words.size() != 2) return "\"" + std::string(line) + "\": want KEY accept|reject";
    if (words[1] == "accept")
        choice = Choice::accept;
    else if (words[1] == "reject")
        choice = Choice::reject;
    else
        return "\"" + std::string(words[1]) + "\" is not accept or reject";
    key.clear();
    if (words[0].size() > 1 && words[0].front() == '@') {
        key = normalize("x" + std::string(words[0]));
        if (!key.empty()) key.erase(0, 1);
        if (written) *written = key;
    } else if (words[0].find('@') != std::string_view::npos && words[0].front() != '@') {
        key = normalize(words[0]);
        if (written) *written = normalize_keep_local_case(words[0]);
    }
    if (key.empty() || key.find('@') == std::string::npos)
        return "\"" + std::string(words[0]) + "\" is not user@domain or @domain";
    for (char c : key)
        if (static_cast<unsigned char>(c) < 0x20)
            return "control characters in \"" + std::string(words[0]) + "\"";
    return "";
}

// The line without its comment: '#' at the start or after a blank.
std::string_view without_comment(std::string_view line) {
    for (size_t i = 0; i < line.size(); ++i)
        if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) return line.substr(0, i);
    return line;
}

// Calls fn(line number, line) for each line that is not blank or a comment.
template <typename Fn>
void for_each_entry_line(std::string_view text, Fn fn) {
    int no = 0;
    for (size_t pos = 0; pos < text.size();) {
        size_t nl = text.find('\n', pos);
        std::string_view line =
            text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? text.size() : nl + 1;
        ++no;
        line = trim(without_comment(line));
        if (!line.empty()) fn(no, line);
    }
}

}  // namespace

Table::Loaded Table::parse(std::string_view text, std::string_view name) {
    Loaded res;
    auto error = [&](int line, std::string msg) {
        if (res.problems.size() < 100) res.problems.push_back({std::string(name), line, std::move(msg)});
    };
    auto t = std::make_shared<Table>();
    std::vector<int> lines;  // each key's line, for duplicate errors
    std::string key;
    for_each_entry_line(text, [&](int no, std::string_view line) {
        Choice choice = Choice::accept;
        if (std::string err = parse_entry(line, key, choice); !err.empty()) {
            error(no, std::move(err));
            return;
        }
        if (!res.problems.empty()) return;  // only errors from here on: no table to build
        if (t->arena_.size() + key.size() + 1 > std::numeric_limits<uint32_t>::max()) {
            error(no, "table larger than 4 GiB");
            return;
        }
        t->starts_.push_back(static_cast<uint32_t>(t->arena_.size()));
        t->arena_ += key;
        t->arena_.push_back(static_cast<char>(choice));
        lines.push_back(no);
    });
    if (!res.problems.empty()) return res;
    const size_t n = lines.size();
    t->starts_.push_back(static_cast<uint32_t>(t->arena_.size()));
    t->arena_.shrink_to_fit();
    t->starts_.shrink_to_fit();
    size_t cap = 16;
    while (cap < n + n / 2) cap *= 2;  // at most 2/3 full
    t->slots_.assign(n ? cap : 0, 0);
    const size_t mask = cap - 1;
    std::hash<std::string_view> hash;
    for (uint32_t i = 0; i < n; ++i) {
        std::string_view k = t->key(i);
        size_t at = hash(k) & mask;
        for (; t->slots_[at] != 0; at = (at + 1) & mask) {
            uint32_t other = t->slots_[at] - 1;
            if (t->key(other) != k) continue;
            error(lines[i],
                  "duplicate key \"" + std::string(k) + "\", first at line " + std::to_string(lines[other]));
            break;
        }
        if (t->slots_[at] == 0) t->slots_[at] = i + 1;
    }
    if (!res.problems.empty()) return res;
    res.value = std::move(t);
    return res;
}

Entries read_entries(std::string_view text, std::string_view name) {
    Entries out;
    Table::Loaded checked = Table::parse(text, name);  // the same errors, duplicates included
    if (!checked.ok()) {
        out.problems = std::move(checked.problems);
        return out;
    }
    out.entries.reserve(checked.value->size());
    for_each_entry_line(text, [&](int no, std::string_view line) {
        Entry e;
        e.line = no;
        parse_entry(line, e.key, e.choice, &e.written);
        out.entries.push_back(std::move(e));
    });
    return out;
}

Table::Loaded Table::load(const std::string& path) {
    std::string text, error;
    if (!util::read_file(path, text, error)) {
        Loaded r;
        r.problems.push_back({path, 0, "cannot read: " + error});
        return r;
    }
    return parse(text, path);
}

std::optional<Choice> Table::find(std::string_view k) const {
    if (slots_.empty()) return std::nullopt;
    const size_t mask = slots_.size() - 1;
    for (size_t at = std::hash<std::string_view>()(k) & mask; slots_[at] != 0; at = (at + 1) & mask) {
        uint32_t i = slots_[at] - 1;
        if (key(i) == k) return static_cast<Choice>(arena_[starts_[i + 1] - 1]);
    }
    return std::nullopt;
}

Lookup lookup(const Table* table, std::string_view rcpt, const Settings& cfg) {
    Lookup l;
    l.choice = cfg.default_choice;
    l.key = "default";
    std::string addr = normalize(rcpt);
    auto at = addr.rfind('@');
    if (!table || addr.empty() || at == std::string::npos) return l;
    if (auto c = table->find(addr)) {
        l.choice = *c;
        l.key = addr;
        return l;
    }
    std::string_view local = std::string_view(addr).substr(0, at);
    std::string_view domain = std::string_view(addr).substr(at);  // "@domain"
    if (!cfg.recipient_delimiter.empty()) {
        auto d = local.find_first_of(cfg.recipient_delimiter);
        if (d != std::string_view::npos && d > 0) {
            std::string folded = std::string(local.substr(0, d)) + std::string(domain);
            if (auto c = table->find(folded)) {
                l.choice = *c;
                l.key = folded;
                return l;
            }
        }
    }
    if (auto c = table->find(domain)) {
        l.choice = *c;
        l.key = std::string(domain);
    }
    return l;
}

TableFile::Refresh TableFile::read(const util::FileStamp& stamp) {
    Refresh r;
    has_pending_ = false;
    if (!stamp.exists) {
        r.problems.push_back({path_, 0, std::string("cannot read: ") + std::strerror(stamp.error)});
    } else {
        Table::Loaded l = Table::load(path_);
        r.problems = std::move(l.problems);
        r.table = std::move(l.value);
    }
    if (r.table) {
        r.what = Refresh::What::loaded;
        table_ = r.table;
        loaded_ = stamp;
        refused_ = {};
    } else {
        r.what = Refresh::What::refused;
        refused_ = stamp;
    }
    return r;
}

void TableFile::adopt(std::shared_ptr<const Table> table, const util::FileStamp& stamp) {
    table_ = std::move(table);
    loaded_ = stamp;
    refused_ = {};
    has_pending_ = false;
}

TableFile::Refresh TableFile::load() {
    return read(util::stamp_of(path_));
}

TableFile::Refresh TableFile::poll(Clock::time_point now) {
    util::FileStamp stamp = util::stamp_of(path_);
    if (stamp == loaded_ || stamp == refused_) {
        has_pending_ = false;
        return {};
    }
    if (!has_pending_ || stamp != pending_) {
        pending_ = stamp;
        pending_since_ = now;
        has_pending_ = true;
    }
    if (now - pending_since_ < settle_) {
        Refresh r;
        r.what = Refresh::What::waiting;
        return r;
    }
    return read(stamp);
}

Signals sender_signals(std::string_view mail_from, const std::optional<net::Address>& ip,
                       const Settings& cfg) {
    Signals s;
    std::string addr = normalize(mail_from);
    auto at = addr.rfind('@');
    if (at != std::string::npos) {
        std::string_view domain = std::string_view(addr).substr(at + 1);
        for (const auto& d : cfg.senders.domains) {
            bool match =
                domain == d || (domain.size() > d.size() && domain.substr(domain.size() - d.size()) == d &&
                                domain[domain.size() - d.size() - 1] == '.');
            if (match) {
                s.signals.push_back("sender:domain:" + d);
                break;
            }
        }
    }
    if (ip) {
        for (const auto& n : cfg.senders.networks.networks())
            if (n.contains(*ip)) {
                s.signals.push_back("sender:network:" + n.str());
                break;
            }
    }
    return s;
}

void HeaderSignals::observe(std::string_view name, std::string_view value) noexcept {
    if (!precedence_ && iequals(name, "Precedence")) {
        // RFC 2076 §3.9: the first word of the value.
        std::string_view v = trim(value);
        size_t e = 0;
        while (e < v.size() && e < 16 && v[e] != ' ' && v[e] != '\t' && v[e] != ';' && v[e] != '\r' &&
               v[e] != '\n')
            ++e;
        std::string_view w = v.substr(0, e);
        precedence_ = iequals(w, "bulk") || iequals(w, "list") || iequals(w, "junk");
    } else if (iequals(name, "List-Id")) {
        list_id_ = true;
    } else if (iequals(name, "List-Unsubscribe")) {
        unsubscribe_ = true;
    }
}

Signals HeaderSignals::signals(const Settings& cfg) const {
    Signals s;
    if (!cfg.header_signals) return s;
    if (precedence_) s.signals.push_back("header:precedence");
    if (list_id_) s.signals.push_back("header:list-id");
    if (unsubscribe_) s.signals.push_back("header:list-unsubscribe");
    return s;
}

Signals header_signals(const std::vector<HeaderField>& headers, const Settings& cfg) {
    HeaderSignals h;
    for (const auto& f : headers) h.observe(f.name, f.value);
    return h.signals(cfg);
}

}  // namespace regmilter::bulk
