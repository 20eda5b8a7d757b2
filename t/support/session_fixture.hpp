// Unit-test helper: a policy::Runtime whose resolvers all ask one strict
// MemoryResolver (behind a lock: the connect lookups ask from their own
// thread), and a Session over it with a fixed clock. Header-only.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "config/config.hpp"
#include "dns/memory_resolver.hpp"
#include "policy/session.hpp"

namespace regmilter::testing {

class LockedResolver : public dns::Resolver {
public:
    LockedResolver(dns::MemoryResolver& dns, std::shared_ptr<std::mutex> mu)
        : dns_(dns), mu_(std::move(mu)) {}
    dns::DnsAnswer query(std::string_view name, dns::RrType type, dns::Deadline deadline) override {
        std::lock_guard<std::mutex> g(*mu_);
        return dns_.query(name, type, deadline);
    }

private:
    dns::MemoryResolver& dns_;
    std::shared_ptr<std::mutex> mu_;
};

// `dns` must outlive the runtime and every session over it.
inline std::shared_ptr<policy::Runtime> runtime_of(std::shared_ptr<const config::Config> cfg,
                                                   dns::MemoryResolver& dns,
                                                   std::shared_ptr<const bulk::Table> table = nullptr,
                                                   std::string authserv_id = "mx.example.org") {
    auto rt = std::make_shared<policy::Runtime>();
    rt->config = std::move(cfg);
    rt->bulk_table = std::move(table);
    dns::CacheOptions opt;
    opt.max_entries = 1000;
    rt->cache = std::make_shared<dns::Cache>(opt);
    auto mu = std::make_shared<std::mutex>();
    rt->upstream = [&dns, mu]() -> std::unique_ptr<dns::Resolver> {
        return std::make_unique<LockedResolver>(dns, mu);
    };
    rt->authserv_id = std::move(authserv_id);
    rt->generation = 1;
    return rt;
}

// The environment of a session over `rt` at a fixed time (2026-06-01 12:00 UTC).
inline policy::Environment environment_of(std::shared_ptr<const policy::Runtime> rt) {
    policy::Environment env;
    env.runtime = [rt] { return rt; };
    env.clock = [] { return std::chrono::system_clock::time_point(std::chrono::seconds(1780315200)); };
    return env;
}

}  // namespace regmilter::testing
