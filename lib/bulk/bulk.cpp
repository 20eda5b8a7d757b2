#include "bulk/bulk.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "util/read_file.hpp"

namespace regmilter::bulk {

namespace {

constexpr size_t max_address = 1000;  // longer than any RFC 5321 path (256)

std::string lower(std::string_view s) {
    std::string r(s);
    for (char& c : r)
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    return r;
}

bool ieq(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = char(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = char(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

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
    std::string out = (fold_local ? lower(local) : local) + lower(rest);
    return out;
}

// One table line without its comment, trimmed and not empty: the key as the
// table compares it (`key`, all lower case), with want_written the key with
// the local part as written (`written`, domain lower-cased), the choice; or `error`.
struct ParsedLine {
    std::string key, written;
    config::BulkChoice choice = config::BulkChoice::accept;
    std::string error;
};

ParsedLine parse_line(std::string_view line, bool want_written) {
    ParsedLine p;
    if (line.size() > max_address + 16) {
        p.error = "line longer than " + std::to_string(max_address + 16) + " characters";
        return p;
    }
    std::vector<std::string_view> words;
    size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        size_t b = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
        if (i > b) words.push_back(line.substr(b, i - b));
    }
    if (words.size() != 2) {
        p.error = "\"" + std::string(line) + "\": want KEY accept|reject";
        return p;
    }
    if (words[1] == "accept") {
        p.choice = config::BulkChoice::accept;
    } else if (words[1] == "reject") {
        p.choice = config::BulkChoice::reject;
    } else {
        p.error = "\"" + std::string(words[1]) + "\" is not accept or reject";
        return p;
    }
    std::string key, written;
    if (words[0].size() > 1 && words[0].front() == '@') {
        key = normalize_address("x" + std::string(words[0]), true);
        if (!key.empty()) key.erase(0, 1);
        written = key;
    } else if (words[0].find('@') != std::string_view::npos && words[0].front() != '@') {
        key = normalize_address(words[0], true);
        if (want_written) written = normalize_address(words[0], false);
    }
    if (key.empty() || key.find('@') == std::string::npos) {
        p.error = "\"" + std::string(words[0]) + "\" is not user@domain or @domain";
        return p;
    }
    for (char c : key)
        if (static_cast<unsigned char>(c) < 0x20) key.clear();
    if (key.empty()) {
        p.error = "control characters in \"" + std::string(words[0]) + "\"";
        return p;
    }
    p.key = std::move(key);
    p.written = std::move(written);
    return p;
}

// Calls fn(line_number, ParsedLine) for every line that is not blank or a comment.
template <typename Fn>
void for_each_line(std::string_view text, bool want_written, Fn fn) {
    int no = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        std::string_view line =
            text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? text.size() : nl + 1;
        ++no;
        // A comment starts with '#' at the start of the line or after a blank.
        for (size_t i = 0; i < line.size(); ++i)
            if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
                line = line.substr(0, i);
                break;
            }
        line = trim(line);
        if (line.empty()) continue;
        fn(no, parse_line(line, want_written));
    }
}

}  // namespace

std::string normalize(std::string_view a) {
    return normalize_address(a, true);
}

std::string normalize_keep_local_case(std::string_view a) {
    return normalize_address(a, false);
}

std::string TableError::str() const {
    return file + (line > 0 ? ":" + std::to_string(line) : std::string()) + ": " + message;
}

Table::Loaded Table::parse(std::string_view text, std::string_view name) {
    Loaded res;
    struct Item {
        size_t offset, length;
        config::BulkChoice choice;
        int line;
    };
    std::string arena;
    std::vector<Item> items;
    auto error = [&](int line, std::string msg) {
        if (res.errors.size() < 100) res.errors.push_back({std::string(name), line, std::move(msg)});
    };
    for_each_line(text, false, [&](int no, ParsedLine p) {
        if (!p.error.empty()) {
            error(no, std::move(p.error));
            return;
        }
        items.push_back({arena.size(), p.key.size(), p.choice, no});
        arena += p.key;
    });
    if (!res.errors.empty()) return res;

    auto t = std::make_shared<Table>();
    t->arena_ = std::move(arena);
    t->map_.reserve(items.size());
    std::unordered_map<std::string_view, int> first_line;
    for (const auto& it : items) {
        std::string_view k(t->arena_.data() + it.offset, it.length);
        auto [where, fresh] = t->map_.emplace(k, it.choice);
        (void)where;
        if (!fresh && res.errors.size() < 100) {
            // Rare path: find the first line only when there is a duplicate.
            for (const auto& other : items)
                if (std::string_view(t->arena_.data() + other.offset, other.length) == k) {
                    error(it.line, "duplicate key \"" + std::string(k) + "\", first at line " +
                                       std::to_string(other.line));
                    break;
                }
        }
    }
    if (!res.errors.empty()) return res;
    res.table = std::move(t);
    return res;
}

