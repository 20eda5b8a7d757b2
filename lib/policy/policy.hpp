// policy: trust, then one verdict per SMTP stage from (Context, Config, facts).
// gather_*() do the lookups (DNS through dns::Resolver, bounded by a Deadline);
// decide_*() are pure and noexcept: no I/O, no clock, so every decision is a
// table-driven test. No libmilter here. All functions are reentrant; a Config
// is shared read-only; a Facts/Context belongs to one connection.
//
// How a front end (the milter, regmilter-query) drives it, stage by stage:
//
//   connect  ctx = Context{}; ctx.ip = address or nullopt (unix socket,
//            "unknown"); ctx.hostname; ctx.macros (names without braces).
//            facts = Facts{}; facts.now = system_clock::now();
//            facts.authserv_id = authserv_id(cfg);
//            facts.connect = gather_connect(ctx, cfg, resolver, stage_deadline(cfg));
//              (registry zones + FCrDNS; may run on another thread with its own
//              Resolver so it overlaps the HELO; it must be done before decide_mail)
//            v = decide_connect(facts, cfg);      // continue, or accept (skip the connection)
//   helo     ctx.helo = arg; v = decide_helo(facts, cfg);   // continue: SPF waits for MAIL FROM
//   mail     begin_transaction(ctx, facts);       // several transactions per connection
//            ctx.mail_from = addr (no <>, "" for the null sender); update ctx.macros
//            ({auth_authen}, {cert_issuer}, {verify} are known now);
//            facts.mail = gather_mail(ctx, cfg, resolver, stage_deadline(cfg));  // trust, SPF, sender bulk
//            v = decide_mail(facts, cfg);         // registry + SPF verdicts
//   rcpt     RcptFacts r = gather_rcpt(addr, facts, cfg, table.get());
//            v = decide_rcpt(facts, r, cfg);      // envelope-known bulk, per recipient
//            if (v.action is not reject/tempfail) { ctx.rcpts.push_back(addr); facts.rcpts.push_back(r); }
//   header   ctx.headers.push_back({name, value});
//   eom      facts.data = gather_data(ctx, facts, cfg);
//            v = decide_data(facts, cfg);
//            remove v.headers_to_remove (forged Authentication-Results),
//            insert v.headers_to_add in order at index 0.. (A-R first, above Received),
//            remove v.rcpts_to_remove, then answer v.action.
//   abort    begin_transaction(ctx, facts);       // the connection stays
//
// Every verdict: log log_line(ctx, facts, stage, v [, rcpt]). Reply text is raw:
// escaping '%' for smfi_setreply is the front end's job. If anything throws,
// answer internal_error_verdict(cfg).
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
#include "config/config.hpp"
#include "dns/resolver.hpp"
#include "net/address.hpp"
#include "registry/registry.hpp"
#include "spf/check_host.hpp"

namespace regmilter::policy {

using Header = bulk::HeaderField;  // {name, value}, value without the leading space

struct Context {
    std::optional<net::Address> ip;  // none: unix socket / unknown client
    std::string hostname;            // as the MTA reports it ("mail.example", "[192.0.2.1]", "unknown")
    std::string helo;
    std::string mail_from;           // without <>; empty for the null sender
    std::vector<std::string> rcpts;  // accepted recipients of this transaction, without <>
    // Macro values by name without braces: "i" (queue id), "auth_authen",
    // "cert_issuer", "cert_subject", "verify", "daemon_name". Absent = unknown.
    std::vector<std::pair<std::string, std::string>> macros;
    std::vector<Header> headers;  // in arrival order

    const std::string* macro(std::string_view name) const;  // null when absent
    void set_macro(std::string_view name, std::string value);
};

enum class Stage { connect, helo, mail, rcpt, data };
const char* to_string(Stage);

enum class TrustReason { none, network, authenticated, tls, unknown_client };
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

struct RcptFacts {
    std::string rcpt;   // as given, without <>
    bulk::Lookup bulk;  // the recipient's choice and the entry that decided
};

struct DataFacts {
    bulk::Signals header_bulk;
    // Forged Authentication-Results claiming our authserv_id (RFC 8601 §5):
    // name as received and the 1-based index among headers of that name
    // (smfi_chgheader's index).
    std::vector<std::pair<std::string, int>> forged_ar;
};

struct Facts {
    std::chrono::system_clock::time_point now;  // for enforce_after; tests set it
    std::string authserv_id;                    // [milter] authserv_id or the host name
    ConnectFacts connect;
    MailFacts mail;
    std::vector<RcptFacts> rcpts;  // recipients that were not refused
    DataFacts data;
};

// Reset the transaction part (MAIL FROM, RCPTs, headers, their facts);
// the connection part (ip, helo, registry) stays.
void begin_transaction(Context& ctx, Facts& facts);

// What to tell the MTA. `continue_` means "no objection at this stage".
enum class Action { continue_, accept, tag, tempfail, reject, discard };
const char* to_string(Action);  // "continue", "accept", ...

struct Verdict {
    Action action = Action::continue_;
    std::string code;    // "550", "451"; empty unless tempfail/reject
    std::string xcode;   // "5.7.23"; class always equals the code's
    std::string text;    // raw reply text (not %-escaped)
    std::string reason;  // short cause for logs: "registry:unregistered:reg.example", "spf:fail"
    std::vector<Header> headers_to_add;                          // data stage, insert in order at index 0..
    std::vector<std::pair<std::string, int>> headers_to_remove;  // data stage: (name, 1-based index)
    std::vector<std::string> rcpts_to_remove;                    // data stage
};

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
ConnectFacts gather_connect(const Context& ctx, const config::Config& cfg, const ResolverFactory& make,
                            dns::Deadline deadline);
// trace (optional) receives SPF's term-by-term trace (regmilter-query --trace).
MailFacts gather_mail(const Context& ctx, const Facts& facts, const config::Config& cfg, dns::Resolver& dns,
                      dns::Deadline deadline, spf::Tracer trace = {});
RcptFacts gather_rcpt(std::string_view rcpt, const Facts& facts, const config::Config& cfg,
                      const bulk::Table* table);
DataFacts gather_data(const Context& ctx, const Facts& facts, const config::Config& cfg);

Verdict decide_connect(const Facts& facts, const config::Config& cfg) noexcept;
Verdict decide_helo(const Facts& facts, const config::Config& cfg) noexcept;
Verdict decide_mail(const Facts& facts, const config::Config& cfg) noexcept;
Verdict decide_rcpt(const Facts& facts, const RcptFacts& rcpt, const config::Config& cfg) noexcept;
Verdict decide_data(const Facts& facts, const config::Config& cfg) noexcept;

// on_internal_error: tempfail 451 4.3.0, or accept.
Verdict internal_error_verdict(const config::Config& cfg) noexcept;

// One line, key=value, for syslog: id= (queue id, when known) stage ip helo
// from rcpt spf registry bulk action code reason. Values with spaces, quotes or
// control bytes are quoted and escaped.
std::string log_line(const Context& ctx, const Facts& facts, Stage stage, const Verdict& v,
                     std::string_view rcpt = {});

}  // namespace regmilter::policy
