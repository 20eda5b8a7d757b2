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

#include "dns/resolver.hpp"
#include "net/address.hpp"

struct ldns_struct_resolver;

namespace regmilter::dns {

// One upstream nameserver: an IP address (never a host name: resolving it
// would need DNS) and a port.
struct Nameserver {
    net::Address address;
    uint16_t port = 53;

    // "192.0.2.1", "192.0.2.1:5353", "2001:db8::1" or "[2001:db8::1]:5353";
    // the port is only shown when it is not 53.
    std::string str() const;
    bool operator==(const Nameserver& o) const { return address == o.address && port == o.port; }
};

// Parses "HOST[:PORT]", "[V6]:PORT", "[V6]" or a bare IPv6 address. HOST is a
// literal IPv4 or IPv6 address; PORT is 1..65535 in decimal. On failure returns
// nullopt and sets `error` to a sentence naming the input, e.g.
//   nameserver "ns.example:53": not an IP address (use 192.0.2.1, 2001:db8::1 or [2001:db8::1]:53)
std::optional<Nameserver> parse_nameserver(std::string_view text, std::string& error);

// The `nameserver` lines of a resolv.conf(5) file, in order. Unparsable lines
// and IPv6 addresses with a zone id are skipped. A missing file, or one without
// nameserver lines, gives 127.0.0.1 (as the C library does).
std::vector<Nameserver> system_nameservers(const std::string& path = "/etc/resolv.conf");

struct ResolverOptions {
    // "HOST[:PORT]", "[v6]:PORT" or bare v6 (parse_nameserver); empty = /etc/resolv.conf.
    std::vector<std::string> nameservers;
    int timeout_ms = 2000;    // per attempt (one packet to one nameserver), > 0
    int retries = 2;          // further rounds over the nameservers that timed out, >= 0
    uint16_t edns_size = 1232;  // EDNS0 UDP payload size advertised; 0 = no EDNS0
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
    // Throws std::invalid_argument (message from parse_nameserver) for a bad
    // nameserver string or a non-positive timeout; use create() to get the
    // error as a value.
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

    ResolverOptions options_;
    std::vector<Nameserver> nameservers_;
    std::vector<Handle> handles_;  // one per nameserver: ldns has one port per resolver
};

}  // namespace regmilter::dns
