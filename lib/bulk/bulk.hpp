// bulk: the per-recipient opt-out table (opted in = accept, opted out =
// reject) and the signals that make a message bulk. Decides table lookups and
// signal detection only; what happens to a recipient is policy's. No DNS, no
// I/O besides reading a table file. A Table is immutable after load (share it
// freely between threads); the free functions are reentrant.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "net/address.hpp"
#include "util/file.hpp"
#include "util/names.hpp"
#include "util/problem.hpp"

namespace regmilter::bulk {

// A recipient's choice: accept bulk mail (opted in) or refuse it (opted out).
enum class Choice { accept, reject };
inline constexpr const char* choice_names[] = {"accept", "reject"};
constexpr util::Names names_of(Choice) {
    return choice_names;
}

// What an opted-out recipient of bulk mail gets (DESIGN "[bulk] action").
enum class Action { reject, discard, tag };
inline constexpr const char* action_names[] = {"reject", "discard", "tag"};
constexpr util::Names names_of(Action) {
    return action_names;
}

// Known bulk senders: MAIL FROM domains (and their subdomains), client networks.
struct Senders {
    std::vector<std::string> domains;  // lower case, no trailing dot
    net::CidrSet networks;
};

// The [bulk] settings.
struct Settings {
    std::string table;  // path of the opt-out table; empty: none
    Choice default_choice{};
    Senders senders;
    bool header_signals{};  // Precedence / List-Id / List-Unsubscribe make bulk
    Action action{};
    std::string recipient_delimiter;  // each character is a delimiter; empty: none
    // Opt-out zones (optout.hpp), asked in order for a recipient the table
    // does not name; lower case, no trailing dot. Empty: none.
    std::vector<std::string> zones;
};

// Address text as the table compares it: <> stripped, a source route
// (@a,@b:user@d, RFC 5321 §4.1.2) dropped, a quoted local part unquoted,
// all lower case (DESIGN "Bulk table"). Empty when there is no usable address.
std::string normalize(std::string_view address);
// The same, but the local part keeps its case (the domain is lower-cased):
// the opt-out zone key (DESIGN "Contracts for the next capabilities").
std::string normalize_keep_local_case(std::string_view address);

// Format, one entry a line:  KEY accept|reject   (# starts a comment)
// KEY is user@domain or @domain. A repeated key is an error.
class Table {
public:
    Table() = default;
    Table(const Table&) = delete;
    Table& operator=(const Table&) = delete;
    using Loaded = util::Parsed<Table>;
    // Every problem at once, each "FILE:LINE: ..." (at most 100).
    static Loaded parse(std::string_view text, std::string_view name);
    static Loaded load(const std::string& path);

    // The entry for exactly this normalized key ("user@d", "@d"), if any.
    std::optional<Choice> find(std::string_view key) const;
    size_t size() const { return starts_.empty() ? 0 : starts_.size() - 1; }

private:
    // Compact for tables of millions of entries (about 11 bytes per entry
    // besides the key, against some 60 for a node-based map): one string of
    // every key back to back, each followed by one byte, its Choice (keys
    // hold no control characters); where each key starts; and an open-
    // addressing hash index (linear probing, at most 2/3 full) of key number + 1,
    // 0 for an empty slot.
    std::string_view key(uint32_t i) const {
        return std::string_view(arena_.data() + starts_[i], starts_[i + 1] - starts_[i] - 1);
    }
    std::string arena_;
    std::vector<uint32_t> starts_;  // one per key, then arena_.size()
    std::vector<uint32_t> slots_;   // a power of two in size
};

// The entries of a table file in file order, for tools that publish a table
// (regmilter-zone optout) rather than consult it. Same syntax and errors as
// Table::parse (a repeated key is an error); entries is empty when errors is not.
struct Entry {
    std::string key;      // as the table compares it: "user@domain" or "@domain", lower case
    std::string written;  // the local part as written, domain lower-cased ("Bob@example.org")
    Choice choice = Choice::accept;
    int line = 0;
};
struct Entries {
    std::vector<Entry> entries;
    std::vector<util::Problem> problems;
};
Entries read_entries(std::string_view text, std::string_view name);

struct Lookup {
    Choice choice = Choice::accept;
    std::string key;  // the entry that decided: "user@d", "user@d" folded, "@d", "default"
};

// Lookup order (DESIGN "Bulk table"): the address, the address without its
// +detail (any character of recipient_delimiter), @domain, then [bulk] default.
// table may be null (no table configured).
Lookup lookup(const Table* table, std::string_view rcpt, const Settings& cfg);

// The one reloader of a table file (the daemon's, every 2 s and on SIGHUP).
// A change is read only once it has settled: the file's size and mtime have
// stayed the same for `settle`, so that a table rewritten in place is never
// read half-written; and it must parse completely. A broken file is reported
// once and not read again until it changes; the last good table stays in
// force. Used by one thread at a time (the daemon's reload thread).
class TableFile {
public:
    using Clock = std::chrono::steady_clock;
    TableFile(std::string path, Clock::duration settle) : path_(std::move(path)), settle_(settle) {}

