// spf: RFC 7208 check_host() over a dns::Resolver, and the two identities
// (MAIL FROM, HELO) a receiver checks. Pure code over the Resolver: no other
// I/O, no global state; one call uses one Resolver from one thread.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "dns/resolver.hpp"
#include "net/address.hpp"
#include "util/names.hpp"

namespace regmilter::spf {

// RFC 7208 §2.6.
enum class Result { none, neutral, pass, fail, softfail, temperror, permerror };
inline constexpr const char* result_names[] = {"none",     "neutral",   "pass",     "fail",
                                               "softfail", "temperror", "permerror"};
constexpr util::Names names_of(Result) {
    return result_names;
}
inline const char* to_string(Result r) {
    return util::name_of(r);
}

struct Limits {
    int dns_terms = 10;    // RFC 7208 §4.6.4: include a mx ptr exists redirect
    int void_lookups = 2;  // RFC 7208 §4.6.4: a third void lookup is a permerror
    int mx_names = 10;     // RFC 7208 §4.6.4: per mx mechanism
    int ptr_names = 10;    // RFC 7208 §4.6.4: per ptr mechanism / %{p}
};

// Called for each term evaluated and each DNS query, for --trace. Optional.
using Tracer = std::function<void(std::string_view line)>;

struct Request {
    net::Address ip;                   // the SMTP client; IPv4-mapped is treated as IPv4
    std::string sender;                // MAIL FROM address without <>; may be empty
    std::string helo;                  // HELO/EHLO argument as given
    std::string receiver = "unknown";  // %{r}: the checking host's domain
};

struct Outcome {
    Result result = Result::none;
    std::string identity;        // "mailfrom" or "helo"
    std::string domain;          // the domain checked (from the identity)
    std::string sender;          // the <sender> used (postmaster@helo for a null sender)
    std::string mechanism;       // the term that matched ("ip4:192.0.2.0/24", "-all"),
                                 // "default" for the implicit ?all, empty for none/errors
    std::string explanation;     // fail: the exp= text (RFC 7208 §6.2) or empty
    std::string problem;         // permerror/temperror/none: why, for logs (and a permerror's reply)
    std::string public_problem;  // temperror: why, without the resolver's address or timings
                                 // ("TXT lookup for example.org: timeout"), for the SMTP reply
    int dns_terms = 0;           // DNS-querying terms used (§4.6.4 counter)
    int void_lookups = 0;
};

struct Options {
    Limits limits;
    dns::Deadline deadline = dns::no_deadline();  // whole evaluation; then temperror
    Tracer trace;                                 // may be empty
};

// RFC 7208 §4: check_host(ip, domain, sender) for an explicit domain; an
// empty req.sender is taken as postmaster@domain.
Outcome check_host(dns::Resolver& dns, const Request& req, std::string_view domain, const Options& opt);

// MAIL FROM identity (§2.4): the domain of req.sender; a null sender is
// checked as postmaster@HELO (§2.4), a missing local part as postmaster.
Outcome check_mailfrom(dns::Resolver& dns, const Request& req, const Options& opt);

// HELO identity (§2.3): sender postmaster@HELO, domain HELO. A HELO that is
// not a valid FQDN (or is an address literal) gives Result::none.
Outcome check_helo(dns::Resolver& dns, const Request& req, const Options& opt);

}  // namespace regmilter::spf
