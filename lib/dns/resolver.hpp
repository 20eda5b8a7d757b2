// dns: the one interface every lookup goes through, and its result type.
// Results are named outcomes (never a bool or NULL): SPF's void-lookup rule
// needs NXDOMAIN and NODATA apart, and a timeout must never look like "no".
// A Resolver object is used by one thread at a time; see each implementation.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace regmilter::dns {

using Clock = std::chrono::steady_clock;
// Absolute point after which a lookup must give up with DnsStatus::timeout.
using Deadline = Clock::time_point;

inline Deadline deadline_in(std::chrono::milliseconds ms) {
    return Clock::now() + ms;
}
inline Deadline no_deadline() {
    return Clock::time_point::max();
}

enum class RrType : uint16_t {
    a = 1,
    ns = 2,
    cname = 5,
    ptr = 12,
    mx = 15,
    txt = 16,
    aaaa = 28,
    spf = 99,
};

const char* to_string(RrType t);

enum class DnsStatus {
    ok,         // at least one record of the asked type
    nxdomain,   // RCODE 3: the name does not exist
    nodata,     // the name exists, no record of this type
    timeout,    // no answer before the deadline (or every retry timed out)
    servfail,   // SERVFAIL, REFUSED, other RCODEs, network errors
    malformed,  // an answer that could not be parsed
};

const char* to_string(DnsStatus s);
// True for outcomes that SPF calls a temperror (timeout, servfail, malformed).
inline bool is_temporary(DnsStatus s) {
    return s == DnsStatus::timeout || s == DnsStatus::servfail || s == DnsStatus::malformed;
}

// rdata is text, one entry per record of the asked type (CNAMEs followed):
//   A, AAAA   address text ("192.0.2.1", "2001:db8::1")
//   PTR, NS, CNAME   domain name, no trailing dot ("mail.example.com")
//   MX        "PREFERENCE NAME" ("10 mx.example.com"); "0 " for a null MX target "."
//   TXT, SPF  the character-strings of one record concatenated with nothing
//             between them (RFC 7208 §3.3); may hold any byte, even NUL
struct DnsAnswer {
    DnsStatus status = DnsStatus::servfail;
    std::vector<std::string> rdata;
    uint32_t ttl = 0;    // seconds; for negative answers the SOA minimum (RFC 2308)
    std::string detail;  // human text for logs and --trace ("rcode REFUSED", "3 tries, 2000 ms")
    // A failure of this host (no file descriptor, no buffer, no memory), not
    // an answer about the name: never cached (dns::Cache), and reported
    // once per burst (set_local_error_log).
    bool local = false;
    // Answered from dns::Cache (a stored answer, not one shared in flight).
    bool cached = false;
};

// Where local failures are reported: at most one line per 10 seconds, with
// how many happened since the last one and the last error's text. Empty (the
// default): not reported. Thread-safe; set it before the first query.
void set_local_error_log(std::function<void(const std::string&)> sink);
// Called by resolvers when a query failed locally (`what`: the error text).
void note_local_error(const std::string& what);

class Resolver {
public:
    virtual ~Resolver() = default;
    // `name` is a domain name without the trailing dot; case is preserved.
    // Never throws for DNS trouble: every failure is a status.
    virtual DnsAnswer query(std::string_view name, RrType type, Deadline deadline) = 0;
    // A hint: query(name, type) is likely soon and does not depend on what
    // is being asked now (RFC 7208's MX hosts, the terms of one SPF record).
    // A resolver may start it now, elsewhere, and answer the query from it;
    // answers and their order are the same as without the hint. Never blocks,
    // never throws. Default: nothing.
    virtual void prefetch(std::string_view name, RrType type, Deadline deadline) {
        (void)name;
        (void)type;
        (void)deadline;
    }
};

}  // namespace regmilter::dns
