// daemon runtime: the immutable snapshot a session runs with (Config, bulk
// table, shared DNS cache) and the one place it is swapped on reload.
// Decides nothing about mail. current() and install() are thread-safe: the
// pointer is swapped atomically; a session keeps the snapshot it started with.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bulk/bulk.hpp"
#include "config/config.hpp"
#include "dns/cache.hpp"
#include "dns/ldns_resolver.hpp"

namespace regmilter::daemon {

// A file's identity and version, to notice that it was replaced or changed.
struct FileStamp {
    unsigned long long inode = 0, size = 0;
    long long mtime_ns = 0;
    bool exists = false;
    bool operator==(const FileStamp& o) const {
        return inode == o.inode && size == o.size && mtime_ns == o.mtime_ns && exists == o.exists;
    }
    bool operator!=(const FileStamp& o) const { return !(*this == o); }
};
FileStamp stamp_of(const std::string& path);

struct Runtime {
    std::shared_ptr<const config::Config> config;
    std::shared_ptr<const bulk::Table> bulk_table;  // null: no [bulk] table configured
    std::shared_ptr<dns::Cache> cache;              // shared by every session's resolver
    // Upstream settings for every session's LdnsResolver; the nameservers are
    // [resolver] nameservers or /etc/resolv.conf as read at load (not per session).
    dns::ResolverOptions resolver;
    FileStamp bulk_stamp;                           // the table file as it was when read
    unsigned generation = 0;                        // 1 at start, +1 per reload
};

struct Loaded {
    std::shared_ptr<const Runtime> runtime;  // null when problems is not empty
    std::vector<std::string> problems;       // "FILE:LINE: ..." each, config then table
};

// Reads and validates the config file and its bulk table (and /etc/resolv.conf
// when no nameservers are configured). An empty
// authserv_id becomes this host's name. `previous` (may be null) lends its DNS
// cache when the resolver settings did not change, so a reload keeps it warm.
Loaded load_runtime(const std::string& path, const std::shared_ptr<const Runtime>& previous);

// When the bulk table file of `rt` changed since it was read: a new snapshot
// with the same configuration and the table read again (runtime set), or the
// new file's problems with FILE:LINE (runtime null; `rt` stays in force).
// Nothing changed, or no table configured: runtime null, no problems.
Loaded reload_table_if_changed(const std::shared_ptr<const Runtime>& rt);

// The snapshot new sessions get; null before the first install().
std::shared_ptr<const Runtime> current();
void install(std::shared_ptr<const Runtime> runtime);

}  // namespace regmilter::daemon
