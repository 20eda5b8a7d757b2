// Test tools' --nameserver HOST[:PORT] argument: parsed by the library's
// dns::parse_nameserver and appended to the options. Header-only; no state.
#pragma once

#include <cstdio>
#include <string>

#include "dns/ldns_resolver.hpp"

namespace regmilter::testing {

// Appends `spec` to opt.nameservers; false, after "PROG: why" on stderr,
// when it does not parse.
inline bool add_nameserver(dns::ResolverOptions& opt, const std::string& spec, const char* prog) {
    std::string err;
    auto ns = dns::parse_nameserver(spec, err);
    if (!ns) {
        std::fprintf(stderr, "%s: %s\n", prog, err.c_str());
        return false;
    }
    opt.nameservers.push_back(*ns);
    return true;
}

}  // namespace regmilter::testing
