// dns: an in-memory Resolver loaded from fixture data, for unit tests and the
// openspf suite. Strict: a query for a name nobody described is recorded as
// unexpected (tests assert unexpected().empty()) and answered NXDOMAIN.
// Not thread-safe for concurrent add(); query() may be called from one thread.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "dns/resolver.hpp"

namespace regmilter::dns {

class MemoryResolver : public Resolver {
public:
    // Add one record; rdata in the DnsAnswer text form (see resolver.hpp).
    // A name with any record exists: other types for it answer NODATA.
    void add(std::string_view name, RrType type, std::string rdata, uint32_t ttl = 300);
    // Declare that a name exists with no records (answers NODATA for every type).
    void add_empty(std::string_view name);
    // Every query for this name (any type) answers `status` (timeout, servfail...).
    void add_failure(std::string_view name, DnsStatus status);
    // Queries for a type this name holds no records of (CNAMEs aside) answer
    // `status`; types it holds answer normally (the openspf suite's TIMEOUT).
    void add_failure_for_missing(std::string_view name, DnsStatus status);
    // Lenient mode: unknown names are NXDOMAIN without being recorded as unexpected.
    void set_strict(bool strict) { strict_ = strict; }

    DnsAnswer query(std::string_view name, RrType type, Deadline deadline) override;

    // Every query made, in order, as "name/TYPE".
    const std::vector<std::string>& log() const { return log_; }
    const std::vector<std::string>& unexpected() const { return unexpected_; }
    size_t count() const { return log_.size(); }
    void clear_log() {
        log_.clear();
        unexpected_.clear();
    }

private:
    struct Node {
        std::multimap<RrType, std::pair<std::string, uint32_t>> records;
        bool failing = false;
        bool failing_missing = false;
        DnsStatus failure = DnsStatus::servfail;
    };
    std::map<std::string, Node> nodes_;  // key: lower-case name, no trailing dot
    bool strict_ = true;
    std::vector<std::string> log_, unexpected_;
};

}  // namespace regmilter::dns
