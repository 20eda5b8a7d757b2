// optout-lookup: a recipient's bulk opt-out verdict from a local table and
// from DNS opt-out zones, side by side, through the library functions the
// milter calls (bulk::lookup and bulk::lookup_zones) and the production
// resolver. For t/integration/registry-zone.sh. One line per recipient:
//   RCPT table=reject|accept|default zone=opted-out|opted-in|none|error key=KEY
//
//   optout-lookup --nameserver NS --table FILE --zone ZONE... [--delimiter CHARS]
//                 [--timeout-ms MS] RCPT...
//
// Exit: 0 when every line was printed, 1 when the table does not load, 2 on bad usage.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bulk/optout.hpp"
#include "config/config.hpp"
#include "dns/ldns_resolver.hpp"

#include "../support/nameserver_arg.hpp"

using namespace regmilter;

namespace {

int usage() {
    std::fprintf(stderr,
                 "usage: optout-lookup --nameserver NS --table FILE --zone ZONE... [--delimiter CHARS] "
                 "[--timeout-ms MS] RCPT...\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    dns::ResolverOptions opt;
    opt.retries = 1;
    std::string table_path;
    std::vector<std::string> zones, rcpts;
    bulk::Settings cfg = config::defaults()->bulk;  // "+" as recipient_delimiter, as regmilter.ini(5)
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
        const char* v = nullptr;
        if (a == "--nameserver" || a == "--table" || a == "--zone" || a == "--delimiter" ||
            a == "--timeout-ms") {
            v = value();
            if (!v) return usage();
        }
        if (a == "--nameserver") {
            if (!testing::add_nameserver(opt, v, "optout-lookup")) return 2;
        } else if (a == "--table") {
            table_path = v;
        } else if (a == "--zone") {
            zones.push_back(v);
        } else if (a == "--delimiter") {
            cfg.recipient_delimiter = v;
        } else if (a == "--timeout-ms") {
            opt.timeout_ms = int(std::strtol(v, nullptr, 10));
        } else if (!a.empty() && a[0] == '-') {
            return usage();
        } else {
            rcpts.push_back(a);
        }
    }
    if (table_path.empty() || zones.empty() || opt.nameservers.empty()) return usage();
    auto loaded = bulk::Table::load(table_path);
    for (const auto& e : loaded.problems) std::fprintf(stderr, "%s\n", e.str().c_str());
    if (!loaded.value) return 1;
    std::string error;
    auto resolver = dns::LdnsResolver::create(opt, error);
    if (!resolver) {
        std::fprintf(stderr, "optout-lookup: %s\n", error.c_str());
        return 2;
    }
    for (const auto& rcpt : rcpts) {
        bulk::Lookup t = bulk::lookup(loaded.value.get(), rcpt, cfg);
        bulk::ZoneAnswer z = bulk::lookup_zones(*resolver, rcpt, zones, cfg.recipient_delimiter,
                                                dns::deadline_in(std::chrono::milliseconds(10000)));
        const char* table = t.key == "default" ? "default" : util::name_of(t.choice);
        std::printf("%s table=%s zone=%s key=%s%s%s\n", rcpt.c_str(), table, bulk::to_string(z.status),
                    z.key.empty() ? "-" : z.key.c_str(), z.error.empty() ? "" : " error=", z.error.c_str());
    }
    return 0;
}
