#include "runtime.hpp"

#include <sys/stat.h>
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
    for (const auto& e : cfg.problems) out.problems.push_back(e.str());
    if (!cfg.value) return out;

    auto config = std::make_shared<config::Config>(*cfg.value);
    if (config->milter.authserv_id.empty()) config->milter.authserv_id = host_name();

    std::shared_ptr<const bulk::Table> table;
    FileStamp stamp;
    if (!config->bulk.table.empty()) {
        stamp = stamp_of(config->bulk.table);  // before reading: a change while reading is seen next time
        bulk::Table::Loaded t = bulk::Table::load(config->bulk.table);
        for (const auto& e : t.problems) out.problems.push_back(e.str());
        table = t.value;
    }
    if (!out.problems.empty()) return out;

    auto rt = std::make_shared<Runtime>();
    rt->config = config;
    rt->bulk_table = table;
    rt->bulk_stamp = stamp;
    if (previous && same_resolver(previous->config->resolver, config->resolver)) {
        rt->cache = previous->cache;
    } else {
        dns::CacheOptions opt;
        opt.max_entries = static_cast<size_t>(config->resolver.cache_size);
        rt->cache = std::make_shared<dns::Cache>(opt);
    }
    rt->resolver.nameservers = config->resolver.nameservers;
    if (rt->resolver.nameservers.empty()) rt->resolver.nameservers = dns::system_nameservers();
    rt->resolver.timeout_ms = config->resolver.timeout_ms;
    rt->resolver.retries = config->resolver.retries;
    rt->generation = previous ? previous->generation + 1 : 1;
    out.runtime = rt;
    return out;
}

FileStamp stamp_of(const std::string& path) {
    FileStamp f;
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return f;
    f.exists = true;
    f.inode = st.st_ino;
    f.size = static_cast<unsigned long long>(st.st_size);
    f.mtime_ns = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
    return f;
}

Loaded reload_table_if_changed(const std::shared_ptr<const Runtime>& rt) {
    Loaded out;
    if (!rt || rt->config->bulk.table.empty()) return out;
    const std::string& path = rt->config->bulk.table;
    FileStamp now = stamp_of(path);
    if (now == rt->bulk_stamp) return out;
    bulk::Table::Loaded t = bulk::Table::load(path);
    for (const auto& e : t.problems) out.problems.push_back(e.str());
    if (!out.problems.empty() || !t.value) {
        if (out.problems.empty()) out.problems.push_back(path + ": cannot be read");
        return out;
    }
    auto next = std::make_shared<Runtime>(*rt);
    next->bulk_table = t.value;
    next->bulk_stamp = now;
    next->generation = rt->generation + 1;
    out.runtime = next;
    return out;
}

std::shared_ptr<const Runtime> current() {
    return std::atomic_load(&g_current);
}

void install(std::shared_ptr<const Runtime> runtime) {
    std::atomic_store(&g_current, std::move(runtime));
}

}  // namespace regmilter::daemon