    struct Refresh {
        enum class What {
            unchanged,  // as last loaded (or as last refused)
            waiting,    // changed, not settled yet
            loaded,     // read and parsed: `table` is the new table
            refused,    // changed and settled, but broken: `problems` say why
        } what = What::unchanged;
        std::shared_ptr<const Table> table;
        std::vector<util::Problem> problems;
    };

    // Reads the file now, settled or not (start, SIGHUP).
    Refresh load();
    // Takes a table read elsewhere from the file as it was at `stamp` (taken
    // before the read), as if load() had read it.
    void adopt(std::shared_ptr<const Table> table, const util::FileStamp& stamp);
    // One stat(); reads the file when it changed and has settled.
    Refresh poll(Clock::time_point now);
    // The last table loaded; null before the first successful load.
    std::shared_ptr<const Table> current() const { return table_; }
    const std::string& path() const { return path_; }
    // The file as it was when the current table was read.
    const util::FileStamp& stamp() const { return loaded_; }

private:
    Refresh read(const util::FileStamp& stamp);

    std::string path_;
    Clock::duration settle_;
    std::shared_ptr<const Table> table_;
    util::FileStamp loaded_, refused_, pending_;
    Clock::time_point pending_since_{};
    bool has_pending_ = false;
};

// Why a message is bulk; each signal a short name for logs and JSON:
// "registry:bulk:ZONE", "sender:domain:D", "sender:network:CIDR",
// "header:precedence", "header:list-id", "header:list-unsubscribe".
struct Signals {
    std::vector<std::string> signals;
    bool any() const { return !signals.empty(); }
};

// Envelope signals: the [bulk] senders list (MAIL FROM domain or a
// subdomain of it; client in a sender network). Registry codes are added by policy.
Signals sender_signals(std::string_view mail_from, const std::optional<net::Address>& ip,
                       const Settings& cfg);

// Header signals (header_signals = yes): Precedence: bulk|list|junk
// (RFC 2076 §3.9, the first word), List-Id (RFC 2919), List-Unsubscribe
// (RFC 2369). Fed one header at a time as the MTA sends them: nothing is
// stored, each signal counts once whatever the number of headers. No-throw.
class HeaderSignals {
public:
    void observe(std::string_view name, std::string_view value) noexcept;
    // In the order precedence, list-id, list-unsubscribe; empty when
    // header_signals is off.
    Signals signals(const Settings& cfg) const;

private:
    bool precedence_ = false, list_id_ = false, unsubscribe_ = false;
};

struct HeaderField {
    std::string name, value;
};
// All of `headers` through one HeaderSignals.
Signals header_signals(const std::vector<HeaderField>& headers, const Settings& cfg);

}  // namespace regmilter::bulk
