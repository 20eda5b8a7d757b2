// bulk: the opt-out list published over DNS (DESIGN "Contracts for the next
// capabilities"): a recipient's label (SHA-256 of the normalized address,
// base32), the lookup of a recipient in opt-out zones over dns::Resolver, and
// the zone file / rbldnsd dataset `regmilter-zone optout` builds from a bulk
// table. A list provider publishes hashes, never addresses.
// lookup_*() ask DNS through the Resolver given (one thread per Resolver, as
// every Resolver); all other functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "bulk/bulk.hpp"
#include "dns/resolver.hpp"
#include "dns/zone_file.hpp"

namespace regmilter::bulk {

// RFC 4648 §6 base32, lower case, without '=' padding.
std::string base32(const uint8_t* data, size_t size);
// The label of a key: base32 of its SHA-256 (52 characters, one DNS label).
// "@example.org" -> the label of the domain entry. Shell check:
//   printf %s 'bob@example.org' | sha256sum | cut -c1-64 | xxd -r -p | base32 | tr -d = | tr A-Z a-z
std::string optout_label(std::string_view key);

// The contract key of a recipient: "local@domain", the local part as written
// (<>, source route and quotes dropped as bulk::normalize does), the domain
// lower-cased, the detail removed (from the first character of
// recipient_delimiter on, when that is not the first character of the local
// part). Empty when rcpt is not an address.
std::string optout_key(std::string_view rcpt, std::string_view recipient_delimiter);

// The keys asked for one recipient, in this order, each once -- the order of
// bulk::lookup, so a zone built from a table answers what the table answers:
//   1. the address as written (with its detail), 2. the same, local part in
//   lower case, 3. optout_key() (detail removed), 4. the same in lower case,
//   5. "@domain".
// A contract-only publisher (labels of optout_key()) is found at step 3 or 5.
std::vector<std::string> optout_keys(std::string_view rcpt, std::string_view recipient_delimiter);

enum class ZoneStatus { opted_out, opted_in, none, error };
const char* to_string(ZoneStatus);  // "opted-out", "opted-in", "none", "error"

struct ZoneAnswer {
    ZoneStatus status = ZoneStatus::none;
    std::string zone;   // the zone that decided (or failed); empty for none
    std::string key;    // the key whose label answered ("bob@example.org", "@example.org")
    std::string query;  // the name asked last ("LABEL.optout.example")
    std::string code;   // the answer that decided ("127.0.0.2")
    std::string error;  // status == error: why ("timeout (...)", "answer 127.0.0.9 ..."), for logs
    std::string cause;  // the same without the resolver's details ("timeout"), for SMTP replies
    uint32_t ttl = 0;   // of the deciding answer, or of the last negative one (cache it that long)
};

// One recipient in one zone: asks A of LABEL.ZONE for each key of
// optout_keys() until one exists. A 127.0.0.2 answer is opted_out (it wins
// over 127.0.0.3 in the same answer), 127.0.0.3 opted_in; any other answer,
// a timeout, SERVFAIL or a garbled reply is an error and ends the lookup
// (a later key must not decide while an earlier one is unknown); NXDOMAIN or
// NODATA for every key is none. Never throws for DNS trouble.
ZoneAnswer lookup_zone(dns::Resolver& dns, std::string_view rcpt, std::string_view zone,
                       std::string_view recipient_delimiter, dns::Deadline deadline);
// Several zones ([bulk] zone = A B ...) in order: the first answer that is
// not none (opted_out, opted_in or error) decides; none when every zone says none.
ZoneAnswer lookup_zones(dns::Resolver& dns, std::string_view rcpt, const std::vector<std::string>& zones,
                        std::string_view recipient_delimiter, dns::Deadline deadline);

// The answers of a published table.
constexpr const char* code_opted_out = "127.0.0.2";  // KEY reject
constexpr const char* code_opted_in = "127.0.0.3";   // KEY accept

// Empty when ZONE can hold the 52-character labels (within 253 octets).
std::string check_optout_zone_name(std::string_view zone);

// One published name: each table entry gets the label of its key as written
// and, when that differs, of its lower-case key (the table compares local
// parts case-insensitively). Sorted by label, so nothing of the table's order
// is published.
struct Published {
    std::string label;
    const char* code = code_opted_out;
};
std::vector<Published> published_labels(const std::vector<Entry>& entries);

// Zone file: head, then "LABEL IN A CODE" per published label.
void write_optout_zone(std::ostream& out, const std::vector<Entry>& entries, const dns::ZoneHead& head,
                       const std::vector<std::string>& comments);
// rbldnsd dnset dataset (rbldnsd(8)), loaded as ZONE:dnset:FILE.
void write_optout_rbldnsd(std::ostream& out, const std::vector<Entry>& entries, const dns::ZoneHead& head,
                          const std::vector<std::string>& comments);

}  // namespace regmilter::bulk
