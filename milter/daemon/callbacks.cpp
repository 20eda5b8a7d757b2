#include "callbacks.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cstring>
#include <exception>
#include <future>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "dns/cache.hpp"
#include "dns/ldns_resolver.hpp"
#include "log.hpp"
#include "policy/policy.hpp"
#include "registry/registry.hpp"
#include "runtime.hpp"

namespace regmilter::daemon {

namespace {

using policy::Action;
using policy::Stage;
using policy::Verdict;

std::atomic<int> g_open{0};
std::atomic<bool> g_draining{false};

// The macros the policy reads (policy::Context::macros), asked for with
// smfi_setsymlist at the stage where the MTA knows them.
constexpr const char* macro_names[] = {
    "i", "j", "{daemon_name}", "{auth_authen}", "{auth_type}", "{cert_issuer}", "{cert_subject}", "{verify}"};
constexpr std::pair<int, const char*> symlists[] = {
    {SMFIM_CONNECT, "j {daemon_name}"},
    {SMFIM_HELO, "{cert_issuer} {cert_subject} {verify}"},
    {SMFIM_ENVFROM, "i {auth_authen} {auth_type} {cert_issuer} {cert_subject} {verify}"},
    {SMFIM_ENVRCPT, "i"},
    {SMFIM_EOH, "i"},
    {SMFIM_EOM, "i"},
};

constexpr unsigned long wanted_actions = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_DELRCPT | SMFIF_SETSYMLIST;
// Steps regmilter has no use for: the MTA need not send them at all.
constexpr unsigned long skipped_steps = SMFIP_NOBODY | SMFIP_NOUNKNOWN | SMFIP_NODATA;

// One MTA connection: the snapshot it started with, its own resolver (one
// thread at a time uses it), and the policy's connection and transaction state.
struct Session {
    std::shared_ptr<const Runtime> rt;
    std::unique_ptr<dns::LdnsResolver> upstream;
    std::unique_ptr<dns::CachingResolver> resolver;
    policy::Context ctx;
    policy::Facts facts;
    // SMFIP_NR_HDR negotiated: header() answers nothing. After a QUIT_NC (a new
    // SMTP client on the same milter connection) the new session starts with
    // false; libmilter then still sends no reply, it only logs that we offered one.
    bool header_noreply = false;
    bool connected = false;  // connect() seen
    std::string failure;     // an error in a callback that could not answer
    // Accepted recipients: the address without <> and the argument as the MTA
    // gave it (smfi_delrcpt wants that exact string).
    std::vector<std::pair<std::string, std::string>> rcpt_args;
    std::optional<Verdict> data_verdict;  // decided at end of header, applied at end of message
    bool accept_connection = false;       // decide_connect said accept: every message unexamined
    // The registry lookups of connect, on their own thread with their own
    // resolver so that their DNS overlaps the HELO (DESIGN "Stages"); joined
    // at MAIL FROM. Declared last: destroyed first, waiting for the thread.
    std::future<policy::ConnectFacts> connect_lookups;

