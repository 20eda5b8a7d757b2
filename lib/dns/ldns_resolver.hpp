// dns: the production Resolver, over ldns, speaking to recursive nameservers.
// It decides how a lookup maps to a DnsStatus; it never caches (CachingResolver
// does) and never outlives its Deadline. Not thread-safe: one LdnsResolver per
// thread (each owns its ldns handles and sockets); share answers via dns::Cache.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dns/counters.hpp"
#include "dns/nameserver.hpp"
#include "dns/resolver.hpp"
#include "net/address.hpp"

struct ldns_struct_resolver;

namespace regmilter::dns {

struct ResolverOptions {
    std::vector<Nameserver> nameservers;  // empty: /etc/resolv.conf (system_nameservers)
    int timeout_ms = 2000;                // per attempt (one packet to one nameserver), > 0
    int retries = 2;                      // further rounds over the nameservers that timed out, >= 0
    uint16_t edns_size = 1232;            // EDNS0 UDP payload size advertised; 0 = no EDNS0
    std::shared_ptr<Counters> counters;   // statistics: query() calls by outcome; may be null
};

// Lookup procedure for one query (worst case timeout_ms * (retries + 1) per
// nameserver, never past the Deadline):
//   for each round 0..retries: for each nameserver in order, skipping those that
//   already gave a definite failure (SERVFAIL, REFUSED, garbage): one UDP packet
//   with RD and EDNS0; a truncated answer is asked again over TCP (RFC 7766 §5).
//   NOERROR and NXDOMAIN answers end the lookup. A reply whose message id or
//   question differs from the query's is malformed, never an answer (RFC 5452).
// Status: records of the type -> ok; NOERROR without -> nodata; NXDOMAIN ->
// nxdomain; every attempt timed out -> timeout; other RCODEs and network errors
// -> servfail; an answer that does not parse -> malformed. CNAMEs in the answer
// are followed; a chain that leaves the answer is asked again (8 names at most).
// TTL: minimum over the answer RRs used; for negative answers min(SOA TTL, SOA
// MINIMUM) from the authority section (RFC 2308 §5), 0 when there is no SOA.
// A name that cannot be encoded (empty label, label > 63 octets, name > 255
// octets) is nxdomain without a query: no such name can exist.
class LdnsResolver : public Resolver {
public:
    // Throws std::invalid_argument for a non-positive timeout or negative
    // retries; use create() to get the error as a value.
    explicit LdnsResolver(const ResolverOptions& options);
    ~LdnsResolver() override;
    LdnsResolver(const LdnsResolver&) = delete;
    LdnsResolver& operator=(const LdnsResolver&) = delete;

    // nullptr and `error` set when the options are invalid.
    static std::unique_ptr<LdnsResolver> create(const ResolverOptions& options, std::string& error);

    DnsAnswer query(std::string_view name, RrType type, Deadline deadline) override;

    const std::vector<Nameserver>& nameservers() const { return nameservers_; }

private:
    struct LdnsFree {
        void operator()(ldns_struct_resolver* r) const;
    };
    using Handle = std::unique_ptr<ldns_struct_resolver, LdnsFree>;
    struct Exchange;

    Exchange exchange(const std::vector<uint8_t>& wire_name, RrType type, Deadline deadline);
    DnsAnswer lookup(std::vector<uint8_t> wire_name, RrType type, Deadline deadline);

    ResolverOptions options_;
    std::vector<Nameserver> nameservers_;
    std::vector<Handle> handles_;  // one per nameserver: ldns has one port per resolver
};

}  // namespace regmilter::dns
