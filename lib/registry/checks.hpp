// registry: whether each registration may be published -- the checks of
// `regmilter-zone registry`: (a) a single static host address, (b) a PTR with
// a domain that forward-confirms, (c) a contact (handle and email: the
// parser's syntax rules). Asks DNS through dns::Resolver, many entries at a
// time within a time budget; decides nothing about zone files (zone_writer.hpp).
// check_registrations() runs its own worker threads, each with its own
// Resolver from the factory; everything else is a pure function.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dns/resolver.hpp"
#include "registry/registrations.hpp"

namespace regmilter::registry {

struct CheckSettings {
    bool dns = true;                 // false (--no-dns): syntax and check (a) only
    bool allow_special = false;      // --allow-special: special-use ranges pass (not loopback etc.)
    bool allow_generic_ptr = false;  // --allow-generic-ptr: dynamic-looking names pass
    int jobs = 16;                   // entries checked at the same time, 1..1000
    std::chrono::milliseconds entry_timeout{10000};  // all DNS of one entry
    std::chrono::milliseconds budget{600000};        // all DNS of the run
};

// Check (a) without DNS: the reasons `r` fails (special-use range, dynamic-
// looking HOSTNAME; see host_rules.hpp), empty when it passes.
std::vector<std::string> check_address(const Registration& r, const CheckSettings& s);

// Check (b) with DNS, every reason: the PTR of the address must exist, be
// exactly one name and equal HOSTNAME (hence have at least two labels), and
// HOSTNAME's A (IPv4) or AAAA (IPv6) records must include the address.
// A lookup that times out or fails is a reason ("PTR lookup for ... timed out").
std::vector<std::string> check_dns(dns::Resolver& dns, const Registration& r, dns::Deadline deadline);

// Called once per worker thread; each Resolver is used by that thread only.
using ResolverFactory = std::function<std::unique_ptr<dns::Resolver>()>;

struct CheckedFile {
    std::vector<Registration> passed;  // entries without problems, in file order
    std::vector<Problem> problems;     // every reason of every failing line, in line order
    size_t lines_failed = 0;           // lines with at least one problem
};

// Parses `text` (parse_registrations), then checks every entry: (a) always,
// (b) when s.dns, with min(s.jobs, entries) threads. An entry gets at most
// s.entry_timeout for its lookups; once s.budget has passed, entries not yet
// started fail with "not checked: the time budget ... ran out". Never throws
// for DNS trouble; the factory's exceptions propagate.
CheckedFile check_registrations(std::string_view text, std::string_view file, util::Day today,
                                const CheckSettings& s, const ResolverFactory& factory);

}  // namespace regmilter::registry