    const config::Config& cfg() const { return *rt->config; }
};

Session* session_of(SMFICTX* ctx) {
    return static_cast<Session*>(smfi_getpriv(ctx));
}

// The queue id for log lines; "NOQUEUE" (Postfix's word) until the MTA has
// one (Postfix assigns it at the first accepted RCPT by default).
std::string queue_id(const Session* s) {
    const std::string* id = s ? s->ctx.macro("i") : nullptr;
    return id && !id->empty() ? *id : "NOQUEUE";
}

// A resolver for one thread. Throws when the resolver settings are unusable
// (config validation should have caught that).
std::unique_ptr<dns::LdnsResolver> make_upstream(const Runtime& rt) {
    std::string error;
    auto upstream = dns::LdnsResolver::create(rt.resolver, error);
    if (!upstream) throw std::runtime_error("resolver: " + error);
    return upstream;
}

// A resolver for one lookup thread: its own ldns handles behind the shared cache.
class ThreadResolver : public dns::Resolver {
public:
    explicit ThreadResolver(const Runtime& rt) : upstream_(make_upstream(rt)), cached_(*upstream_, rt.cache) {}
    dns::DnsAnswer query(std::string_view name, dns::RrType type, dns::Deadline deadline) override {
        return cached_.query(name, type, deadline);
    }

private:
    std::unique_ptr<dns::LdnsResolver> upstream_;
    dns::CachingResolver cached_;
};

// True when every registry zone's answer for `ip` is in the cache: then the
// zones are asked one after another (microseconds); a thread per zone would
// cost more than it saves. Cold answers are asked in parallel.
bool registry_answers_cached(const Runtime& rt, const net::Address& ip) {
    for (const auto& zone : rt.config->registries)
        if (!rt.cache->has(registry::query_name(ip.unmapped(), zone.format, zone.zone), dns::RrType::a))
            return false;
    return true;
}

// Builds a session with the current snapshot.
std::unique_ptr<Session> new_session() {
    auto s = std::make_unique<Session>();
    s->rt = current();
    if (!s->rt) throw std::runtime_error("no configuration installed");
    s->upstream = make_upstream(*s->rt);
    s->resolver = std::make_unique<dns::CachingResolver>(*s->upstream, s->rt->cache);
    return s;
}

Session& ensure_session(SMFICTX* ctx) {
    if (Session* s = session_of(ctx)) return *s;
    auto s = new_session();
    if (smfi_setpriv(ctx, s.get()) != MI_SUCCESS) throw std::runtime_error("smfi_setpriv failed");
    ++g_open;
    return *s.release();
}

void drop_session(SMFICTX* ctx) {
    Session* s = session_of(ctx);
    if (!s) return;
    smfi_setpriv(ctx, nullptr);
    delete s;
    --g_open;
}

void refresh_macros(SMFICTX* ctx, Session& s) {
    for (const char* name : macro_names) {
        char* value = smfi_getsymval(ctx, const_cast<char*>(name));
        if (!value) continue;
        std::string_view bare = name;
        if (bare.size() > 2 && bare.front() == '{') bare = bare.substr(1, bare.size() - 2);
        s.ctx.set_macro(bare, value);
    }
}

// "<user@example>" -> "user@example"; "<>" -> "".
std::string strip_angles(const char* arg) {
    std::string a = arg ? arg : "";
    size_t b = a.find_first_not_of(" \t");
    size_t e = a.find_last_not_of(" \t");
    a = b == std::string::npos ? "" : a.substr(b, e - b + 1);
    if (a.size() >= 2 && a.front() == '<' && a.back() == '>') a = a.substr(1, a.size() - 2);
    return a;
}

std::optional<net::Address> client_address(const sockaddr* sa) {
    if (!sa) return std::nullopt;
    if (sa->sa_family == AF_INET) {
        sockaddr_in in;
        std::memcpy(&in, sa, sizeof in);
        return net::Address::v4(ntohl(in.sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        sockaddr_in6 in6;
        std::memcpy(&in6, sa, sizeof in6);
        std::array<uint8_t, 16> bytes;
        std::memcpy(bytes.data(), in6.sin6_addr.s6_addr, 16);
        return net::Address::v6(bytes);
    }
    return std::nullopt;  // AF_UNIX and anything else: no client address
}

// smfi_setreply treats the text as a format: '%' must be doubled. CR, LF and
// other control bytes would break the reply line; the MTA limits its length.
std::string reply_text(const std::string& text) {
    std::string out;
    for (unsigned char c : text) {
        if (out.size() >= 900) break;
        if (c == '%') {
            out += "%%";
        } else if (c < 0x20 || c == 0x7f) {
            out += ' ';
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

void set_reply(SMFICTX* ctx, const Session* s, const Verdict& v) {
    if (v.code.empty()) return;  // the MTA's own default text
    std::string text = reply_text(v.text);
    if (smfi_setreply(ctx, const_cast<char*>(v.code.c_str()),
                      v.xcode.empty() ? nullptr : const_cast<char*>(v.xcode.c_str()),
                      text.empty() ? nullptr : const_cast<char*>(text.c_str())) != MI_SUCCESS)
        log_line(LOG_WARNING,
                 "id=" + queue_id(s) + " error=\"smfi_setreply refused " + v.code + " " + v.xcode + "\"");
}

// The answer for a verdict at one stage. `accept` skips the rest of the
// connection only at connect (unknown clients, configured so); elsewhere it
// means "this stage has no objection". A `discard` for one recipient keeps it
// for now: it is removed at end of message.
sfsistat answer(SMFICTX* ctx, const Session* s, const Verdict& v, Stage stage) {
    switch (v.action) {
        case Action::continue_:
        case Action::tag:
            return SMFIS_CONTINUE;
        case Action::accept:
            return stage == Stage::connect ? SMFIS_ACCEPT : SMFIS_CONTINUE;
        case Action::tempfail:
            set_reply(ctx, s, v);
            return SMFIS_TEMPFAIL;
        case Action::reject:
            set_reply(ctx, s, v);
            return SMFIS_REJECT;
        case Action::discard:
            return stage == Stage::rcpt ? SMFIS_CONTINUE : SMFIS_DISCARD;
    }
    return SMFIS_TEMPFAIL;
}

// One line per decision, the queue id field first.
void log_verdict(const Session& s, Stage stage, const Verdict& v, std::string_view rcpt = {}) {
    std::string line = policy::log_line(s.ctx, s.facts, stage, v, rcpt);
    if (line.compare(0, 3, "id=") != 0) line = "id=" + queue_id(&s) + " " + line;
    log_line(LOG_INFO, line);
}

// The configured fallback (DESIGN "Internal errors"): never throws.
sfsistat internal_error(SMFICTX* ctx, const char* stage, const char* what) noexcept {
    try {
        Session* s = session_of(ctx);
        std::shared_ptr<const Runtime> rt = s ? s->rt : current();
        Verdict v;
        if (rt) {
            v = policy::internal_error_verdict(*rt->config);
        } else {
            v.action = Action::tempfail;
            v.code = "451";
            v.xcode = "4.3.0";
            v.text = "internal error in the mail filter, try again later";
        }
        log_line(LOG_ERR, "id=" + queue_id(s) + " stage=" + stage + " error=\"internal: " + what +
                              "\" action=" + policy::to_string(v.action) + " code=" + v.code);
        if (v.action == Action::accept) return SMFIS_ACCEPT;
        set_reply(ctx, s, v);
        return v.action == Action::reject ? SMFIS_REJECT : SMFIS_TEMPFAIL;
    } catch (...) {
        return SMFIS_TEMPFAIL;
    }
}

template <typename Body>
sfsistat guarded(SMFICTX* ctx, const char* stage, Body&& body) noexcept {
    try {
        return body();
    } catch (const std::exception& e) {
        return internal_error(ctx, stage, e.what());
    } catch (...) {
        return internal_error(ctx, stage, "unknown exception");
    }
}

sfsistat on_negotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long, unsigned long,
                      unsigned long* pf0, unsigned long* pf1, unsigned long* pf2,
                      unsigned long* pf3) noexcept {
    // Must answer even when the session cannot be built: the fallback comes at connect.
    *pf0 = f0 & wanted_actions;
    *pf1 = f1 & (skipped_steps | SMFIP_NR_HDR);
    *pf2 = 0;
    *pf3 = 0;
    try {
        Session& s = ensure_session(ctx);
        s.header_noreply = (*pf1 & SMFIP_NR_HDR) != 0;
        if (f0 & SMFIF_SETSYMLIST)
            for (const auto& [where, list] : symlists) smfi_setsymlist(ctx, where, const_cast<char*>(list));
    } catch (const std::exception& e) {
        log_line(LOG_ERR, std::string("stage=negotiate error=\"internal: ") + e.what() + "\"");
        *pf1 &= ~static_cast<unsigned long>(SMFIP_NR_HDR);
    } catch (...) {
        *pf1 &= ~static_cast<unsigned long>(SMFIP_NR_HDR);
    }
    return SMFIS_CONTINUE;
}

// The connect verdict once its facts are known. Only a client without an
// address can be accepted at connect (unknown_client = accept); its facts need
// no DNS and are decided at connect itself.
sfsistat connect_verdict(SMFICTX* ctx, Session& s) {
    Verdict v = policy::decide_connect(s.facts, s.cfg());
    if (v.action != Action::continue_) log_verdict(s, Stage::connect, v);
    if (v.action == Action::accept) s.accept_connection = true;
    return answer(ctx, &s, v, Stage::connect);
}

// Joins the connect-stage lookups (at MAIL FROM). Rethrows their failure.
sfsistat settle_connect(SMFICTX* ctx, Session& s) {
    if (!s.connect_lookups.valid()) return SMFIS_CONTINUE;
    s.facts.connect = s.connect_lookups.get();
    return connect_verdict(ctx, s);
}

sfsistat on_connect(SMFICTX* ctx, char* hostname, _SOCK_ADDR* hostaddr) noexcept {
    return guarded(ctx, "connect", [&] {
        Session* old = session_of(ctx);
        if (old && old->connected) {
            // A second connect on one milter connection (QUIT_NC: a new SMTP
            // client), so a new session and the current snapshot.
            bool noreply = old->header_noreply;
            drop_session(ctx);
            ensure_session(ctx).header_noreply = noreply;
        }
        Session& s = ensure_session(ctx);
        if (g_draining) {
            Verdict v;
            v.action = Action::tempfail;
            v.code = "451";
            v.xcode = "4.3.2";
            v.text = "mail filter shutting down, try again later";
            log_line(LOG_INFO,
                     "id=NOQUEUE stage=connect action=tempfail code=\"451 4.3.2\" reason=shutting-down");
            return answer(ctx, &s, v, Stage::connect);
        }
        s.connected = true;
        s.ctx = policy::Context{};
        s.ctx.ip = client_address(hostaddr);
        s.ctx.hostname = hostname ? hostname : "unknown";
        refresh_macros(ctx, s);
        s.facts = policy::Facts{};
        s.facts.now = std::chrono::system_clock::now();
        s.facts.authserv_id = policy::authserv_id(s.cfg());
        dns::Deadline deadline = policy::stage_deadline(s.cfg());
        if (s.ctx.ip) {
            try {
                std::shared_ptr<const Runtime> rt = s.rt;
                policy::Context client = s.ctx;
                // The session's resolver is free until MAIL FROM joins this
                // future (HELO decides without DNS), and the session outlives
                // the thread (connect_lookups is destroyed first, waiting).
                dns::Resolver* session_resolver = s.resolver.get();
                s.connect_lookups = std::async(std::launch::async, [rt, client, deadline, session_resolver] {
                    if (registry_answers_cached(*rt, *client.ip))
                        return policy::gather_connect(client, *rt->config, *session_resolver, deadline);
                    // Every registry zone at once, each through its own resolver.
                    policy::ResolverFactory make = [rt]() -> std::unique_ptr<dns::Resolver> {
                        return std::make_unique<ThreadResolver>(*rt);
                    };
                    return policy::gather_connect(client, *rt->config, make, deadline);
                });
                return SMFIS_CONTINUE;
            } catch (const std::system_error& e) {
                // No thread to be had: look up here and now instead.
                log_line(LOG_WARNING, "id=" + queue_id(&s) +
                                          " stage=connect error=\"no lookup thread: " + e.what() + "\"");
            }
        }
        s.facts.connect = policy::gather_connect(s.ctx, s.cfg(), *s.resolver, deadline);
        return connect_verdict(ctx, s);
    });
}

sfsistat on_helo(SMFICTX* ctx, char* helo) noexcept {
    return guarded(ctx, "helo", [&] {
        Session& s = ensure_session(ctx);
        s.ctx.helo = helo ? helo : "";
        refresh_macros(ctx, s);
        Verdict v = policy::decide_helo(s.facts, s.cfg());
        if (v.action != Action::continue_) log_verdict(s, Stage::helo, v);
        return answer(ctx, &s, v, Stage::helo);
    });
}

void reset_transaction(Session& s) {
    policy::begin_transaction(s.ctx, s.facts);
    s.rcpt_args.clear();
    s.data_verdict.reset();
    s.failure.clear();
}

sfsistat on_envfrom(SMFICTX* ctx, char** argv) noexcept {
    return guarded(ctx, "mail", [&] {
        Session& s = ensure_session(ctx);
        // One budget for the whole command: waiting for the connect lookups
        // (their deadline is earlier still) and SPF together stay within
        // stage_timeout_ms, well below the MTA's milter timeout.
        dns::Deadline deadline = policy::stage_deadline(s.cfg());
        if (sfsistat r = settle_connect(ctx, s); r != SMFIS_CONTINUE) return r;
        if (s.accept_connection) return SMFIS_ACCEPT;
        reset_transaction(s);
        refresh_macros(ctx, s);
        s.ctx.mail_from = strip_angles(argv ? argv[0] : nullptr);
        s.facts.mail = policy::gather_mail(s.ctx, s.facts, s.cfg(), *s.resolver, deadline);
        Verdict v = policy::decide_mail(s.facts, s.cfg());
        log_verdict(s, Stage::mail, v);
        return answer(ctx, &s, v, Stage::mail);
    });
}

sfsistat on_envrcpt(SMFICTX* ctx, char** argv) noexcept {
    return guarded(ctx, "rcpt", [&] {
        Session& s = ensure_session(ctx);
        refresh_macros(ctx, s);
        const char* arg = argv && argv[0] ? argv[0] : "";
        std::string rcpt = strip_angles(arg);
        policy::RcptFacts r = policy::gather_rcpt(rcpt, s.facts, s.cfg(), s.rt->bulk_table.get());
        Verdict v = policy::decide_rcpt(s.facts, r, s.cfg());
        if (v.action != Action::reject && v.action != Action::tempfail) {
            s.ctx.rcpts.push_back(rcpt);
            s.facts.rcpts.push_back(std::move(r));
            s.rcpt_args.emplace_back(rcpt, arg);
        }
        if (v.action != Action::continue_) log_verdict(s, Stage::rcpt, v, rcpt);
        return answer(ctx, &s, v, Stage::rcpt);
    });
}

sfsistat on_header(SMFICTX* ctx, char* name, char* value) noexcept {
    Session* sp = session_of(ctx);
    bool noreply = sp && sp->header_noreply;
    sfsistat r = guarded(ctx, "header", [&] {
        Session& s = ensure_session(ctx);
        s.ctx.headers.push_back({name ? name : "", value ? value : ""});
        return SMFIS_CONTINUE;
    });
    if (!noreply) return r;
    // No reply is allowed: remember the trouble and answer it at end of header.
    if (r != SMFIS_CONTINUE && sp && sp->failure.empty()) sp->failure = "header callback failed";
    return SMFIS_NOREPLY;
}

sfsistat on_eoh(SMFICTX* ctx) noexcept {
    return guarded(ctx, "data", [&] {
        Session& s = ensure_session(ctx);
        if (!s.failure.empty()) throw std::runtime_error(s.failure);
        refresh_macros(ctx, s);
        s.facts.data = policy::gather_data(s.ctx, s.facts, s.cfg());
        s.data_verdict = policy::decide_data(s.facts, s.cfg());
        const Verdict& v = *s.data_verdict;
        // Refusals go out now, before the body is sent; edits wait for end of message.
        if (v.action == Action::reject || v.action == Action::tempfail || v.action == Action::discard) {
            log_verdict(s, Stage::data, v);
            return answer(ctx, &s, v, Stage::data);
        }
        return SMFIS_CONTINUE;
    });
}

void apply_edits(SMFICTX* ctx, const Session& s, const Verdict& v) {
    for (const auto& [name, index] : v.headers_to_remove)
        if (smfi_chgheader(ctx, const_cast<char*>(name.c_str()), index, nullptr) != MI_SUCCESS)
            log_line(LOG_WARNING, "id=" + queue_id(&s) + " error=\"could not remove header " + name + "[" +
                                      std::to_string(index) + "]\"");
    // In order at index 0, 1, ...: the first (Authentication-Results) ends up
    // above the MTA's own Received header (DESIGN "Lessons from the field").
    int index = 0;
    for (const auto& h : v.headers_to_add) {
        if (smfi_insheader(ctx, index, const_cast<char*>(h.name.c_str()),
                           const_cast<char*>(h.value.c_str())) != MI_SUCCESS)
            log_line(LOG_WARNING, "id=" + queue_id(&s) + " error=\"could not insert header " + h.name + "\"");
        ++index;
    }
}

sfsistat on_eom(SMFICTX* ctx) noexcept {
    return guarded(ctx, "data", [&] {
        Session& s = ensure_session(ctx);
        if (!s.failure.empty()) throw std::runtime_error(s.failure);
        refresh_macros(ctx, s);
        if (!s.data_verdict) {
            s.facts.data = policy::gather_data(s.ctx, s.facts, s.cfg());
            s.data_verdict = policy::decide_data(s.facts, s.cfg());
        }
        Verdict v = *s.data_verdict;
        if (v.action == Action::reject || v.action == Action::tempfail || v.action == Action::discard) {
            log_verdict(s, Stage::data, v);
            return answer(ctx, &s, v, Stage::data);
        }
        std::set<std::string> removed;
        for (const auto& r : v.rcpts_to_remove) {
            bool found = false;
            for (const auto& [addr, arg] : s.rcpt_args) {
                if (addr != r || removed.count(addr)) continue;
                if (smfi_delrcpt(ctx, const_cast<char*>(arg.c_str())) != MI_SUCCESS)
                    throw std::runtime_error("smfi_delrcpt " + arg + " failed");
                removed.insert(addr);
                found = true;
            }
            if (!found) throw std::runtime_error("recipient to remove was never accepted: " + r);
        }
        size_t left = 0;
        for (const auto& [addr, arg] : s.rcpt_args) left += removed.count(addr) ? 0 : 1;
        if (left == 0 && !s.rcpt_args.empty()) {
            // Never queue a message with no recipient: the policy should have
            // said reject; refuse rather than lose the message silently.
            v.action = Action::reject;
            v.code = "550";
            v.xcode = "5.7.1";
            v.text = "no recipient accepts this message";
            v.reason += v.reason.empty() ? "no-recipient-left" : ",no-recipient-left";
            log_verdict(s, Stage::data, v);
            return answer(ctx, &s, v, Stage::data);
        }
        apply_edits(ctx, s, v);
        log_verdict(s, Stage::data, v);
        return answer(ctx, &s, v, Stage::data);
    });
}

sfsistat on_abort(SMFICTX* ctx) noexcept {
    return guarded(ctx, "abort", [&] {
        if (Session* s = session_of(ctx)) reset_transaction(*s);
        return SMFIS_CONTINUE;
    });
}

sfsistat on_close(SMFICTX* ctx) noexcept {
    try {
        drop_session(ctx);
    } catch (...) {
        // Nothing can be answered at close; the session memory is gone or leaked, never the process.
    }
    return SMFIS_CONTINUE;
}

smfiDesc g_description = {
    const_cast<char*>("regmilter"),
    SMFI_VERSION,
    wanted_actions,
    on_connect,
    on_helo,
    on_envfrom,
    on_envrcpt,
    on_header,
    on_eoh,
    nullptr,  // body: not needed, negotiated away (SMFIP_NOBODY)
    on_eom,
    on_abort,
    on_close,
    nullptr,  // unknown SMTP commands: SMFIP_NOUNKNOWN
    nullptr,  // DATA command: SMFIP_NODATA
    on_negotiate,
};

}  // namespace

smfiDesc& filter_description() {
    return g_description;
}

int open_sessions() {
    return g_open.load();
}

void begin_drain() {
    g_draining = true;
}

}  // namespace regmilter::daemon
