// config: the ini file (inih) into one typed, validated, immutable Config.
// One table of options (options()) drives the parser, the validator, `-t`,
// the sample file and the man-page check. No DNS, no policy decisions here.
// load_*() are reentrant; a Config is immutable once built (share it as
// std::shared_ptr<const Config>; reload builds a new one and swaps the pointer).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/address.hpp"

namespace regmilter::config {

enum class Mode { enforce, observe };
// What one check asks for. Order matters: stronger is greater (DESIGN "Several verdicts").
enum class Action { accept, tag, tempfail, reject };
enum class OnError { accept, tempfail };
enum class OnInternalError { tempfail, accept };
enum class Format { dashed, reversed };
enum class Meaning { registered, blocked };
enum class SpfHeaders { authentication_results, received_spf, both, none };
enum class BulkChoice { accept, reject };  // opted in / opted out
enum class BulkAction { reject, discard, tag };
// A client without an IP address (unix socket, Postfix "unknown[unknown]"):
// trust = treated as a trusted client (registry and SPF skipped, bulk applies);
// accept = the whole connection is accepted unexamined, no headers.
enum class UnknownClient { trust, accept };

const char* to_string(Mode);
const char* to_string(Action);
const char* to_string(OnError);
const char* to_string(Format);
const char* to_string(Meaning);
const char* to_string(BulkChoice);
const char* to_string(BulkAction);

struct Milter {
    std::string socket = "unix:/var/spool/postfix/regmilter/regmilter.sock";
    unsigned socket_mode = 0660;  // octal in the file
    std::string user = "regmilter";
    std::string pid_file = "/run/regmilter/regmilter.pid";
    Mode mode = Mode::enforce;
    std::string authserv_id;  // empty: the host name (the front end fills it in)
    OnInternalError on_internal_error = OnInternalError::tempfail;
};

struct Resolver {
    std::vector<std::string> nameservers;  // HOST[:PORT] / [V6]:PORT; empty: /etc/resolv.conf
    int timeout_ms = 2000;                 // per query try
    int retries = 2;
    int cache_size = 10000;        // entries; 0 disables the cache
    int stage_timeout_ms = 10000;  // bound for all DNS of one SMTP stage
};

// 127.0.0.0/8 ::1/128, the [trust] networks default.
net::CidrSet default_trusted_networks();

struct Trust {
    net::CidrSet networks = default_trusted_networks();  // empty trusts nothing
    bool authenticated = true;                           // {auth_authen} set => trusted
    std::vector<std::string> tls_issuers;                // exact {cert_issuer} values, with {verify} = OK
    UnknownClient unknown_client = UnknownClient::trust;
};

// Days since 1970-01-01 (UTC) of a YYYY-MM-DD date.
using Day = int64_t;

struct Registry {
    std::string name;  // NAME of [registry NAME]
    std::string zone;
    Format format = Format::dashed;
    Meaning meaning = Meaning::registered;
    Action unregistered = Action::tag;  // meaning = registered
    Action listed = Action::reject;     // meaning = blocked
    std::optional<Day> enforce_after;   // inclusive, 00:00 UTC
    OnError on_error = OnError::accept;
    std::string reject_text;  // %{ip} %{zone} %{info}; empty: default text
    std::vector<net::Address> bulk_codes{net::Address::v4(0x7f000003)};  // 127.0.0.3
    bool require_fcrdns = false;
    int line = 0;  // where the section started (for messages)
};

struct Spf {
    Action pass = Action::accept;
    Action fail = Action::reject;
    Action softfail = Action::tag;
    Action neutral = Action::accept;
    Action none = Action::accept;
    Action permerror = Action::tag;
    Action temperror = Action::tempfail;
    bool check_helo = true;
    SpfHeaders headers = SpfHeaders::authentication_results;
    int void_lookups = 2;                              // RFC 7208 §4.6.4 default
    net::CidrSet trusted_forwarders;                   // clients whose mail skips SPF
    std::vector<std::string> trusted_forwarder_helos;  // lower case; skip SPF when the
                                                       // HELO is one of these and its A/AAAA is the client
};

struct Bulk {
    std::string table;  // path; empty: no table (everyone gets `default`)
    BulkChoice default_choice = BulkChoice::accept;
    std::vector<std::string> sender_domains;  // lower case; match the domain and subdomains
    net::CidrSet sender_networks;
    bool header_signals = true;
    BulkAction action = BulkAction::reject;
    std::string recipient_delimiter = "+";  // each character is a delimiter; empty: none
};

struct Config {
    std::string source = "(defaults)";  // file name, or "(defaults)"
    Milter milter;
    Resolver resolver;
    Trust trust;
    std::vector<Registry> registries;  // in file order
    Spf spf;
    Bulk bulk;
};

// One problem in a file. str(): "FILE:LINE: [section] key: message".
struct Error {
    std::string file;
    int line = 0;
    std::string section;  // as written ("registry reg"), may be empty
    std::string key;      // may be empty
    std::string message;
    std::string str() const;
};

struct LoadResult {
    std::shared_ptr<const Config> config;  // null when errors is not empty
    std::vector<Error> errors;             // every problem, in line order
};

// The embedded defaults: what regmilter runs with when there is no file.
std::shared_ptr<const Config> defaults();
// Parse and validate a file. A missing/unreadable file is one error (line 0).
LoadResult load_file(const std::string& path);
// Parse and validate text; `name` is used as FILE in messages.
LoadResult load_string(std::string_view text, std::string_view name = "(string)");

// The option table, for `-t`, the man-page check and documentation.
enum class Type {
    boolean,
    integer,
    octal,
    string,
    choice,
    cidr_list,
    address_list,
    string_list,
    domain_or_cidr_list,
    date,
    path
};
struct Option {
    const char* section;  // "milter", "resolver", "trust", "registry", "spf", "bulk"
    const char* key;
    Type type;
    const char* default_value;  // as written in the file ("" = empty)
    const char* allowed;        // "yes|no", "100..30000", "CIDR ...", ...
    const char* help;
};
const std::vector<Option>& options();
const char* to_string(Type);

// "2026-03-01" -> days since epoch; nullopt unless a real YYYY-MM-DD date.
std::optional<Day> parse_date(std::string_view text);
std::string format_date(Day d);

}  // namespace regmilter::config
