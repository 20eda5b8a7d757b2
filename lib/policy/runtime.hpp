// policy: the immutable snapshot an SMTP session runs with — the Config,
// the bulk table, the shared DNS cache, how to reach the upstream resolvers —
// loading it from a file, and the one place it is swapped on reload.
// Decides nothing about mail. A Runtime is immutable once built (share it
// between threads); RuntimeHolder's current()/install() are thread-safe: a
// session keeps the snapshot it started with.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bulk/bulk.hpp"
#include "config/config.hpp"
#include "dns/cache.hpp"
#include "dns/ldns_resolver.hpp"
#include "policy/policy.hpp"
#include "registry/health.hpp"
#include "util/file.hpp"
#include "util/pool.hpp"
#include "util/problem.hpp"

namespace regmilter::policy {

struct Runtime {
    std::shared_ptr<const config::Config> config;
    std::shared_ptr<const bulk::Table> bulk_table;  // null: no [bulk] table configured
    util::FileStamp bulk_stamp;                     // the table file as it was before it was read
    std::shared_ptr<dns::Cache> cache;              // shared by every session's resolver
    // The cache's and the upstream resolvers' counters (statistics), handed
    // on from the previous snapshot at reload so the totals only grow.
    std::shared_ptr<dns::Counters> dns_counters;
    // The registry zones' RFC 5782 §5 health, shared (and handed on at
    // reload) like the cache; checked by the daemon, read by every session.
    // Null: no checks (every zone counts as healthy).
    std::shared_ptr<registry::Health> health;
    // Upstream settings; the nameservers are [resolver] nameservers or
    // /etc/resolv.conf as read at load (not per session).
    dns::ResolverOptions resolver;
    // Makes one thread's upstream resolver (ldns with `resolver`; tests put
    // an in-memory one here). Called from several threads at once.
    ResolverFactory upstream;
    // Where a session's jobs that wait on DNS run (its connect lookups, the
    // HELO SPF evaluation beside MAIL FROM's, prefetches of independent
    // lookups); null: the connect lookups on a thread of their own, the rest
    // in the session's thread, nothing prefetched (tests that count queries).
    util::Pool* pool = nullptr;
    std::string authserv_id;  // [milter] authserv_id, or this host's name
    unsigned generation = 0;  // 1 at start, +1 per reload

    // A resolver for one thread: the shared cache, in front of an upstream
    // made at the first miss (none for a session the cache answers), and
    // prefetching on `pool`. Null when there is no upstream factory.
    std::unique_ptr<dns::Resolver> make_resolver() const;
};

struct Loaded {
    std::shared_ptr<const Runtime> runtime;  // null when problems is not empty
    std::vector<util::Problem> problems;     // config, then table: "FILE:LINE: ..."
};

// Reads and validates the config file (`path`; empty: the embedded defaults)
// and its bulk table, and /etc/resolv.conf when no nameservers are
// configured. `previous` (may be null) lends its DNS cache when the resolver
// settings did not change, so a reload keeps it warm, and counts the generation.
Loaded load_runtime(const std::string& path, const std::shared_ptr<const Runtime>& previous);
// The same from a Config already loaded.
Loaded make_runtime(std::shared_ptr<const config::Config> config,
                    const std::shared_ptr<const Runtime>& previous);
// `rt` with another bulk table, read from the file at `stamp` (the next generation).
std::shared_ptr<const Runtime> with_table(const Runtime& rt, std::shared_ptr<const bulk::Table> table,
                                          const util::FileStamp& stamp);

// The snapshot new sessions get, swapped whole on reload.
class RuntimeHolder {
public:
    std::shared_ptr<const Runtime> current() const { return std::atomic_load(&current_); }
    void install(std::shared_ptr<const Runtime> rt) { std::atomic_store(&current_, std::move(rt)); }

private:
    std::shared_ptr<const Runtime> current_;
};

}  // namespace regmilter::policy
