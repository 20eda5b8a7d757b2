// registry: publishing checked registrations -- a zone file that NSD, Knot and
// BIND load, and an rbldnsd dataset -- with the RFC 5782 §5 test points.
// Writes text to the stream it is given (util::AtomicFile makes it a file);
// decides nothing about which entries pass (checks.hpp). Pure; thread-safe.
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "dns/zone_file.hpp"
#include "registry/registrations.hpp"

namespace regmilter::registry {

// Which names a server gets (DESIGN "IPv6 names"): dashed "192-0-2-36.ZONE",
// "2001-0db8-...-0007.ZONE"; reversed (RFC 5782 §2.1, §2.4) "36.2.0.192.ZONE".
struct Forms {
    bool dashed = true;
    bool reversed = false;
};

struct PublishSettings {
    dns::ZoneHead head;  // zone, SOA, NS, TTL
    Forms forms;
    std::vector<std::string> comments;  // written at the top (source file, counts)
};

// Answers (DESIGN "Registry answers"; the milter's default bulk_codes).
constexpr const char* code_regular = "127.0.0.2";
constexpr const char* code_bulk = "127.0.0.3";
// The TXT of the test points, which are always listed with code_regular:
// 127.0.0.2 and ::FFFF:7F00:2; 127.0.0.1 and ::FFFF:7F00:1 never are.
constexpr const char* test_point_text = "test point (RFC 5782 section 5)";

// Empty when every name of the zone fits (check_domain, and the longest
// owner name, 32 nibbles for reversed IPv6, within 253 octets); else why not.
std::string check_zone_name(std::string_view zone, const Forms& forms);

// The one TXT of a server: "registered=YYYY-MM-DD updated=YYYY-MM-DD contact=HANDLE".
// Only the handle is published; email and phone stay with the operator.
std::string metadata_txt(const Registration& r);

// The same TXT read back, for a client such as regmilter-query --registry-info:
// the words registered=, updated= and contact=; a field that is missing or
// not of its form (YYYY-MM-DD; the handle syntax) stays empty, other words
// are ignored. Pure.
struct Metadata {
    std::string registered, updated, contact;
};
Metadata parse_metadata(std::string_view txt);

// The entries to publish, prepared once (sorted by address, IPv4 first, test
// points ahead; names and texts computed) for any number of outputs.
class Publication {
public:
    Publication(const std::vector<Registration>& entries, const Forms& forms);
    size_t servers() const { return items_.size() - 2; }  // without the two test points

    // Zone file: head, then each chosen form ("; dashed names", "; reversed
    // names"), each name as "NAME IN A CODE" and "IN TXT METADATA".
    void write_zone(std::ostream& out, const PublishSettings& s) const;
    // rbldnsd "combined" dataset (rbldnsd(8)), loaded as ZONE:combined:FILE:
    // $SOA/$NS/$TTL, then "$DATASET ip4set @" and "$DATASET ip6trie @" for
    // the reversed form and "$DATASET dnset @" for the dashed form, each entry
    // as "KEY :CODE:METADATA", test points included.
    void write_rbldnsd(std::ostream& out, const PublishSettings& s) const;

private:
    struct Item {
        net::Address ip;
        const char* code;
        std::string txt;       // metadata, as published
        std::string dashed;    // label, when forms.dashed
        std::string reversed;  // label, when forms.reversed
    };
    Forms forms_;
    std::vector<Item> items_;
};

// One-shot forms of the above.
void write_zone(std::ostream& out, const std::vector<Registration>& entries, const PublishSettings& s);
void write_rbldnsd(std::ostream& out, const std::vector<Registration>& entries, const PublishSettings& s);

}  // namespace regmilter::registry
