// registry: the health of registry zones by their RFC 5782 §5 test points —
// 127.0.0.2 must be listed and 127.0.0.1 must not (::FFFF:7F00:2 and
// ::FFFF:7F00:1 for IPv6 clients). check() asks a zone; Health keeps what
// the last checks found, per zone and address family, for the lookups to
// read: a broken zone's lookups are errors (its on_error applies) until it
// passes again. Logs nothing (the caller does, from record()'s answer).
// check(): one thread per Resolver. Health: thread-safe.
#pragma once

#include <atomic>
#include <map>
#include <string>

#include "dns/resolver.hpp"
#include "net/address.hpp"
#include "registry/registry.hpp"
#include "util/lock_guarded.hpp"

namespace regmilter::registry {

enum class Family { v4, v6 };
inline const char* to_string(Family f) {
    return f == Family::v4 ? "IPv4" : "IPv6";
}

// What the test points of one zone said for one address family.
struct Probe {
    // healthy: 127.0.0.2 listed, 127.0.0.1 not. broken: a test point answered
    // otherwise. unknown: a test point could not be asked (timeout, SERVFAIL,
    // malformed): it says nothing about the zone's content, so the state stays.
    enum class Outcome { healthy, broken, unknown } outcome = Outcome::unknown;
    // broken: what failed ("test point 127.0.0.2 is not listed (nxdomain)");
    // unknown: the DNS error; empty when healthy.
    std::string detail;
};
const char* to_string(Probe::Outcome o);

// The four names asked: "2.0.0.127.ZONE" (reversed) or "127-0-0-2.ZONE" (dashed),
// and for IPv6 the nibbles or dashed groups of ::ffff:7f00:2 (and :1).
std::string test_point_name(const Zone& zone, Family family, bool listed);

// Asks the two test points of `family` (A records), each bounded by
// `deadline`. Pure apart from the DNS; never throws for DNS trouble.
Probe check(dns::Resolver& dns, const Zone& zone, Family family, dns::Deadline deadline);

// The zone's identity for health: what the test-point names depend on.
std::string health_key(const Zone& zone);

class Health {
public:
    // How record() changed the zone's state: the caller logs broke and recovered.
    enum class Transition { none, broke, recovered };

    // Keeps a probe's outcome: healthy clears a broken state, broken sets it
    // (a new detail while broken is kept, without a new transition), unknown
    // changes nothing.
    Transition record(const Zone& zone, Family family, const Probe& probe);

    // Why the zone is broken for clients of `family`; empty when it is not
    // (healthy, or never checked). Cheap when no zone is broken.
    std::string broken(const Zone& zone, Family family) const;

    // A lookup of a broken zone becomes an error (on_error applies): status
    // error, no code, no info, error "zone failed its RFC 5782 health check: ...".
    // True when `e` was changed. `ip` is the client (IPv4-mapped is IPv4).
    bool apply(Entry& e, const Zone& zone, const net::Address& ip) const;

    // Forgets every zone whose health_key() is not in `keep` (a reload removed it).
    void retain(const std::vector<std::string>& keep);

    // Zones (and families) broken now.
    int broken_count() const { return broken_.load(std::memory_order_relaxed); }

private:
    struct State {
        bool broken = false;
        std::string detail;
    };
    // key: health_key + "/4" or "/6"
    mutable util::LockGuarded<std::map<std::string, State>> states_;
    std::atomic<int> broken_{0};
};

}  // namespace regmilter::registry
