// policy: the individual checks behind a verdict (one per registry zone and
// SPF identity) and the result headers. Pure functions of Facts and Config:
// no I/O, no clock. Reentrant.
#pragma once

#include <string>
#include <vector>

#include "policy/policy.hpp"

namespace regmilter::policy {

// What one check (a registry zone, an SPF identity) asks for, after
// enforce_after and the "temporary never permanent" rule.
struct Check {
    std::string source;  // "registry:NAME", "spf:mailfrom", "spf:helo"
    CheckAction action = CheckAction::accept;
    std::string code, xcode;  // for tempfail/reject
    std::string text;         // reply text
    std::string tag;          // X-Regmilter value when tagged
    std::string reason;       // short, for logs
    bool downgraded = false;  // enforce_after not reached yet
    // The zone's action is greylist (enforced, certain): `action` is accept,
    // and the Session greylists each recipient (policy/throttle.hpp).
    bool greylist = false;
};

// In stage order: registry zones (file order), then SPF HELO, then SPF MAIL FROM.
// Empty for trusted sessions.
std::vector<Check> evaluate_checks(const Facts& facts, const config::Config& cfg);

// The strongest (reject > tempfail > tag > accept); at equal strength the
// first. Null when `checks` is empty.
const Check* strongest(const std::vector<Check>& checks);

// A meaning = registered zone's entry that makes the client registered:
// listed, and forward-confirmed when the zone requires it.
bool counts_registered(const registry::Entry& e);

// The first check that asks for greylisting, or null.
const Check* greylisting(const std::vector<Check>& checks);

// Authentication-Results (RFC 8601, RFC 8904 dnswl) and Received-SPF
// (RFC 7208 §9.1), as [spf] headers says, A-R first.
std::vector<Header> result_headers(const Facts& facts, const config::Config& cfg);

}  // namespace regmilter::policy
