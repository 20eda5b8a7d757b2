// policy: trust, then one decision per SMTP stage from (Context, Config,
// facts). gather_*() do the lookups (DNS through dns::Resolver, bounded by a
// Deadline); decide_*() are pure and noexcept: no I/O, no clock, so every
// decision is a table-driven test. No libmilter here. All functions are
// reentrant; a Config is shared read-only; a Context/Facts belongs to one
// SMTP session. policy::Session (session.hpp) drives these stage by stage;
// front ends use the Session, not these functions.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bulk/bulk.hpp"
#include "bulk/optout.hpp"
#include "config/config.hpp"
#include "dns/resolver.hpp"
#include "greylist/greylist.hpp"
#include "net/address.hpp"
#include "ratelimit/ratelimit.hpp"
#include "registry/registry.hpp"
#include "spf/check_host.hpp"
#include "util/pool.hpp"

namespace regmilter::dns {
class Cache;
}

namespace regmilter::policy {

using Header = bulk::HeaderField;  // {name, value}, value without the leading space

// Macro values by name without braces: "i" (queue id), "auth_authen",
// "cert_issuer", "cert_subject", "verify", "daemon_name". Absent = unknown.
using Macros = std::vector<std::pair<std::string, std::string>>;

struct Context {
    // Names this SMTP session on every log line ("session="), before the MTA's
    // queue id is known and after: the master's {regmilter_session} macro, or
    // one made by this process (its pid and a counter, in hex).
    std::string session_id;
    std::optional<net::Address> ip;  // none: unix socket / unknown client
    std::string hostname;            // as the MTA reports it ("mail.example", "[192.0.2.1]", "unknown")
    std::string helo;
    std::string mail_from;  // without <>; empty for the null sender
    Macros macros;

    const std::string* macro(std::string_view name) const;  // null when absent
    void set_macro(std::string_view name, std::string value);
};

// The SMTP stage a decision belongs to (the "stage" of DESIGN's JSON).
enum class Stage { connect, helo, mail, rcpt, data };
inline constexpr const char* stage_names[] = {"connect", "helo", "mail", "rcpt", "data"};
constexpr util::Names names_of(Stage) {
    return stage_names;
}
const char* to_string(Stage);

enum class TrustReason { none, network, authenticated, tls, unknown_client };
inline constexpr const char* trust_reason_names[] = {"none", "network", "authenticated", "tls",
                                                     "unknown-client"};
constexpr util::Names names_of(TrustReason) {
    return trust_reason_names;
}
const char* to_string(TrustReason);

struct ConnectFacts {
    bool unknown_client = false;            // ctx.ip was empty
    std::optional<net::Address> ip;         // unmapped
    bool network_trusted = false;           // ip in [trust] networks: no registry lookups
    std::vector<registry::Entry> registry;  // one per [registry] section, in file order
};

struct MailFacts {
    TrustReason trust = TrustReason::none;  // != none: registry and SPF skipped
    bool spf_skipped_forwarder = false;     // client in [spf] trusted_forwarders
    std::optional<spf::Outcome> spf_helo;   // check_helo = yes
    std::optional<spf::Outcome> spf_mail;   // MAIL FROM identity (postmaster@HELO for <>)
    bulk::Signals envelope_bulk;            // registry bulk codes + [bulk] senders
    std::string mail_from, helo;            // copies for headers and logs
};

// One recipient the MTA asked about (RCPT TO).
struct Recipient {
    std::string arg;    // the MTA's argument as given ("<Bob@example.org>"): smfi_delrcpt wants it
    std::string rcpt;   // the address, without <>
    bulk::Lookup bulk;  // the recipient's choice and the entry that decided
    // Which source decided the choice: "table" ([bulk] table), "zone:ZONE"
    // (an opt-out zone answered, or failed and [bulk] on_error decided),
    // "default" ([bulk] default).
    std::string source = "default";
    std::optional<bulk::ZoneAnswer> zone;  // the opt-out zones' answer, when they were asked

