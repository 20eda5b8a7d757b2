// config: the ini file (inih) into one typed, validated, immutable Config.
// One table of options (options.hpp) drives the parser, the defaults, the
// validator, `-t`, the sample file check and the man-page check. The enums of
// the values live with the modules that decide with them (policy, registry,
// bulk); config only parses. No DNS, no policy decisions here.
// load_*() are reentrant; a Config is immutable once built (share it as
// std::shared_ptr<const Config>; reload builds a new one and swaps the pointer).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bulk/bulk.hpp"
#include "dns/nameserver.hpp"
#include "greylist/greylist.hpp"
#include "net/address.hpp"
#include "net/endpoint.hpp"
#include "policy/settings.hpp"
#include "ratelimit/ratelimit.hpp"
#include "registry/registry.hpp"
#include "util/date.hpp"
#include "util/problem.hpp"

namespace regmilter::config {

// The members below start as zeros: their defaults are the option table's
// (options.cpp), applied by defaults() and load_*(). A Config built any other
// way is not a valid configuration.

enum class SyslogFacility {
    mail,
    daemon,
    user,
    local0,
    local1,
    local2,
    local3,
    local4,
    local5,
    local6,
    local7
};
inline constexpr const char* syslog_facility_names[] = {
    "mail", "daemon", "user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"};
constexpr util::Names names_of(SyslogFacility) {
    return syslog_facility_names;
}

struct Milter {
    std::string socket;
    unsigned socket_mode = 0;  // octal in the file
    std::string user;
    std::string pid_file;
    policy::Mode mode = policy::Mode::enforce;
    std::string authserv_id;  // empty: the host name (the front end fills it in)
    policy::OnInternalError on_internal_error = policy::OnInternalError::tempfail;
    SyslogFacility syslog_facility = SyslogFacility::mail;
    int drain_timeout = 0;  // seconds
};

// [policy]: exceptions to every refusal.
struct Exemptions {
    // Lower case; "local@domain", or "local@" for that local part at any domain.
    std::vector<std::string> recipients;
};

struct Resolver {
    std::vector<dns::Nameserver> nameservers;  // empty: /etc/resolv.conf
    int timeout_ms = 0;                        // per query try
    int retries = 0;
    int cache_size = 0;        // entries; 0 disables the cache
    int stage_timeout_ms = 0;  // bound for all DNS of one SMTP stage
};

struct Trust {
    net::CidrSet networks;  // empty trusts nothing
    bool authenticated = false;
    std::vector<std::string> tls_issuers;  // exact {cert_issuer} values, with {verify} = OK
    policy::UnknownClient unknown_client = policy::UnknownClient::trust;
};

// [registry NAME]: the zone as the lookup needs it, and what the policy does
// with its answers.
struct Registry : registry::Zone {
    policy::CheckAction unregistered = policy::CheckAction::accept;  // meaning = registered
    policy::CheckAction listed = policy::CheckAction::accept;        // meaning = blocked
    std::optional<util::Day> enforce_after;                          // inclusive, 00:00 UTC
    policy::OnError on_error = policy::OnError::accept;
    std::string reject_text;    // %{ip} %{zone} %{info}; empty: default text
    int health_interval = 300;  // seconds between RFC 5782 §5 health checks; 0: none
    int line = 0;               // where the section started (for messages)
};

struct Spf {
    policy::CheckAction pass{}, fail{}, softfail{}, neutral{}, none{}, permerror{}, temperror{};
    bool check_helo = false;
    policy::ResultHeaders headers = policy::ResultHeaders::authentication_results;
    int void_lookups = 0;                              // RFC 7208 §4.6.4
    net::CidrSet trusted_forwarders;                   // clients whose mail skips SPF
    std::vector<std::string> trusted_forwarder_helos;  // lower case; skip SPF when the
                                                       // HELO is one of these and its A/AAAA is the client
};

// [state]: where greylisting and rate limits keep what they remember
// (policy/throttle.hpp makes the store).
struct State {
    policy::StateBackend backend = policy::StateBackend::memory;
    std::string redis;     // HOST:PORT, [IPv6]:PORT or unix:PATH (state::parse_redis_address)
    std::string prefix;    // before every Redis key
    int timeout_ms = 0;    // per Redis call
    std::string password;  // Redis AUTH; empty: none
    policy::OnError on_error = policy::OnError::accept;  // the store fails: pass, or 451
    std::string snapshot;                                // memory: the snapshot file; empty: none
    int snapshot_interval = 0;                           // seconds between snapshot saves
    long max_entries = 0;                                // memory: entries kept at most
    int pass_cache = 0;  // redis: seconds a pass is given again without asking Redis; 0: never
};

// [bulk]: the opt-out settings the bulk library decides with, and what the
// policy does when an opt-out zone cannot be asked.
struct Bulk : bulk::Settings {
    policy::OnError on_error = policy::OnError::accept;  // a [bulk] zone lookup failed
};

// [stats]: the statistics endpoint (regmilter(8) serves GET /metrics there).
struct Stats {
    std::optional<net::Endpoint> listen;  // none: no endpoint
};

struct Config {
    std::string source = "(defaults)";  // file name, or "(defaults)"
    Milter milter;
    Resolver resolver;
    Trust trust;
    std::vector<Registry> registries;  // in file order
    Spf spf;
    Bulk bulk;
    greylist::Settings greylist;
    ratelimit::Settings ratelimit;  // its network_v4/v6 are [greylist]'s
    State state;
    Exemptions exemptions;
    Stats stats;
};

// Every problem at once, in line order, each "FILE:LINE: [section] key:
// message, allowed: ..."; `value` set only when there is none.
using LoadResult = util::Parsed<Config>;

// The embedded defaults: what regmilter runs with when there is no file.
std::shared_ptr<const Config> defaults();
// Parse and validate a file. A file that cannot be read, or a directory, is
// one problem (line 0).
LoadResult load_file(const std::string& path);
// Parse and validate text; `name` is used as FILE in messages.
LoadResult load_string(std::string_view text, std::string_view name = "(string)");

}  // namespace regmilter::config
