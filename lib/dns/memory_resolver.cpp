#include "dns/memory_resolver.hpp"

#include "util/strings.hpp"

#include <algorithm>
#include <cctype>

namespace regmilter::dns {

namespace {

std::string key_of(std::string_view name) {
    std::string k = util::lower(name);
    while (!k.empty() && k.back() == '.') k.pop_back();
    return k;
}

}  // namespace

void MemoryResolver::add(std::string_view name, RrType type, std::string rdata, uint32_t ttl) {
    nodes_[key_of(name)].records.emplace(type, std::make_pair(std::move(rdata), ttl));
}

void MemoryResolver::add_empty(std::string_view name) {
    nodes_[key_of(name)];
}

void MemoryResolver::add_failure(std::string_view name, DnsStatus status) {
    Node& n = nodes_[key_of(name)];
    n.failing = true;
    n.failure = status;
}

void MemoryResolver::add_failure_for_missing(std::string_view name, DnsStatus status) {
    Node& n = nodes_[key_of(name)];
    n.failing_missing = true;
    n.failure = status;
}

DnsAnswer MemoryResolver::query(std::string_view name, RrType type, Deadline deadline) {
    std::string k = key_of(name);
    log_.push_back(k + "/" + to_string(type));
    DnsAnswer ans;
    if (Clock::now() >= deadline) {
        ans.status = DnsStatus::timeout;
        ans.detail = "deadline passed";
        return ans;
    }
    // Follow CNAMEs (bounded) the way a recursive resolver would.
    for (int hops = 0; hops < 8; ++hops) {
        auto it = nodes_.find(k);
        if (it == nodes_.end()) {
            if (strict_) unexpected_.push_back(k + "/" + to_string(type));
            ans.status = DnsStatus::nxdomain;
            ans.ttl = 300;
            return ans;
        }
        const Node& n = it->second;
        if (n.failing) {
            ans.status = n.failure;
            ans.detail = std::string("fixture: ") + to_string(n.failure);
            return ans;
        }
        auto range = n.records.equal_range(type);
        if (range.first != range.second) {
            ans.status = DnsStatus::ok;
            ans.ttl = range.first->second.second;
            for (auto r = range.first; r != range.second; ++r) {
                ans.rdata.push_back(r->second.first);
                ans.ttl = std::min(ans.ttl, r->second.second);
            }
            return ans;
        }
        auto cname = n.records.find(RrType::cname);
        if (n.failing_missing && (cname == n.records.end() || type == RrType::cname)) {
            ans.status = n.failure;
            ans.detail = std::string("fixture: ") + to_string(n.failure);
            return ans;
        }
        if (cname == n.records.end() || type == RrType::cname) {
            ans.status = DnsStatus::nodata;
            ans.ttl = 300;
            return ans;
        }
        k = key_of(cname->second.first);
    }
    ans.status = DnsStatus::servfail;
    ans.detail = "CNAME chain too long";
    return ans;
}

}  // namespace regmilter::dns
