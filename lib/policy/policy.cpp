#include "policy/policy.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <future>
#include <system_error>

#include "dns/cache.hpp"
#include "policy/auth_results.hpp"
#include "policy/checks.hpp"
#include "policy/replies.hpp"
#include "util/strings.hpp"
#include "util/text.hpp"

namespace regmilter::policy {

using CAction = policy::CheckAction;
using config::Config;

const char* to_string(Stage s) {
    return util::name_of(s);
}

const char* to_string(TrustReason t) {
    return util::name_of(t);
}

const char* to_string(Action a) {
    return util::name_of(a);
}

const std::string* Context::macro(std::string_view name) const {
    for (const auto& m : macros)
        if (m.first == name) return &m.second;
    return nullptr;
}

void Context::set_macro(std::string_view name, std::string value) {
    for (auto& m : macros)
        if (m.first == name) {
            m.second = std::move(value);
            return;
        }
    macros.emplace_back(std::string(name), std::move(value));
}

void begin_transaction(Context& ctx, Facts& facts) {
    ctx.mail_from.clear();
    facts.mail = MailFacts{};
    facts.rcpts.clear();
    facts.data = DataFacts{};
    facts.throttle = ThrottleFacts{};
}

std::string authserv_id(const Config& cfg) {
    if (!cfg.milter.authserv_id.empty()) return cfg.milter.authserv_id;
    char host[HOST_NAME_MAX + 1] = {};
    if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "localhost";
    return host;
}

dns::Deadline stage_deadline(const Config& cfg) {
    return dns::deadline_in(std::chrono::milliseconds(cfg.resolver.stage_timeout_ms));
}

ConnectFacts gather_connect(const Context& ctx, const Config& cfg, dns::Resolver& dns,
                            dns::Deadline deadline) {
    ConnectFacts c = connect_without_lookups(ctx, cfg);
    if (c.unknown_client || c.network_trusted) return c;  // trusted: the registry is not asked
    for (const auto& zone : cfg.registries)
        c.registry.push_back(registry::lookup(dns, *c.ip, zone, deadline));
    return c;
}

namespace {

// DESIGN "Lessons": a forwarder known by its HELO name, confirmed by the
// name's A/AAAA records holding the client address.
bool forwarder_by_helo(const std::string& helo, const net::Address& ip, const Config& cfg, dns::Resolver& dns,
                       dns::Deadline deadline) {
    if (helo.empty() || cfg.spf.trusted_forwarder_helos.empty()) return false;
    std::string name = util::lower(helo);
    if (!name.empty() && name.back() == '.') name.pop_back();
    if (std::find(cfg.spf.trusted_forwarder_helos.begin(), cfg.spf.trusted_forwarder_helos.end(), name) ==
        cfg.spf.trusted_forwarder_helos.end())
        return false;
    dns::DnsAnswer a = dns.query(name, ip.is_v4() ? dns::RrType::a : dns::RrType::aaaa, deadline);
    for (const auto& r : a.rdata) {
        auto addr = net::Address::parse(r);
        if (addr && addr->unmapped() == ip) return true;
    }
    return false;
}

}  // namespace

ConnectFacts gather_connect(const Context& ctx, const Config& cfg, const ResolverFactory& make,
                            dns::Deadline deadline, util::Pool* pool) {
    ConnectFacts c = connect_without_lookups(ctx, cfg);
    if (c.unknown_client || c.network_trusted) return c;
    const net::Address ip = *c.ip;
    // By value: a pool job may outlive this frame when it unwinds.
    auto ask = [make, ip, deadline](const config::Registry& zone) {
        std::unique_ptr<dns::Resolver> r = make ? make() : nullptr;
        if (!r) {
            registry::Entry e;
            e.name = zone.name;
            e.zone = zone.zone;
            e.meaning = zone.meaning;
            e.query = registry::query_name(ip, zone.format, zone.zone);
            e.status = registry::Status::error;
            e.error = "no resolver";
            return e;
        }
        return registry::lookup(*r, ip, zone, deadline);
    };
    std::vector<std::future<registry::Entry>> running;
    size_t started = 0;
    if (cfg.registries.size() > 1) {
        try {
            for (; started < cfg.registries.size(); ++started)
                running.push_back(
                    pool ? pool->submit([ask, zone = cfg.registries[started]] { return ask(zone); })
                         : std::async(std::launch::async, ask, std::cref(cfg.registries[started])));
        } catch (const std::system_error&) {
            // No thread: the rest is asked below, in this thread.
        }
    }
    for (auto& f : running) c.registry.push_back(f.get());
    for (size_t i = started; i < cfg.registries.size(); ++i) c.registry.push_back(ask(cfg.registries[i]));
    return c;
}

bool registry_cached(dns::Cache& cache, const net::Address& ip, const Config& cfg) {
    for (const auto& zone : cfg.registries)
        if (!cache.has(registry::query_name(ip, zone.format, zone.zone), dns::RrType::a)) return false;
    return true;
}

bulk::Signals envelope_signals(const Context& ctx, const ConnectFacts& c, const Config& cfg) {
    bulk::Signals out;
    for (const auto& e : c.registry)
        if (e.status == registry::Status::listed && e.bulk && (!e.fcrdns_checked || e.fcrdns_ok))
            out.signals.push_back("registry:bulk:" + e.zone);
    for (auto& s : bulk::sender_signals(ctx.mail_from, c.ip, cfg.bulk).signals)
        out.signals.push_back(std::move(s));
    return out;
}

ConnectFacts connect_without_lookups(const Context& ctx, const Config& cfg) {
    ConnectFacts c;
    if (!ctx.ip) {
        c.unknown_client = true;
        return c;
    }
    c.ip = ctx.ip->unmapped();
    c.network_trusted = cfg.trust.networks.contains(*c.ip);
    return c;
}

MailFacts gather_mail(const Context& ctx, const Facts& facts, const Config& cfg, dns::Resolver& dns,
                      dns::Deadline deadline, spf::Tracer trace, util::Pool* pool,
                      const ResolverFactory& make) {
    MailFacts m;
    m.mail_from = ctx.mail_from;
    m.helo = ctx.helo;
    const ConnectFacts& c = facts.connect;
    if (c.unknown_client) {
        m.trust = TrustReason::unknown_client;
    } else if (c.network_trusted) {
        m.trust = TrustReason::network;
    } else if (const std::string* user = ctx.macro("auth_authen");
               cfg.trust.authenticated && user && !user->empty()) {
        m.trust = TrustReason::authenticated;
    } else if (const std::string* issuer = ctx.macro("cert_issuer"); issuer && !issuer->empty()) {
        const std::string* verify = ctx.macro("verify");
        if (verify && *verify == "OK" &&
            std::find(cfg.trust.tls_issuers.begin(), cfg.trust.tls_issuers.end(), *issuer) !=
                cfg.trust.tls_issuers.end())
            m.trust = TrustReason::tls;
    }

    // Bulk is the recipient's choice: its signals count for trusted mail too.
    m.envelope_bulk = envelope_signals(ctx, c, cfg);

    if (m.trust != TrustReason::none || !c.ip) return m;
    if (cfg.spf.trusted_forwarders.contains(*c.ip) ||
        forwarder_by_helo(ctx.helo, *c.ip, cfg, dns, deadline)) {
        m.spf_skipped_forwarder = true;
        return m;
    }
    spf::Request req;
    req.ip = *c.ip;
    req.sender = ctx.mail_from;
    req.helo = ctx.helo;
    req.receiver = facts.authserv_id.empty() ? "unknown" : facts.authserv_id;
    spf::Options opt;
    opt.limits.void_lookups = cfg.spf.void_lookups;
    opt.deadline = deadline;
    opt.trace = std::move(trace);
    if (cfg.spf.check_helo && !ctx.helo.empty() && pool && make) {
        // RFC 7208 evaluates each identity on its own: nothing is shared but
        // the cache (and its flights, when both ask the same question).
        std::future<spf::Outcome> helo = pool->submit([req, opt, make] {
            std::unique_ptr<dns::Resolver> own = make();
            if (!own) throw std::runtime_error("no resolver for the HELO evaluation");
            return spf::check_helo(*own, req, opt);
        });
        m.spf_mail = spf::check_mailfrom(dns, req, opt);
        m.spf_helo = helo.get();
        return m;
    }
    if (cfg.spf.check_helo && !ctx.helo.empty()) m.spf_helo = spf::check_helo(dns, req, opt);
    m.spf_mail = spf::check_mailfrom(dns, req, opt);
    return m;
}

std::string envelope_address(std::string_view arg) {
    arg = util::trim(arg);
    if (arg.size() >= 2 && arg.front() == '<' && arg.back() == '>') arg = arg.substr(1, arg.size() - 2);
    return std::string(arg);
}

Recipient gather_rcpt(std::string_view arg, const Config& cfg, const bulk::Table* table) {
    Recipient r;
    r.arg = std::string(arg);
    r.rcpt = envelope_address(arg);
    r.bulk = bulk::lookup(table, r.rcpt, cfg.bulk);
    r.source = r.bulk.key == "default" ? "default" : "table";  // table keys always hold '@'
    return r;
}

Recipient gather_rcpt(std::string_view arg, const Facts& facts, const Config& cfg, const bulk::Table* table,
                      dns::Resolver& dns, dns::Deadline deadline) {
    Recipient r = gather_rcpt(arg, cfg, table);
    // The local table wins; zones matter only for mail that is, or may turn, bulk.
    bool may_be_bulk = facts.mail.envelope_bulk.any() || cfg.bulk.header_signals;
    if (r.source != "default" || cfg.bulk.zones.empty() || !may_be_bulk) return r;
    r.zone = bulk::lookup_zones(dns, r.rcpt, cfg.bulk.zones, cfg.bulk.recipient_delimiter, deadline);
    switch (r.zone->status) {
        case bulk::ZoneStatus::none:
            return r;  // [bulk] default stands
        case bulk::ZoneStatus::opted_out:
        case bulk::ZoneStatus::opted_in:
            r.bulk.choice =
                r.zone->status == bulk::ZoneStatus::opted_out ? bulk::Choice::reject : bulk::Choice::accept;
            r.bulk.key = r.zone->key;
            break;
        case bulk::ZoneStatus::error:
            // on_error = accept delivers; tempfail leaves it unknown() (refused where it matters).
            r.bulk.choice = bulk::Choice::accept;
            r.bulk.key = "error";
            break;
    }
    r.source = "zone:" + r.zone->zone;
    return r;
}

bool Recipient::unknown(const Config& cfg) const {
    return zone && zone->status == bulk::ZoneStatus::error && cfg.bulk.on_error == OnError::tempfail;
}

void observe_header(DataFacts& d, std::string_view name, std::string_view value,
                    std::string_view authserv_id) noexcept {
    d.header_bulk.observe(name, value);
    if (!util::iequals(name, "Authentication-Results")) return;
    ++d.ar_seen;
    if (d.too_many_forged_ar) return;
    try {
        if (!util::iequals(ar_authserv_id(value), authserv_id)) return;
        if (d.forged_ar.size() >= max_forged_ar) {
            d.too_many_forged_ar = true;
            d.forged_ar.clear();
            d.forged_ar.shrink_to_fit();
            return;
        }
        d.forged_ar.push_back({std::string(name), d.ar_seen});
    } catch (...) {
        // Out of memory for one string: count it as forged rather than let it pass.
        try {
            d.forged_ar.push_back({std::string(name), d.ar_seen});
        } catch (...) {
        }
    }
}

StageNeeds stage_needs(const Config& cfg) noexcept {
    StageNeeds n;
    // Recipients who can opt out: a table, a default of reject, or opt-out zones.
    const bool zones = !cfg.bulk.zones.empty();
    const bool opt_outs = !cfg.bulk.table.empty() || cfg.bulk.default_choice == bulk::Choice::reject || zones;
    bool greylist = false;
    for (const auto& z : cfg.registries)
        if (z.unregistered == CAction::greylist || z.listed == CAction::greylist) greylist = true;
    const auto& l = cfg.ratelimit;
    const bool limits = l.registered_messages > 0 || l.registered_recipients > 0 ||
                        l.unregistered_messages > 0 || l.unregistered_recipients > 0;
    n.helo_reply = false;
    // Every refusal Session::rcpt can give: a MAIL FROM refusal deferred to
    // the recipients (exempt_recipients), greylisting and rate limits
    // (throttle_rcpt, [state] on_error included), a failed opt-out zone
    // (on_error = tempfail) and an opted-out recipient (decide_rcpt).
    n.rcpt_reply =
        !cfg.exemptions.recipients.empty() || greylist || limits || zones ||
        (opt_outs && cfg.bulk.action == bulk::Action::reject && cfg.milter.mode == policy::Mode::enforce);
    // decide_data refuses only for bulk mail's recipients (opted out, or their zone failed).
    n.eoh = opt_outs;
    return n;
}

namespace {

// [bulk] on_error = tempfail, and the recipient's opt-out zone failed.
Reply bulk_unknown_reply(const Recipient& r) {
    Reply v;
    v.action = policy::Action::tempfail;
    v.code = replies::dns_trouble.code;
    v.xcode = replies::dns_trouble.xcode;
    // The reply names the zone and the status, never the resolver's details (those are logged).
    v.text = util::sanitize("cannot check whether " + bulk::normalize(r.rcpt) + " accepts bulk mail (" +
                                r.zone->zone + ": " + r.zone->cause + "), try again later",
                            util::TextUse::reply);
    v.reason = "bulk:error:" + r.zone->zone;
    return v;
}

}  // namespace

Reply decide_connect(const Facts& facts, const Config& cfg) noexcept {
    Reply v;
    if (facts.connect.unknown_client && cfg.trust.unknown_client == policy::UnknownClient::accept) {
        v.action = policy::Action::accept;
        v.reason = "unknown-client";
    }
    return v;
}

Reply decide_helo(const Facts&, const Config&) noexcept {
    return Reply{};
}

namespace {

// What MAIL FROM would be answered without [policy] exempt_recipients.
Reply mail_verdict(const Facts& facts, const Config& cfg) {
    Reply v;
    if (facts.mail.trust != TrustReason::none) {
        v.reason = std::string("trusted:") + to_string(facts.mail.trust);
        return v;
    }
    std::vector<Check> checks = evaluate_checks(facts, cfg);
    const Check* top = strongest(checks);
    if (!top) return v;
    v.reason = top->reason;
    if (cfg.milter.mode == policy::Mode::observe) {
        if (top->action >= CAction::tempfail) {
            v.reason = "observe:" + top->reason;
            v.would = top->action == CAction::reject ? policy::Action::reject : policy::Action::tempfail;
        }
        return v;
    }
    if (top->action == CAction::reject || top->action == CAction::tempfail) {
        v.action = top->action == CAction::reject ? policy::Action::reject : policy::Action::tempfail;
        v.code = top->code;
        v.xcode = top->xcode;
        v.text = top->text;
    } else if (top->action == CAction::tag) {
        v.action = policy::Action::tag;  // the headers come at end of message
    }
    return v;
}

}  // namespace

bool exempt_recipient(const Config& cfg, std::string_view rcpt) {
    if (cfg.exemptions.recipients.empty()) return false;
    std::string a = bulk::normalize(rcpt);
    if (a.empty()) return false;
    auto at = a.rfind('@');
    std::string local = at == std::string::npos ? a : a.substr(0, at);  // RCPT TO:<Postmaster>: no domain
    std::string domain = at == std::string::npos ? "" : a.substr(at + 1);
    std::string bare = local;  // without its +detail
    if (auto d = bare.find_first_of(cfg.bulk.recipient_delimiter);
        !cfg.bulk.recipient_delimiter.empty() && d != std::string::npos && d > 0)
        bare.resize(d);
    for (const auto& e : cfg.exemptions.recipients) {
        auto eat = e.rfind('@');
        std::string_view elocal = std::string_view(e).substr(0, eat);
        std::string_view edomain = std::string_view(e).substr(eat + 1);
        if ((elocal == local || elocal == bare) && (edomain.empty() || edomain == domain)) return true;
    }
    return false;
}

Reply decide_mail(const Facts& facts, const Config& cfg) noexcept {
    try {
        Reply v = mail_verdict(facts, cfg);
        // A refused client may still reach the exempt recipients: the refusal
        // moves to RCPT, for every other recipient (decide_rcpt).
        if (refuses(v.action) && !cfg.exemptions.recipients.empty()) {
            Reply deferred;
            deferred.reason = "deferred-to-rcpt:" + v.reason;
            return deferred;
        }
        return v;
    } catch (...) {
        return internal_error_reply(&cfg);
    }
}

Reply decide_rcpt(const Facts& facts, const Recipient& rcpt, const Config& cfg) noexcept {
    try {
        Reply v;
        if (!cfg.exemptions.recipients.empty()) {
            Reply m = mail_verdict(facts, cfg);
            if (refuses(m.action)) {
                if (!exempt_recipient(cfg, rcpt.rcpt)) return m;
                v.reason = "exempt:" + m.reason;  // accepted, refused client or not
                return v;
            }
        }
        if (!facts.mail.envelope_bulk.any()) return v;
        if (rcpt.unknown(cfg) && cfg.bulk.action != bulk::Action::tag) {
            // on_error = tempfail: a temporary failure stays temporary.
            Reply t = bulk_unknown_reply(rcpt);
            if (cfg.milter.mode != policy::Mode::observe) return t;
            v.reason = "observe:" + t.reason;
            v.would = policy::Action::tempfail;
            return v;
        }
        if (rcpt.bulk.choice != bulk::Choice::reject) return v;
        v.reason = "bulk:opted-out:" + rcpt.bulk.key;
        if (cfg.bulk.action != bulk::Action::reject) return v;  // discard/tag: end of message
        if (cfg.milter.mode == policy::Mode::observe) {
            v.reason = "observe:" + v.reason;
            v.would = policy::Action::reject;
            return v;
        }
        v.action = policy::Action::reject;
        v.code = replies::policy.reject.code;
        v.xcode = replies::policy.reject.xcode;
        v.text =
            util::sanitize(bulk::normalize(rcpt.rcpt) + " does not accept bulk mail", util::TextUse::reply);
        return v;
    } catch (...) {
        return internal_error_reply(&cfg);
    }
}

bool rcpt_always_continues(const Facts& facts, const Config& cfg) noexcept {
    try {
        // decide_rcpt's refusals: a deferred MAIL FROM verdict, the opt-outs
        // of bulk mail; throttle_rcpt's: greylisting, the recipients' limit.
        if (!cfg.exemptions.recipients.empty() && refuses(mail_verdict(facts, cfg).action)) return false;
        const ThrottleFacts& t = facts.throttle;
        return !facts.mail.envelope_bulk.any() && (!t.greylist || t.allowed) && !t.limited;
    } catch (...) {
        return false;
    }
}

namespace {

// The data stage's bulk verdict per recipient (DESIGN "[bulk] action") into
// `v`, which holds the other checks' headers and reason so far.
void decide_bulk(Reply& v, const Facts& facts, const Config& cfg, bool observe) {
    bool envelope = facts.mail.envelope_bulk.any();
    bulk::Signals header_signals = facts.data.header_bulk.signals(cfg.bulk);
    bool header = header_signals.any();
    if (!envelope && !header) {
        if (!v.reason.empty() && !observe) v.action = policy::Action::tag;
        return;
    }
    std::vector<std::string> signals = facts.mail.envelope_bulk.signals;
    for (const auto& s : header_signals.signals) signals.push_back(s);
    std::string why;
    for (const auto& s : signals) why += (why.empty() ? "" : ", ") + s;
    // [bulk] on_error = tempfail and a recipient's zone failed: the message waits.
    const Recipient* unknown = nullptr;
    for (const auto& r : facts.rcpts)
        if (!unknown && r.unknown(cfg)) unknown = &r;
    bool waits = unknown && cfg.bulk.action != bulk::Action::tag;
    if (waits) {
        Reply t = bulk_unknown_reply(*unknown);
        if (!observe) {
            v = std::move(t);
            return;
        }
        v.add_headers.push_back(
            {"X-Regmilter", util::sanitize("would tempfail: " + t.code + " " + t.xcode + " " + t.text,
                                           util::TextUse::header)});
        v.reason = "observe:" + t.reason;
        v.would = policy::Action::tempfail;
    }
    std::vector<std::string> opted_out;  // the MTA's arguments
    for (const auto& r : facts.rcpts)
        if (r.bulk.choice == bulk::Choice::reject) opted_out.push_back(r.arg);
    if (opted_out.empty()) {
        if (!v.reason.empty() && !observe) v.action = policy::Action::tag;
        return;
    }
    std::string n = std::to_string(opted_out.size());
    if (observe) {
        v.add_headers.push_back({"X-Regmilter", "would " + std::string(util::name_of(cfg.bulk.action)) +
                                                    " bulk mail (" + why + ") for " + n +
                                                    " recipient(s) who opted out"});
        if (waits) return;  // enforce would answer the tempfail above first
        v.reason = "observe:bulk";
        // Enforce refuses the message when no recipient is left, unless the
        // envelope knew it was bulk and refused them at RCPT already.
        if (opted_out.size() == facts.rcpts.size() && cfg.bulk.action != bulk::Action::tag &&
            !(envelope && cfg.bulk.action == bulk::Action::reject))
            v.would =
                cfg.bulk.action == bulk::Action::discard ? policy::Action::discard : policy::Action::reject;
        return;
    }
    if (cfg.bulk.action == bulk::Action::tag) {
        v.add_headers.push_back({"X-Regmilter", "bulk (" + why + "); " + n + " recipient(s) opted out"});
        v.action = policy::Action::tag;
        v.reason = "bulk:tag";
        return;
    }
    // reject or discard: remove the opted-out recipients; nothing left ends the message.
    v.reason = "bulk:" + std::string(util::name_of(cfg.bulk.action));
    if (opted_out.size() == facts.rcpts.size()) {
        if (cfg.bulk.action == bulk::Action::discard) {
            v.action = policy::Action::discard;
        } else {
            v.action = policy::Action::reject;
            v.code = replies::policy.reject.code;
            v.xcode = replies::policy.reject.xcode;
            v.text = util::sanitize("no recipient accepts bulk mail (" + why + ")", util::TextUse::reply);
        }
        return;
    }
    v.remove_rcpts = std::move(opted_out);
}

}  // namespace

Reply decide_data(const Facts& facts, const Config& cfg) noexcept {
    try {
        Reply v;
        if (facts.data.too_many_forged_ar) {
            // Never delivered with forged results left in: refused, whatever the mode.
            v.action = policy::Action::reject;
            v.code = replies::policy.reject.code;
            v.xcode = replies::policy.reject.xcode;
            v.text = "more than " + std::to_string(max_forged_ar) + " Authentication-Results headers claim " +
                     facts.authserv_id;
            v.text = util::sanitize(v.text, util::TextUse::reply);
            v.reason = "headers:forged-authentication-results";
            return v;
        }
        v.remove_headers = facts.data.forged_ar;
        v.add_headers = result_headers(facts, cfg);
        bool observe = cfg.milter.mode == policy::Mode::observe;
        std::vector<Check> checks;
        if (facts.mail.trust == TrustReason::none) checks = evaluate_checks(facts, cfg);
        for (const auto& c : checks) {
            if (c.action == CAction::tag)
                v.add_headers.push_back({"X-Regmilter", c.tag});
            else if (observe && c.action >= CAction::tempfail)
                v.add_headers.push_back(
                    {"X-Regmilter",
                     std::string(c.action == CAction::reject ? "would reject: " : "would tempfail: ") +
                         c.code + " " + c.xcode + " " + c.text});
            else if (c.action >= CAction::tempfail)  // only exempt recipients are left (decide_rcpt)
                v.add_headers.push_back({"X-Regmilter", "for exempt recipients only; others got " + c.code +
                                                            " " + c.xcode + " " + c.text});
        }
        if (const Check* top = strongest(checks); top && top->action >= CAction::tag) v.reason = top->reason;
        for (const auto& t : facts.throttle.observed) v.add_headers.push_back({"X-Regmilter", t});

        decide_bulk(v, facts, cfg, observe);
        return v;
    } catch (...) {
        return internal_error_reply(&cfg);
    }
}

Reply internal_error_reply(const Config* cfg) noexcept {
    Reply v;
    try {
        v.reason = "internal-error";
        if (cfg && cfg->milter.on_internal_error == OnInternalError::accept) {
            v.action = Action::accept;
            return v;
        }
        v.code = replies::internal_error.code;
        v.xcode = replies::internal_error.xcode;
        v.text = replies::internal_error_text;
    } catch (...) {
        // No memory for the strings: the action alone still answers (the MTA's default text).
    }
    v.action = Action::tempfail;
    return v;
}

}  // namespace regmilter::policy
