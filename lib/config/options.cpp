#include "config/options.hpp"

#include <type_traits>

#include "config/values.hpp"
#include "state/redis_store.hpp"

namespace regmilter::config {

bool Option::is_list() const {
    switch (type) {
        case Type::nameserver_list:
        case Type::cidr_list:
        case Type::code_list:
        case Type::line_list:
        case Type::domain_list:
        case Type::sender_list:
        case Type::recipient_list:
            return true;
        default:
            return false;
    }
}

std::string Option::allowed() const {
    switch (type) {
        case Type::boolean:
            return "yes|no";
        case Type::integer:
            return std::to_string(min) + ".." + std::to_string(max);
        case Type::octal: {
            char lo[8], hi[8];
            std::snprintf(lo, sizeof lo, "%04lo", static_cast<unsigned long>(min));
            std::snprintf(hi, sizeof hi, "%04lo", static_cast<unsigned long>(max));
            return std::string(lo) + ".." + hi;
        }
        case Type::choice:
            return names.joined("|");
        default:
            return allowed_text ? allowed_text : "";
    }
}

namespace {

// ---- typed rows: the field's C++ type must fit the option's Type ----

template <class M>
struct Member;
template <class C, class V>
struct Member<V C::*> {
    using Class = C;
    using Value = V;
};

template <class C>
C& part(Target& t);
template <>
Milter& part<Milter>(Target& t) {
    return t.cfg.milter;
}
template <>
Resolver& part<Resolver>(Target& t) {
    return t.cfg.resolver;
}
template <>
Trust& part<Trust>(Target& t) {
    return t.cfg.trust;
}
template <>
registry::Zone& part<registry::Zone>(Target& t) {
    return *t.reg;
}
template <>
Registry& part<Registry>(Target& t) {
    return *t.reg;
}
template <>
Spf& part<Spf>(Target& t) {
    return t.cfg.spf;
}
template <>
bulk::Settings& part<bulk::Settings>(Target& t) {
    return t.cfg.bulk;
}
template <>
Bulk& part<Bulk>(Target& t) {
    return t.cfg.bulk;
}
template <>
greylist::Settings& part<greylist::Settings>(Target& t) {
    return t.cfg.greylist;
}
template <>
ratelimit::Settings& part<ratelimit::Settings>(Target& t) {
    return t.cfg.ratelimit;
}
template <>
State& part<State>(Target& t) {
    return t.cfg.state;
}
template <>
Exemptions& part<Exemptions>(Target& t) {
    return t.cfg.exemptions;
}
template <>
Stats& part<Stats>(Target& t) {
    return t.cfg.stats;
}

template <class C>
constexpr const char* section_of() {
    if constexpr (std::is_same_v<C, Milter>) return "milter";
    if constexpr (std::is_same_v<C, Resolver>) return "resolver";
    if constexpr (std::is_same_v<C, Trust>) return "trust";
    if constexpr (std::is_same_v<C, registry::Zone> || std::is_same_v<C, Registry>) return "registry";
    if constexpr (std::is_same_v<C, Spf>) return "spf";
    if constexpr (std::is_same_v<C, bulk::Settings> || std::is_same_v<C, Bulk>) return "bulk";
    if constexpr (std::is_same_v<C, greylist::Settings>) return "greylist";
    if constexpr (std::is_same_v<C, ratelimit::Settings>) return "ratelimit";
    if constexpr (std::is_same_v<C, State>) return "state";
    if constexpr (std::is_same_v<C, Exemptions>) return "policy";
    if constexpr (std::is_same_v<C, Stats>) return "stats";
}

template <Type T, class V>
constexpr bool fits() {
    switch (T) {
        case Type::boolean:
            return std::is_same_v<V, bool>;
        case Type::integer:  // the settings structs' own integer types
            return std::is_same_v<V, int> || std::is_same_v<V, long> || std::is_same_v<V, unsigned> ||
                   std::is_same_v<V, unsigned long>;
        case Type::octal:
            return std::is_same_v<V, unsigned>;
        case Type::choice:
            return std::is_enum_v<V>;
        case Type::text:
        case Type::user:
        case Type::domain:
        case Type::path:
        case Type::file:
        case Type::socket:
        case Type::delimiter:
            return std::is_same_v<V, std::string>;
        case Type::nameserver_list:
            return std::is_same_v<V, std::vector<dns::Nameserver>>;
        case Type::cidr_list:
            return std::is_same_v<V, net::CidrSet>;
        case Type::code_list:
            return std::is_same_v<V, std::vector<net::Address>>;
        case Type::line_list:
        case Type::domain_list:
        case Type::recipient_list:
            return std::is_same_v<V, std::vector<std::string>>;
        case Type::sender_list:
            return std::is_same_v<V, bulk::Senders>;
        case Type::date:
            return std::is_same_v<V, std::optional<util::Day>>;
        case Type::endpoint:
            return std::is_same_v<V, std::optional<net::Endpoint>>;
    }
    return false;
}

// What a row allows besides its type: bounds, names, or words.
struct Allowed {
    long min = 0, max = 0;
    util::Names names;
    const char* text = nullptr;
};
Allowed range(long lo, long hi) {
    return {lo, hi, {}, nullptr};
}
Allowed one_of(util::Names n) {
    return {0, 0, n, nullptr};
}
Allowed words(const char* text) {
    return {0, 0, {}, text};
}

// One row: type T, field M, key, default (as written in a file), what it
// allows, help text.
template <Type T, auto M>
Option row(const char* key, const char* default_value, Allowed allowed, const char* help) {
    using C = typename Member<decltype(M)>::Class;
    using V = typename Member<decltype(M)>::Value;
    static_assert(fits<T, V>(), "the option's type does not fit its field");
    static_assert(T != Type::choice || std::is_enum_v<V>, "a choice sets an enum");
    Option o{section_of<C>(), key,          T,    default_value, allowed.min, allowed.max,
             allowed.names,   allowed.text, help, nullptr};
    o.set = [](const Option& opt, Target& t, const std::vector<std::string>& lines) {
        return values::parse(opt, lines, part<C>(t).*M);
    };
    return o;
}

using policy::check_action_names;
using policy::spf_action_names;

// [milter]
std::vector<Option> milter_rows() {
    return {
        row<Type::socket, &Milter::socket>("socket", "unix:/var/spool/postfix/regmilter/regmilter.sock",
                                           words("unix:PATH|local:PATH|inet:PORT@HOST|inet6:PORT@HOST"),
                                           "Where the milter listens; regmilter -p overrides it."),
        row<Type::octal, &Milter::socket_mode>(
            "socket_mode", "0660", range(0, 0777),
            "File mode of a unix socket; put the MTA's user in the socket's group."),
        row<Type::user, &Milter::user>(
            "user", "regmilter", words("a user name"),
            "User to run as after opening the socket, when started as root; owns the unix socket."),
        row<Type::path, &Milter::pid_file>("pid_file", "/run/regmilter/regmilter.pid",
                                           words("an absolute path, or empty for none"),
                                           "Process id file written after start."),
        row<Type::choice, &Milter::mode>(
            "mode", "enforce", one_of(policy::mode_names),
            "observe computes and logs every verdict, adds X-Regmilter: would ... headers, refuses "
            "nothing."),
        row<Type::domain, &Milter::authserv_id>(
            "authserv_id", "", words("a host name; empty: this host's name"),
            "The authserv-id of Authentication-Results (RFC 8601 §2.5); headers already claiming it are "
            "removed."),
        row<Type::choice, &Milter::on_internal_error>(
            "on_internal_error", "tempfail", one_of(policy::on_internal_error_names),
            "Answer when regmilter itself fails: tempfail is 451 4.3.0."),
        row<Type::choice, &Milter::syslog_facility>("syslog_facility", "mail", one_of(syslog_facility_names),
                                                    "The syslog facility of every log line."),
        row<Type::integer, &Milter::drain_timeout>(
            "drain_timeout", "20", range(0, 3600),
            "Seconds SIGTERM waits for open SMTP sessions before closing them; keep it below the "
            "service manager's stop timeout (the unit's TimeoutStopSec=30)."),
    };
}

// [resolver]
std::vector<Option> resolver_rows() {
    return {
        row<Type::nameserver_list, &Resolver::nameservers>(
            "nameservers", "", words("HOST[:PORT] ... (IP addresses); empty: /etc/resolv.conf"),
            "Recursive nameservers to ask."),
        row<Type::integer, &Resolver::timeout_ms>("timeout_ms", "2000", range(100, 30000),
                                                  "Milliseconds to wait for one answer."),
        row<Type::integer, &Resolver::retries>("retries", "2", range(0, 10),
                                               "Further tries after a timeout."),
        row<Type::integer, &Resolver::cache_size>(
            "cache_size", "10000", range(0, 10000000),
            "Answers kept in the shared cache (positive and negative); 0 disables it."),
        row<Type::integer, &Resolver::stage_timeout_ms>(
            "stage_timeout_ms", "10000", range(1000, 25000),
            "Bound for all DNS of one SMTP stage, below the MTA's milter timeouts (Postfix: 30 s)."),
    };
}

// [trust]
std::vector<Option> trust_rows() {
    return {
        row<Type::cidr_list, &Trust::networks>("networks", "127.0.0.0/8 ::1/128",
                                               words("CIDR ...; empty trusts no network"),
                                               "Clients in these networks skip the registry and SPF checks."),
        row<Type::boolean, &Trust::authenticated>(
            "authenticated", "yes", {},
            "SMTP-authenticated sessions ({auth_authen} set) skip the registry and SPF checks."),
        row<Type::line_list, &Trust::tls_issuers>(
            "tls_issuers", "", words("one issuer per line, exactly as {cert_issuer} shows it"),
            "Verified TLS client certificates ({verify} = OK) from these issuers skip the checks."),
        row<Type::choice, &Trust::unknown_client>(
            "unknown_client", "trust", one_of(policy::unknown_client_names),
            "A client without an IP address (unix socket, unknown): trust skips registry and SPF; "
            "accept passes the whole connection unexamined."),
    };
}

// [registry NAME]
std::vector<Option> registry_rows() {
    return {
        row<Type::domain, &registry::Zone::zone>("zone", "", words("a DNS zone (required)"),
                                                 "The registry's zone."),
        row<Type::choice, &registry::Zone::format>(
            "format", "dashed", one_of(registry::format_names),
            "dashed: 192-0-2-36.ZONE; reversed: 36.2.0.192.ZONE (RFC 5782)."),
        row<Type::choice, &registry::Zone::meaning>(
            "meaning", "registered", one_of(registry::meaning_names),
            "registered: an allow-list (unlisted = unregistered); blocked: a block-list."),
        row<Type::choice, &Registry::unregistered>("unregistered", "tag", one_of(check_action_names),
                                                   "Action for a server not in a meaning = registered zone."),
        row<Type::choice, &Registry::listed>("listed", "reject", one_of(check_action_names),
                                             "Action for a server in a meaning = blocked zone."),
        row<Type::date, &Registry::enforce_after>(
            "enforce_after", "", words("YYYY-MM-DD; empty: always"),
            "Before 00:00 UTC of this date, reject and tempfail of this zone become tag."),
        row<Type::choice, &Registry::on_error>(
            "on_error", "accept", one_of(policy::on_error_names),
            "When the zone cannot be asked (timeout, SERVFAIL, error answers): tempfail is 451 4.4.3."),
        row<Type::text, &Registry::reject_text>(
            "reject_text", "", words("text with %{ip} %{zone} %{info}; empty: default"),
            "Reply text of this zone's refusals, also appended to its X-Regmilter tag."),
        row<Type::code_list, &registry::Zone::bulk_codes>(
            "bulk_codes", "127.0.0.3", words("addresses in 127.0.0.0/8 ..."),
            "Answers that mean \"registered, declared bulk sender\"."),
        row<Type::boolean, &registry::Zone::require_fcrdns>(
            "require_fcrdns", "no", {},
            "A listed server also needs forward-confirmed reverse DNS to count as registered."),
        row<Type::integer, &Registry::health_interval>(
            "health_interval", "300", range(0, 86400),
            "Seconds between checks of the zone's RFC 5782 test points (127.0.0.2 listed, 127.0.0.1 "
            "not), also made at start and reload; a zone that fails them gets on_error for every "
            "lookup until it passes again. 0: no checks."),
    };
}

// [spf]
std::vector<Option> spf_rows() {
    return {
        row<Type::choice, &Spf::pass>("pass", "accept", one_of(spf_action_names), "Action for SPF pass."),
        row<Type::choice, &Spf::fail>("fail", "reject", one_of(spf_action_names),
                                      "Action for SPF fail (550 5.7.23)."),
        row<Type::choice, &Spf::softfail>("softfail", "tag", one_of(spf_action_names),
                                          "Action for SPF softfail."),
        row<Type::choice, &Spf::neutral>("neutral", "accept", one_of(spf_action_names),
                                         "Action for SPF neutral."),
        row<Type::choice, &Spf::none>("none", "accept", one_of(spf_action_names),
                                      "Action when there is no SPF record."),
        row<Type::choice, &Spf::permerror>("permerror", "tag", one_of(spf_action_names),
                                           "Action for SPF permerror (550 5.7.24)."),
        row<Type::choice, &Spf::temperror>(
            "temperror", "tempfail", one_of(spf_action_names),
            "Action for SPF temperror (451 4.7.24; reject answers 550 5.7.24, not advised)."),
        row<Type::boolean, &Spf::check_helo>(
            "check_helo", "yes", {},
            "Also check the HELO identity; a HELO fail acts like a MAIL FROM fail (RFC 7208 §2.3)."),
        row<Type::choice, &Spf::headers>("headers", "authentication-results",
                                         one_of(policy::result_headers_names),
                                         "Which SPF result headers to add."),
        row<Type::integer, &Spf::void_lookups>(
            "void_lookups", "2", range(0, 20),
            "Void DNS lookups allowed before permerror (RFC 7208 §4.6.4)."),
        row<Type::cidr_list, &Spf::trusted_forwarders>(
            "trusted_forwarders", "", words("CIDR ..."),
            "Forwarders and list servers whose mail skips SPF (registry checks still apply)."),
        row<Type::domain_list, &Spf::trusted_forwarder_helos>(
            "trusted_forwarder_helos", "", words("host names ..."),
            "Forwarders known by HELO name: SPF is skipped when the HELO is one of these and its A/AAAA "
            "records include the client address."),
    };
}

// [bulk]
std::vector<Option> bulk_rows() {
    return {
        row<Type::file, &bulk::Settings::table>("table", "", words("an absolute path; empty: no table"),
                                                "The opt-out table; reloaded when the file changes."),
        row<Type::choice, &bulk::Settings::default_choice>(
            "default", "accept", one_of(bulk::choice_names),
            "Choice of a recipient the table does not name: accept = receives bulk."),
        row<Type::sender_list, &bulk::Settings::senders>(
            "senders", "", words("DOMAIN|CIDR ..."),
            "Known bulk senders: MAIL FROM domains (and their subdomains) and client networks."),
        row<Type::boolean, &bulk::Settings::header_signals>(
            "header_signals", "yes", {},
            "Treat Precedence: bulk|list|junk, List-Id and List-Unsubscribe as bulk."),
        row<Type::choice, &bulk::Settings::action>("action", "reject", one_of(bulk::action_names),
                                                   "What an opted-out recipient of bulk mail gets."),
        row<Type::delimiter, &bulk::Settings::recipient_delimiter>(
            "recipient_delimiter", "+", words("punctuation characters, each a delimiter; empty: none"),
            "Separates user from detail (user+detail), as Postfix's recipient_delimiter."),
        row<Type::domain_list, &bulk::Settings::zones>(
            "zone", "", words("DNS zones ... (each at most 200 octets); empty: none"),
            "Opt-out zones (regmilter-zone optout), asked in order at RCPT for a recipient the table does "
            "not name: 127.0.0.2 opted out, 127.0.0.3 opted in; the local table wins."),
        row<Type::choice, &Bulk::on_error>(
            "on_error", "accept", one_of(policy::on_error_names),
            "When an opt-out zone cannot be asked (timeout, SERVFAIL, other answers): accept delivers as "
            "if opted in; tempfail answers 451 4.4.3 for bulk mail."),
    };
}

// [greylist]
std::vector<Option> greylist_rows() {
    using greylist::Settings;
    auto r = [](greylist::Range g) { return range(long(g.min), long(g.max)); };
    return {
        row<Type::integer, &Settings::delay>("delay", "300", r(greylist::delay_range),
                                             "Seconds before a retry of a greylisted triplet passes."),
        row<Type::integer, &Settings::retry_window>(
            "retry_window", "14400", r(greylist::retry_window_range),
            "Seconds after the first attempt during which a retry still passes; later it starts over."),
        row<Type::integer, &Settings::pass_lifetime>(
            "pass_lifetime", "3110400", r(greylist::pass_lifetime_range),
            "Seconds a passed triplet (and an auto-allowed client) is remembered after its last use."),
        row<Type::integer, &Settings::network_v4>(
            "network_v4", "24", r(greylist::network_v4_range),
            "Prefix length grouping IPv4 clients (greylisting, rate limits)."),
        row<Type::integer, &Settings::network_v6>(
            "network_v6", "64", r(greylist::network_v6_range),
            "Prefix length grouping IPv6 clients (greylisting, rate limits)."),
        row<Type::integer, &Settings::auto_allow>(
            "auto_allow", "5", r(greylist::auto_allow_range),
            "From its Nth passed triplet on, a client network passes without greylisting; 0: never."),
    };
}

// [ratelimit]
std::vector<Option> ratelimit_rows() {
    using ratelimit::Settings;
    const Allowed limit = range(long(ratelimit::limit_range.min), long(ratelimit::limit_range.max));
    return {
        row<Type::integer, &Settings::window>(
            "window", "3600", range(long(ratelimit::window_range.min), long(ratelimit::window_range.max)),
            "Seconds per counting window (aligned to the epoch: every MX host counts in the same one)."),
        row<Type::integer, &Settings::registered_messages>(
            "registered_messages", "0", limit,
            "Messages per window from a registered client network; 0: no limit."),
        row<Type::integer, &Settings::registered_recipients>(
            "registered_recipients", "0", limit,
            "Recipients per window from a registered client network; 0: no limit."),
        row<Type::integer, &Settings::unregistered_messages>(
            "unregistered_messages", "0", limit,
            "Messages per window from an unregistered client network; 0: no limit."),
        row<Type::integer, &Settings::unregistered_recipients>(
            "unregistered_recipients", "0", limit,
            "Recipients per window from an unregistered client network; 0: no limit."),
    };
}

// [state]
std::vector<Option> state_rows() {
    return {
        row<Type::choice, &State::backend>(
            "backend", "memory", one_of(policy::state_backend_names),
            "memory: in this process (one host); redis: shared by several MX hosts."),
        row<Type::text, &State::redis>("redis", "127.0.0.1:6379", words("HOST:PORT|[IPv6]:PORT|unix:PATH"),
                                       "The Redis server (backend = redis)."),
        row<Type::text, &State::prefix>("prefix",
                                        "regmilter:", words("printable ASCII, no blanks, at most 64 bytes"),
                                        "Put before every Redis key."),
        row<Type::integer, &State::timeout_ms>(
            "timeout_ms", "200", range(state::timeout_ms_range.min, state::timeout_ms_range.max),
            "Milliseconds a Redis call (connect and answer) may take."),
        row<Type::text, &State::password>("password", "", words("text; empty: no AUTH"),
                                          "Redis password (requirepass)."),
        row<Type::choice, &State::on_error>(
            "on_error", "accept", one_of(policy::on_error_names),
            "When the store fails: accept passes unthrottled; tempfail is 451 4.3.0."),
        row<Type::path, &State::snapshot>(
            "snapshot", "", words("an absolute path, or empty for none"),
            "backend = memory: state saved here periodically and at exit, read at "
            "start."),
        row<Type::integer, &State::snapshot_interval>("snapshot_interval", "300", range(10, 86400),
                                                      "Seconds between snapshot saves."),
        row<Type::integer, &State::max_entries>(
            "max_entries", "1000000", range(1000, 100000000),
            "backend = memory: entries kept at most (soonest-expiring dropped)."),
        row<Type::integer, &State::pass_cache>(
            "pass_cache", "60", range(0, 3600),
            "backend = redis: seconds this host answers a passed triplet or allowed client "
            "again without asking Redis; 0: ask every time."),
    };
}

// [policy]
std::vector<Option> policy_rows() {
    return {
        row<Type::recipient_list, &Exemptions::recipients>(
            "exempt_recipients", "", words("local@domain or local@ (that local part at any domain) ..."),
            "Recipients a refused client still reaches (RFC 5321 §4.5.1 postmaster@, abuse@): its "
            "refusal moves from MAIL FROM to each other recipient. Empty: none."),
    };
}

// [stats]
std::vector<Option> stats_rows() {
    return {
        row<Type::endpoint, &Stats::listen>(
            "listen", "", words("IP:PORT or [IPv6]:PORT; empty: off"),
            "Serve the counters in the Prometheus text format at http://IP:PORT/metrics (a loopback address; "
            "others are warned about)."),
    };
}

std::vector<Option> build() {
    std::vector<Option> all;
    for (auto rows : {milter_rows, resolver_rows, trust_rows, registry_rows, spf_rows, bulk_rows,
                      greylist_rows, ratelimit_rows, state_rows, policy_rows, stats_rows})
        for (auto& o : rows()) all.push_back(std::move(o));
    return all;
}

}  // namespace

const std::vector<Option>& options() {
    static const std::vector<Option> table = build();
    return table;
}

const Option* find_option(std::string_view section, std::string_view key) {
    for (const auto& o : options())
        if (section == o.section && key == o.key) return &o;
    return nullptr;
}

const std::vector<std::string>& section_kinds() {
    static const std::vector<std::string> kinds = [] {
        std::vector<std::string> k;
        for (const auto& o : options())
            if (std::find(k.begin(), k.end(), o.section) == k.end()) k.push_back(o.section);
        return k;
    }();
    return kinds;
}

}  // namespace regmilter::config
