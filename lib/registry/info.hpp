// registry: what every configured zone says about one address -- the
// lookup a registry's users make instead of WHOIS, over DNS
// (regmilter-query --registry-info): listed or not, the A code, the class
// (regular, bulk, blocked) and the TXT metadata parsed (registered=,
// updated=, contact=). DNS through the dns::Resolver given (one thread);
// the renderers are pure. Never throws for DNS trouble (Status::error).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "registry/registry.hpp"
#include "registry/zone_writer.hpp"

namespace regmilter::util {
class JsonWriter;
}

namespace regmilter::registry {

struct Info {
    Entry entry;  // the zone's answer (registry::lookup)
    std::string
        klass;  // "regular", "bulk" (registered, declared bulk sender), "blocked"; empty when not listed
    Metadata metadata;  // entry.info parsed; empty fields when absent or not of their form
};

// The class of a listed entry: "blocked" in a meaning = blocked zone, else
// "bulk" for one of the zone's bulk_codes, else "regular"; empty otherwise.
std::string class_of(const Entry& e);

// One zone, whatever the client's trust: an A lookup, TXT when listed (and
// FCrDNS when the zone requires it), as the milter asks.
Info lookup_info(dns::Resolver& dns, const net::Address& ip, const Zone& zone, dns::Deadline deadline);

// Text, one block per zone:
//   registry NAME (ZONE): listed 127.0.0.2 regular
//     query: 192-0-2-10.reg.example
//     registered: 2024-01-15
//     updated: 2024-06-01
//     contact: REG-1
//     txt: "registered=2024-01-15 updated=2024-06-01 contact=REG-1"
// or "not listed", or "error: WHY".
void write_info_text(std::ostream& out, const net::Address& ip, const std::vector<Info>& infos);

// One zone's answer as every JSON output writes it: "name", "zone", "query",
// "status", "code", "meaning", "info", "error"[, "fcrdns": {"ok", "detail"}],
// into the object the caller has opened (and closes).
void entry_json(util::JsonWriter& w, const Entry& e);

// {"ip": "...", "registry": [{entry_json's keys, then "class", "registered",
//  "updated", "contact", "metadata": {the same three}}, ...]}
std::string info_json(const net::Address& ip, const std::vector<Info>& infos);

}  // namespace regmilter::registry
