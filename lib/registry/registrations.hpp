// registry: the registrations file of a registry operator (regmilter-zone
// registry) -- one server a line -- parsed and checked for syntax, every
// error as FILE:LINE in one pass. No DNS and no I/O here (checks.hpp asks
// DNS); pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "net/address.hpp"

namespace regmilter::registry {

enum class ServerClass { regular, bulk };  // A 127.0.0.2 / 127.0.0.3 in the zone
const char* to_string(ServerClass);

// One line of the file:
//   IP HOSTNAME contact=HANDLE email=ADDR [phone=...] since=YYYY-MM-DD
//      [updated=YYYY-MM-DD] [class=regular|bulk]
struct Registration {
    int line = 0;
    net::Address ip;       // IPv4-mapped IPv6 is stored as IPv4
    std::string hostname;  // lower case, no trailing dot
    std::string contact;   // handle: the only contact detail published
    std::string email;
    std::string phone;      // empty when not given
    util::Day since = 0;    // days since 1970-01-01 (UTC)
    util::Day updated = 0;  // == since when not given
    ServerClass server_class = ServerClass::regular;
};

// One reason an entry (or a line) fails, printed as
//   "FILE:LINE: MESSAGE"                 (syntax: the line is not an entry)
//   "FILE:LINE: IP HOSTNAME: MESSAGE"    (an entry that fails a check)
struct Problem {
    std::string file;
    int line = 0;
    std::string subject;  // "192.0.2.36 mail.example.org", or empty
    std::string message;
    std::string str() const;
};

struct Parsed {
    std::vector<Registration> entries;  // the lines without errors, in file order
    std::vector<Problem> problems;      // in line order; several per line when several fields fail
    // Lines with errors whose IP and HOSTNAME parsed (other fields may be
    // missing): checks that need only those two can still report every reason.
    std::vector<Registration> broken;
};

// Field rules (every violation is a Problem on that line; the line is then
// not an entry):
//   IP        one IPv4 or IPv6 host address: no prefix ("/24": a network), no
//             zone id ("%eth0"); a repeated address is an error at the later line
//   HOSTNAME  1..253 octets, at least two labels, labels of 1..63 letters,
//             digits and '-' (not first or last), top label not all digits
//   contact   1..64 of A-Z a-z 0-9 . _ -, starting with a letter or digit
//   email     local@domain: a dot-atom local part of at most 64 octets
//             (RFC 5322 atext), a domain as HOSTNAME
//   phone     optional '+', then digits and - . ( ) /, at least 3 digits, <= 32
//   since, updated   YYYY-MM-DD, not after `today`; updated not before since
//   class     regular (default) or bulk
// Keys may come in any order, each once; unknown keys are errors.
Parsed parse_registrations(std::string_view text, std::string_view file, util::Day today);

}  // namespace regmilter::registry
