// registry: DNS registry zones (allow-lists of registered mail servers and
// block-lists): query names, answer codes to a status, TXT metadata, FCrDNS.
// Decides only what one zone says about one address; actions are policy's.
// Pure functions over a dns::Resolver (one thread per Resolver); no state.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "dns/resolver.hpp"
#include "net/address.hpp"
#include "util/names.hpp"

namespace regmilter::registry {

// How a client address becomes a name in the zone (query_name()).
enum class Format { dashed, reversed };
inline constexpr const char* format_names[] = {"dashed", "reversed"};
constexpr util::Names names_of(Format) {
    return format_names;
}

// registered: an allow-list (unlisted = unregistered); blocked: a block-list.
enum class Meaning { registered, blocked };
inline constexpr const char* meaning_names[] = {"registered", "blocked"};
constexpr util::Names names_of(Meaning) {
    return meaning_names;
}

// One zone as the lookup needs it ([registry NAME] in the configuration).
struct Zone {
    std::string name;  // NAME of [registry NAME]
    std::string zone;  // lower case, no trailing dot
    Format format{};
    Meaning meaning{};
    std::vector<net::Address> bulk_codes;  // answers meaning "registered, declared bulk sender"
    bool require_fcrdns{};                 // listed also needs forward-confirmed reverse DNS
};

enum class Status { listed, unlisted, error };
inline constexpr const char* status_names[] = {"listed", "unlisted", "error"};
constexpr util::Names names_of(Status) {
    return status_names;
}
inline const char* to_string(Status s) {
    return util::name_of(s);
}

// What one zone said about the client.
struct Entry {
    std::string name;  // [registry NAME]
    std::string zone;
    Meaning meaning = Meaning::registered;
    std::string query;  // the name asked ("192-0-2-36.reg.example")
    Status status = Status::unlisted;
    std::string code;   // the answer that decided ("127.0.0.2"), empty when unlisted
    bool bulk = false;  // listed with one of bulk_codes
    std::string info;   // TXT metadata at the same name (registered-since, contact)
    std::string error;  // status == error: why ("timeout", "answer 127.255.255.254 ...")
    // require_fcrdns: PTR then A/AAAA back to the client.
    bool fcrdns_checked = false;
    bool fcrdns_ok = false;
    std::string fcrdns_detail;  // the confirmed name, or why not
};

// The name to ask, without trailing dot. IPv4-mapped IPv6 is IPv4.
//   dashed   IPv4 "192-0-2-36.ZONE"; IPv6 eight groups of four lower-case hex
//            digits joined by dashes: "2001-0db8-0000-...-0007.ZONE"
//   reversed RFC 5782 §2.1/§2.4: "36.2.0.192.ZONE"; IPv6 32 nibbles reversed
std::string query_name(const net::Address& ip, Format format, std::string_view zone);
// The same name without the zone and without unmapping: "192-0-2-36",
// "36.2.0.192"; ::ffff:127.0.0.2 stays IPv6 (the RFC 5782 §5 IPv6 test point).
std::string query_label(const net::Address& ip, Format format);

// RFC 5782 §2.3 / DESIGN "Registry answers": A records of one lookup to a status.
// Only 127.0.0.0/8 counts; 127.0.0.1, 127.255.255.0/24 and anything outside
// 127/8 are errors ("query refused", "bad answer"), never listings. When any
// answer is an error the lookup is an error. `bulk` when a code is in bulk_codes.
struct Classified {
    Status status = Status::unlisted;
    std::string code;
    bool bulk = false;
    std::string error;
};
Classified classify(const dns::DnsAnswer& a, const Zone& zone);

// One zone for one client: A lookup, then (when listed) TXT at the same name,
// then (require_fcrdns and listed) the FCrDNS check. DNS trouble is
// Status::error with the reason; nothing throws.
Entry lookup(dns::Resolver& dns, const net::Address& ip, const Zone& zone, dns::Deadline deadline);

// Forward-confirmed reverse DNS: some PTR name of ip has an A/AAAA equal to ip.
struct Fcrdns {
    enum class Result { pass, fail, temperror } result = Result::fail;
    std::string detail;  // the confirmed name, or why not
};
Fcrdns check_fcrdns(dns::Resolver& dns, const net::Address& ip, dns::Deadline deadline);

// %{ip} %{zone} %{info} in reject_text; other text is kept as is.
std::string expand_text(std::string_view text, const net::Address& ip, const Entry& e);

}  // namespace regmilter::registry
