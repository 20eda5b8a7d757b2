// bulk: the per-recipient opt-out table (opted in = accept, opted out =
// reject) and the signals that make a message bulk. Decides table lookups and
// signal detection only; what happens to a recipient is policy's.
// A Table is immutable after load (share it freely between threads);
// TableFile (reload on change) is thread-safe.
#pragma once

#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "net/address.hpp"

namespace regmilter::bulk {

// Address text as the table compares it: <> stripped, a source route
// (@a,@b:user@d, RFC 5321 §4.1.2) dropped, a quoted local part unquoted,
// all lower case (DESIGN "Bulk table"). Empty when there is no usable address.
std::string normalize(std::string_view address);
// The same, but the local part keeps its case (the domain is lower-cased):
// the opt-out zone key (DESIGN "Contracts for the next capabilities").
std::string normalize_keep_local_case(std::string_view address);

struct TableError {
    std::string file;
    int line = 0;
    std::string message;
    std::string str() const;  // "FILE:LINE: message"
};

// Format, one entry a line:  KEY accept|reject   (# starts a comment)
// KEY is user@domain or @domain. A repeated key is an error.
class Table {
public:
    Table() = default;
    Table(const Table&) = delete;  // map_ views into arena_
    Table& operator=(const Table&) = delete;
    struct Loaded;
    static Loaded parse(std::string_view text, std::string_view name);
    static Loaded load(const std::string& path);

    // The entry for exactly this normalized key ("user@d", "@d"), if any.
    std::optional<config::BulkChoice> find(std::string_view key) const;
    size_t size() const { return map_.size(); }

private:
    std::string arena_;  // every key, back to back; map_ keys view into it
    std::unordered_map<std::string_view, config::BulkChoice> map_;
};

struct Table::Loaded {
    std::shared_ptr<const Table> table;  // null when errors is not empty
    std::vector<TableError> errors;
};

// The entries of a table file in file order, for tools that publish a table
// (regmilter-zone optout) rather than consult it. Same syntax and errors as
// Table::parse (a repeated key is an error); entries is empty when errors is not.
struct Entry {
    std::string key;      // as the table compares it: "user@domain" or "@domain", lower case
    std::string written;  // the local part as written, domain lower-cased ("Bob@example.org")
    config::BulkChoice choice = config::BulkChoice::accept;
    int line = 0;
};
struct Entries {
    std::vector<Entry> entries;
    std::vector<TableError> errors;
};
Entries read_entries(std::string_view text, std::string_view name);

struct Lookup {
    config::BulkChoice choice = config::BulkChoice::accept;
    std::string key;  // the entry that decided: "user@d", "user@d" folded, "@d", "default"
};

// Lookup order (DESIGN "Bulk table"): the address, the address without its
// +detail (any character of recipient_delimiter), @domain, then [bulk] default.
// table may be null (no table configured).
Lookup lookup(const Table* table, std::string_view rcpt, const config::Bulk& cfg);

// A table file loaded at start and reloaded when it changes (inode, size or
// mtime differ). A broken new file keeps the old table; its errors are kept
// until the next successful load.
class TableFile {
public:
    explicit TableFile(std::string path) : path_(std::move(path)) {}
    // Load or reload when the file changed. Returns the errors of this load
    // (empty when nothing changed or the load worked).
    std::vector<TableError> refresh();
    std::shared_ptr<const Table> current() const;
    const std::string& path() const { return path_; }

private:
    std::string path_;
    mutable std::mutex mu_;
    std::shared_ptr<const Table> table_;  // guarded by mu_
    struct Stamp {
        unsigned long long ino = 0, size = 0;
        long long mtime_ns = 0;
        bool valid = false;
    };
    Stamp stamp_;           // guarded by mu_
    bool checked_ = false;  // guarded by mu_
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
                       const config::Bulk& cfg);

// Header signals (header_signals = yes): Precedence: bulk|list|junk, List-Id,
// List-Unsubscribe. Each signal counted once, whatever the number of headers.
struct HeaderField {
    std::string name, value;
};
Signals header_signals(const std::vector<HeaderField>& headers, const config::Bulk& cfg);

}  // namespace regmilter::bulk
