// dns: zone files as text, in the presentation format of RFC 1035 §5 (NSD,
// Knot and BIND read it) and as rbldnsd datasets: the head (SOA, NS), serial
// numbers (RFC 1982), TXT quoting, domain-name checks. Writes to the stream it
// is given and reads the text it is given: no file or network I/O here.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace regmilter::dns {

// What the SOA and NS records of a generated zone say.
struct ZoneHead {
    std::string zone;                      // lower case, no trailing dot ("registry.example")
    std::vector<std::string> nameservers;  // absolute names, no trailing dot; empty: "localhost"
    std::string hostmaster;                // a mailbox ("hostmaster@example.org"); empty: hostmaster@ZONE
    uint32_t serial = 1;
    uint32_t ttl = 3600;                                                    // seconds, every record
    uint32_t refresh = 3600, retry = 900, expire = 1209600, minimum = 300;  // seconds (SOA)
};

// $ORIGIN, $TTL, SOA and NS records, each comment line prefixed with "; ".
// Owner names that follow are relative to $ORIGIN (the zone).
void write_zone_head(std::ostream& out, const ZoneHead& head, const std::vector<std::string>& comments);
// The rbldnsd form: comment lines ("# "), $SOA, $NS, $TTL (rbldnsd(8) "Special Entries").
void write_rbldnsd_head(std::ostream& out, const ZoneHead& head, const std::vector<std::string>& comments);

// Lower case without the trailing dot: the form every other function here takes.
std::string canonical_name(std::string_view name);
// Empty when `name` (canonical form) is a domain name a zone can be published
// under: 1..253 octets, labels of 1..63 letters, digits, '-' or '_', no label
// starting or ending with '-'. Otherwise a sentence naming it, e.g.
//   "reg..example": empty label
std::string check_domain(std::string_view name);
// The SOA RNAME of a mailbox (RFC 1035 §8): "host.master@example.org" gives
// "host\.master.example.org". Empty when `mailbox` has no '@' or a bad domain.
std::string soa_mailbox(std::string_view mailbox);

// RFC 1982 §3.2: true when serial a is greater than b (in the 2^31 window).
bool serial_newer(uint32_t a, uint32_t b);
// The serial of a rebuild: YYYYMMDD00 of `today` (e.g. 20250110 for
// 2025-01-10) when that is newer than `previous`, otherwise previous + 1
// (mod 2^32; 0 is skipped). Without a previous serial: YYYYMMDD00.
uint32_t next_serial(std::optional<uint32_t> previous, uint32_t today_yyyymmdd);
// The serial of the first SOA record in a zone file's text (comments,
// quoted strings and parentheses understood; an rbldnsd "$SOA" line also
// counts). nullopt and `error` set when there is none or it is not a number.
std::optional<uint32_t> read_soa_serial(std::string_view text, std::string& error);

// A TXT character-string in quotes (RFC 1035 §5.1): '"' and '\' escaped,
// bytes outside printable ASCII as \DDD. At most 255 octets: the caller
// keeps texts shorter.
std::string quote_txt(std::string_view text);

}  // namespace regmilter::dns