Entries read_entries(std::string_view text, std::string_view name) {
    Entries out;
    Table::Loaded checked = Table::parse(text, name);  // the same errors, duplicates included
    if (!checked.errors.empty()) {
        out.errors = std::move(checked.errors);
        return out;
    }
    out.entries.reserve(checked.table->size());
    for_each_line(text, true, [&](int no, ParsedLine p) {
        out.entries.push_back({std::move(p.key), std::move(p.written), p.choice, no});
    });
    return out;
}

Table::Loaded Table::load(const std::string& path) {
    std::string text, error;
    if (!util::read_file(path, text, error)) {  // a directory is an error, not an empty table
        Loaded r;
        r.errors.push_back({path, 0, "cannot read: " + error});
        return r;
    }
    return parse(text, path);
}

std::optional<config::BulkChoice> Table::find(std::string_view key) const {
    auto it = map_.find(key);
    if (it == map_.end()) return std::nullopt;
    return it->second;
}

Lookup lookup(const Table* table, std::string_view rcpt, const config::Bulk& cfg) {
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

std::vector<TableError> TableFile::refresh() {
    struct stat st {};
    Stamp now;
    int stat_errno = 0;
    if (::stat(path_.c_str(), &st) == 0) {
        now.valid = true;
        now.ino = st.st_ino;
        now.size = static_cast<unsigned long long>(st.st_size);
        now.mtime_ns = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
    } else {
        stat_errno = errno;
    }
    {
        std::lock_guard<std::mutex> g(mu_);
        if (checked_ && now.valid == stamp_.valid && now.ino == stamp_.ino && now.size == stamp_.size &&
            now.mtime_ns == stamp_.mtime_ns)
            return {};
    }
    std::vector<TableError> errors;
    std::shared_ptr<const Table> fresh;
    if (!now.valid) {
        errors.push_back({path_, 0, std::string("cannot read: ") + std::strerror(stat_errno)});
    } else {
        Table::Loaded l = Table::load(path_);
        errors = std::move(l.errors);
        fresh = std::move(l.table);
    }
    std::lock_guard<std::mutex> g(mu_);
    checked_ = true;
    stamp_ = now;  // a broken file is not parsed again until it changes
    if (fresh) table_ = std::move(fresh);
    return errors;
}

std::shared_ptr<const Table> TableFile::current() const {
    std::lock_guard<std::mutex> g(mu_);
    return table_;
}

Signals sender_signals(std::string_view mail_from, const std::optional<net::Address>& ip,
                       const config::Bulk& cfg) {
    Signals s;
    std::string addr = normalize(mail_from);
    auto at = addr.rfind('@');
    if (at != std::string::npos) {
        std::string_view domain = std::string_view(addr).substr(at + 1);
        for (const auto& d : cfg.sender_domains) {
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
        for (const auto& n : cfg.sender_networks.networks())
            if (n.contains(*ip)) {
                s.signals.push_back("sender:network:" + n.str());
                break;
            }
    }
    return s;
}

Signals header_signals(const std::vector<HeaderField>& headers, const config::Bulk& cfg) {
    Signals s;
    if (!cfg.header_signals) return s;
    bool precedence = false, list_id = false, unsubscribe = false;
    for (const auto& h : headers) {
        if (!precedence && ieq(h.name, "Precedence")) {
            // RFC 2076 §3.9: the first word of the value.
            std::string_view v = trim(h.value);
            size_t e = 0;
            while (e < v.size() && e < 16 && v[e] != ' ' && v[e] != '\t' && v[e] != ';' && v[e] != '\r' &&
                   v[e] != '\n')
                ++e;
            std::string w = lower(v.substr(0, e));
            if (w == "bulk" || w == "list" || w == "junk") precedence = true;
        } else if (!list_id && ieq(h.name, "List-Id")) {
            list_id = true;  // RFC 2919
        } else if (!unsubscribe && ieq(h.name, "List-Unsubscribe")) {
            unsubscribe = true;  // RFC 2369
        }
    }
    if (precedence) s.signals.push_back("header:precedence");
    if (list_id) s.signals.push_back("header:list-id");
    if (unsubscribe) s.signals.push_back("header:list-unsubscribe");
    return s;
}

}  // namespace regmilter::bulk