    // A zone failed and [bulk] on_error = tempfail: the choice is unknown.
    bool unknown(const config::Config& cfg) const;
};

// A header already in the message, by name as received and its 1-based
// index among the headers of that name (smfi_chgheader's index).
struct HeaderRef {
    std::string name;
    int index = 0;
    bool operator==(const HeaderRef& o) const { return name == o.name && index == o.index; }
};

struct DataFacts {
    bulk::HeaderSignals header_bulk;  // Precedence / List-Id / List-Unsubscribe seen
    // Forged Authentication-Results claiming our authserv_id (RFC 8601 §5).
    std::vector<HeaderRef> forged_ar;
    int ar_seen = 0;  // Authentication-Results headers so far
    // More than max_forged_ar forged ones: not recorded; the message is refused.
    bool too_many_forged_ar = false;
};
// What a message's headers may cost: no header value is kept, only the bulk
// signals and one HeaderRef (under 64 bytes) per forged Authentication-Results,
// at most this many (64 KB a message); a message with more is refused.
inline constexpr size_t max_forged_ar = 1000;

// Greylisting and the recipients' rate limit of one RCPT (policy/throttle.hpp).
struct RcptThrottle {
    std::string rcpt;
    std::optional<greylist::Result> greylist;    // absent: not greylisted
    std::optional<ratelimit::Result> ratelimit;  // absent: not counted
};

// Greylisting and rate limits of one transaction, planned at MAIL FROM.
struct ThrottleFacts {
    bool greylist = false;                    // a registry verdict asks for greylisting at RCPT
    std::string greylist_reason;              // that check's reason ("registry:unregistered:reg.example")
    std::optional<greylist::Result> allowed;  // the client's network allowed at MAIL FROM: each RCPT's answer
    bool registered = false;                  // the rate-limit class (registry error: registered)
    bool limited = false;                     // a rate limit may apply (untrusted client)
    std::optional<ratelimit::Result> messages;  // MAIL FROM's count
    std::vector<RcptThrottle> rcpts;            // every RCPT that reached them, in order
    std::vector<std::string> observed;          // observe mode: X-Regmilter "would ..." values
};

struct Facts {
    std::chrono::system_clock::time_point now;  // for enforce_after; tests set it
    std::string authserv_id;                    // [milter] authserv_id or the host name
    ConnectFacts connect;
    MailFacts mail;
    std::vector<Recipient> rcpts;  // recipients accepted so far, in RCPT order
    DataFacts data;
    ThrottleFacts throttle;
};

// Reset the transaction part (MAIL FROM, recipients, header facts); the
// connection part (ip, helo, registry) stays.
void begin_transaction(Context& ctx, Facts& facts);

// What to tell the MTA. `continue_` means "no objection at this stage";
// `accept` means "accept, and ask nothing more" (SMFIS_ACCEPT: the rest of
// the connection at connect, the rest of the message later); `tag` passes
// (the tag headers come at end of message).
enum class Action { continue_, accept, tag, tempfail, reject, discard };
inline constexpr const char* action_names[] = {"continue", "accept", "tag", "tempfail", "reject", "discard"};
constexpr util::Names names_of(Action) {
    return action_names;
}
const char* to_string(Action);

// True for the actions that end the command for the client (4xx, 5xx) or the
// message (discard).
inline bool refuses(Action a) {
    return a == Action::tempfail || a == Action::reject || a == Action::discard;
}

enum class LogLevel { info, warning, error };

// The answer of one stage: what to tell the MTA and what to change.
struct Reply {
    Action action = Action::continue_;
    std::string code;                 // "550", "451"; empty unless tempfail/reject
    std::string xcode;                // "5.7.23"; class always equals the code's
    std::string text;                 // raw reply text (not %-escaped; printable ASCII)
    std::string reason;               // short cause for logs: "registry:unregistered:reg.example", "spf:fail"
    std::vector<Header> add_headers;  // end of message: insert in order at index 0, 1, ...
    std::vector<HeaderRef> remove_headers;  // end of message
    std::vector<std::string> remove_rcpts;  // end of message: Recipient::arg of each
    std::string log;                        // the decision line; empty: nothing to log
    LogLevel log_level = LogLevel::info;
    // Observe mode: the refusal enforce would have answered here (reject,
    // tempfail, discard), for statistics; continue_ when it would refuse nothing.
    Action would = Action::continue_;
};

// on_internal_error: tempfail 451 4.3.0, or accept; tempfail when cfg is null.
Reply internal_error_reply(const config::Config* cfg) noexcept;

// The address of a MAIL FROM / RCPT TO argument: blanks trimmed, one pair of
// <> removed ("<>" is the null sender: "").
std::string envelope_address(std::string_view arg);

// [milter] authserv_id, or this host's name when it is empty.
std::string authserv_id(const config::Config& cfg);

// Per-stage DNS bound from [resolver] stage_timeout_ms.
dns::Deadline stage_deadline(const config::Config& cfg);

ConnectFacts gather_connect(const Context& ctx, const config::Config& cfg, dns::Resolver& dns,
                            dns::Deadline deadline);
// The same, with each [registry] zone asked on its own thread through its own
// Resolver from `make` (DESIGN "Performance model": independent lookups at
// the same time). Entries stay in file order. One zone: no thread. If a thread
// cannot be started the remaining zones are asked in this thread. `make` is
// called from several threads at once; a null Resolver makes that zone an error.
using ResolverFactory = std::function<std::unique_ptr<dns::Resolver>()>;
// With a `pool`, the zones' jobs run on it (in this thread when it is full)
// instead of threads of their own.
ConnectFacts gather_connect(const Context& ctx, const config::Config& cfg, const ResolverFactory& make,
                            dns::Deadline deadline, util::Pool* pool = nullptr);
// True when the shared cache holds the A answer of every [registry] zone for
// `ip` (then gather_connect() asks no nameserver). A peek: no hit counted.
bool registry_cached(dns::Cache& cache, const net::Address& ip, const config::Config& cfg);
// ConnectFacts as gather_connect() gives them before any DNS: the client,
// whether it is trusted by network; no registry entries.
ConnectFacts connect_without_lookups(const Context& ctx, const config::Config& cfg);
// MailFacts::envelope_bulk: the registry's bulk codes, then [bulk] senders.
bulk::Signals envelope_signals(const Context& ctx, const ConnectFacts& connect, const config::Config& cfg);
// gather_mail() reads of facts.connect only what connect_without_lookups()
// gives, but for envelope_bulk: it may run while the registry lookups are
// still under way, and envelope_bulk be recomputed when they are in.
// trace (optional) receives SPF's term-by-term trace (regmilter-query --trace).
// With `pool` and `make`, the HELO identity is evaluated on the pool through
// a resolver from `make` while MAIL FROM's is evaluated here with `dns`: the
// stage waits for the longer of the two, not their sum (same outcomes).
MailFacts gather_mail(const Context& ctx, const Facts& facts, const config::Config& cfg, dns::Resolver& dns,
                      dns::Deadline deadline, spf::Tracer trace = {}, util::Pool* pool = nullptr,
                      const ResolverFactory& make = {});
// The recipient's choice from the table alone (source "table" or "default").
Recipient gather_rcpt(std::string_view arg, const config::Config& cfg, const bulk::Table* table);
// The same, then, when the table has no entry and the answer can matter
// (the message is bulk from its envelope, or [bulk] header_signals may make
// it bulk), the [bulk] zone opt-out zones through `dns` (bulk::lookup_zones,
// bounded by `deadline`): opted out is reject, opted in accept, none keeps
// [bulk] default, an error is accept (on_error = accept) or unknown().
Recipient gather_rcpt(std::string_view arg, const Facts& facts, const config::Config& cfg,
                      const bulk::Table* table, dns::Resolver& dns, dns::Deadline deadline);
// One header of the message, as it arrives: bulk signals, forged
// Authentication-Results. Keeps no header text. No-throw.
void observe_header(DataFacts& data, std::string_view name, std::string_view value,
                    std::string_view authserv_id) noexcept;

// Which stages' answers can be anything but "continue" under `cfg` (internal
// errors aside), so that a front end may ask the MTA not to wait for them:
//   helo_reply  decide_helo: never
//   rcpt_reply  Session::rcpt: [policy] exempt_recipients, greylisting (a
//               registry's unregistered or listed = greylist), a rate limit
//               (any [ratelimit] limit above 0), [bulk] zone set, or a bulk
//               reject of a recipient who opted out (a table or default_choice
//               = reject, action = reject, mode = enforce)
//   eoh         a refusal before the body (end_of_headers): recipients can opt
//               out (a table, default_choice = reject or [bulk] zone);
//               otherwise the message is decided at end of message alone,
//               with the same answer
// Pure; the milter negotiates from it per connection (DESIGN "Negotiation").
struct StageNeeds {
    bool helo_reply = false;
    bool rcpt_reply = true;
    bool eoh = true;
};
StageNeeds stage_needs(const config::Config& cfg) noexcept;

Reply decide_connect(const Facts& facts, const config::Config& cfg) noexcept;
Reply decide_helo(const Facts& facts, const config::Config& cfg) noexcept;
// A refusal of MAIL FROM with [policy] exempt_recipients set is answered
// continue ("deferred-to-rcpt:..."), and decide_rcpt gives it to every
// recipient but the exempt ones, which are accepted ("exempt:...").
Reply decide_mail(const Facts& facts, const config::Config& cfg) noexcept;
Reply decide_rcpt(const Facts& facts, const Recipient& rcpt, const config::Config& cfg) noexcept;
// After a MAIL FROM that went on (facts.throttle planned): true when every
// recipient of the transaction is answered continue at RCPT TO, whoever it
// is: no MAIL FROM refusal deferred to the recipients, no bulk signal (so no
// opt-out refusal), neither greylisting nor a rate limit for this client.
// The master answers such a transaction's RCPT TO itself (daemon proxy).
bool rcpt_always_continues(const Facts& facts, const config::Config& cfg) noexcept;
// `rcpt` (without <>) is one of [policy] exempt_recipients: the address, or
// its local part (with or without its +detail) at any domain when the entry
// is "local@". RCPT TO:<Postmaster> (no domain) matches "postmaster@".
bool exempt_recipient(const config::Config& cfg, std::string_view rcpt);
// The message: refusal, or the headers to add and remove and the
// recipients to remove. Never leaves a message without recipients: when all
// would be removed the message is refused (reject) or discarded.
Reply decide_data(const Facts& facts, const config::Config& cfg) noexcept;

// "session=S id=Q": what every log line of a session starts with (Q is
// "NOQUEUE", Postfix's word, until the MTA has a queue id).
std::string log_prefix(const Context& ctx);

// One line, key=value, for syslog: session= id= (queue id, when known) stage ip helo
// from rcpt trust (with auth_user or tls_issuer) spf registry bulk, with
// `recipient` bulk_source (and bulk_error when an opt-out zone failed),
// greylist ratelimit action code reason observe removed. Values with spaces,
// quotes or control bytes are quoted and escaped.
std::string log_line(const Context& ctx, const Facts& facts, const config::Config& cfg, Stage stage,
                     const Reply& r, std::string_view rcpt = {}, const Recipient* recipient = nullptr);

}  // namespace regmilter::policy
