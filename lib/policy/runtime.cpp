#include "policy/runtime.hpp"

namespace regmilter::policy {

namespace {

bool same_resolver(const config::Resolver& a, const config::Resolver& b) {
    return a.nameservers == b.nameservers && a.cache_size == b.cache_size;
}

}  // namespace

std::unique_ptr<dns::Resolver> Runtime::make_resolver() const {
    if (!upstream) return nullptr;
    return std::make_unique<dns::CachingResolver>(upstream, cache, pool);
}

Loaded make_runtime(std::shared_ptr<const config::Config> config,
                    const std::shared_ptr<const Runtime>& previous) {
    Loaded out;
    std::shared_ptr<const bulk::Table> table;
    util::FileStamp stamp;
    if (!config->bulk.table.empty()) {
        stamp =
            util::stamp_of(config->bulk.table);  // before reading: a change while reading is seen next time
        bulk::Table::Loaded t = bulk::Table::load(config->bulk.table);
        out.problems = std::move(t.problems);
        table = std::move(t.value);
        if (!table) return out;
    }
    auto rt = std::make_shared<Runtime>();
    rt->config = config;
    rt->bulk_table = table;
    rt->bulk_stamp = stamp;
    rt->dns_counters =
        previous && previous->dns_counters ? previous->dns_counters : std::make_shared<dns::Counters>();
    if (previous && same_resolver(previous->config->resolver, config->resolver)) {
        rt->cache = previous->cache;
    } else {
        dns::CacheOptions opt;
        opt.max_entries = static_cast<size_t>(config->resolver.cache_size);
        rt->cache = std::make_shared<dns::Cache>(opt, &dns::Clock::now, rt->dns_counters);
    }
    rt->health = previous && previous->health ? previous->health : std::make_shared<registry::Health>();
    rt->resolver.counters = rt->dns_counters;
    rt->resolver.nameservers = config->resolver.nameservers;
    if (rt->resolver.nameservers.empty()) rt->resolver.nameservers = dns::system_nameservers();
    rt->resolver.timeout_ms = config->resolver.timeout_ms;
    rt->resolver.retries = config->resolver.retries;
    rt->upstream = [opt = rt->resolver]() -> std::unique_ptr<dns::Resolver> {
        std::string error;
        return dns::LdnsResolver::create(opt, error);
    };
    rt->pool = &util::Pool::shared();
    rt->authserv_id = authserv_id(*config);
    rt->generation = previous ? previous->generation + 1 : 1;
    out.runtime = std::move(rt);
    return out;
}

Loaded load_runtime(const std::string& path, const std::shared_ptr<const Runtime>& previous) {
    if (path.empty()) return make_runtime(config::defaults(), previous);
    config::LoadResult cfg = config::load_file(path);
    if (!cfg.value) {
        Loaded out;
        out.problems = std::move(cfg.problems);
        return out;
    }
    return make_runtime(cfg.value, previous);
}

std::shared_ptr<const Runtime> with_table(const Runtime& rt, std::shared_ptr<const bulk::Table> table,
                                          const util::FileStamp& stamp) {
    auto next = std::make_shared<Runtime>(rt);
    next->bulk_table = std::move(table);
    next->bulk_stamp = stamp;
    next->generation = rt.generation + 1;
    return next;
}

}  // namespace regmilter::policy
