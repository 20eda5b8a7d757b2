#include "runtime.hpp"

#include <unistd.h>
#include <atomic>
#include <climits>

namespace regmilter::daemon {

namespace {

// std::atomic_load/atomic_store on a shared_ptr (C++17): the swap is atomic,
// readers hold their own reference for as long as they need the snapshot.
std::shared_ptr<const Runtime> g_current;

std::string host_name() {
    char buf[HOST_NAME_MAX + 1] = {};
    if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
    return buf;
}

bool same_resolver(const config::Resolver& a, const config::Resolver& b) {
    return a.nameservers == b.nameservers && a.cache_size == b.cache_size;
}

}  // namespace

Loaded load_runtime(const std::string& path, const std::shared_ptr<const Runtime>& previous) {
    Loaded out;
    config::LoadResult cfg = config::load_file(path);
    for (const auto& e : cfg.errors) out.problems.push_back(e.str());
    if (!cfg.config) return out;

    auto config = std::make_shared<config::Config>(*cfg.config);
    if (config->milter.authserv_id.empty()) config->milter.authserv_id = host_name();

    std::shared_ptr<const bulk::Table> table;
    if (!config->bulk.table.empty()) {
        bulk::Table::Loaded t = bulk::Table::load(config->bulk.table);
        for (const auto& e : t.errors) out.problems.push_back(e.str());
        table = t.table;
    }
    if (!out.problems.empty()) return out;

    auto rt = std::make_shared<Runtime>();
    rt->config = config;
    rt->bulk_table = table;
    if (previous && same_resolver(previous->config->resolver, config->resolver)) {
        rt->cache = previous->cache;
    } else {
        dns::CacheOptions opt;
        opt.max_entries = static_cast<size_t>(config->resolver.cache_size);
        rt->cache = std::make_shared<dns::Cache>(opt);
    }
    rt->resolver.nameservers = config->resolver.nameservers;
    if (rt->resolver.nameservers.empty())
        for (const auto& ns : dns::system_nameservers()) rt->resolver.nameservers.push_back(ns.str());
    rt->resolver.timeout_ms = config->resolver.timeout_ms;
    rt->resolver.retries = config->resolver.retries;
    rt->generation = previous ? previous->generation + 1 : 1;
    out.runtime = rt;
    return out;
}

std::shared_ptr<const Runtime> current() {
    return std::atomic_load(&g_current);
}

void install(std::shared_ptr<const Runtime> runtime) {
    std::atomic_store(&g_current, std::move(runtime));
}

}  // namespace regmilter::daemon
