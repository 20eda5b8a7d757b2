#include "callbacks.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "channel.hpp"
#include "log.hpp"
#include "mta.hpp"
#include "policy/session.hpp"
#include "service.hpp"

namespace regmilter::daemon {

namespace {

using policy::Reply;
using policy::Stage;

Service* g_service = nullptr;  // set once by install_service() before smfi_main
int g_hint_channel = -1;       // set once by set_rcpt_hints() before smfi_main

// The macros the policy reads, asked for with smfi_setsymlist at the stage
// where the MTA knows them.
constexpr const char* macro_names[] = {"i",
                                       "j",
                                       "{daemon_name}",
                                       "{auth_authen}",
                                       "{regmilter_session}",
                                       "{auth_type}",
                                       "{cert_issuer}",
                                       "{cert_subject}",
                                       "{verify}"};
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
// Steps and replies the configuration may not need (config_steps()).
constexpr unsigned long config_dependent = SMFIP_NR_HELO | SMFIP_NR_RCPT | SMFIP_NOEOH;

// What a configuration lets the MTA leave out (policy::stage_needs): no
// reply to HELO (always), none to RCPT TO when no recipient can be refused
// there, no end of headers when no message can be refused before its body.
unsigned long config_steps(const config::Config& cfg) {
    policy::StageNeeds n = policy::stage_needs(cfg);
    unsigned long f = 0;
    if (!n.helo_reply) f |= SMFIP_NR_HELO;
    if (!n.rcpt_reply) f |= SMFIP_NR_RCPT;
    if (!n.eoh) f |= SMFIP_NOEOH;
    return f;
}

// One milter connection: its policy session, what was negotiated, and a
// refusal from a stage the MTA takes no reply to (an internal error at HELO
// or RCPT TO), given at the next stage that replies.
struct Connection {
    explicit Connection(Service& s) : service(s), session(environment_of(s)) { service.session_opened(); }
    ~Connection() { service.session_closed(); }

    // The current snapshot for each new SMTP session, unless a reload made it
    // need a step negotiated away on this connection: then the one it was
    // negotiated with (every snapshot is complete; only the steps differ).
    policy::Environment environment_of(Service& s) {
        policy::Environment env = s.environment();
        env.runtime = [this, &s] {
            std::shared_ptr<const policy::Runtime> rt = s.current();
            const unsigned long left_out = protocol & config_dependent;
            if (!rt || !negotiated || (config_steps(*rt->config) & left_out) == left_out) return rt;
            return negotiated;
        };
        return env;
    }

    Service& service;
    unsigned long protocol = 0;                         // the SMFIP_* flags agreed
    std::shared_ptr<const policy::Runtime> negotiated;  // the snapshot they were computed from
    std::optional<policy::Reply> held;
    Stage held_stage = Stage::helo;
    bool header_noreply = false;  // SMFIP_NR_HDR negotiated
    uint64_t mails = 0;           // MAIL FROM callbacks so far (the master counts them too)
    policy::Session session;      // last: its environment reads the members above
};

Connection* connection_of(SMFICTX* ctx) {
    return static_cast<Connection*>(smfi_getpriv(ctx));
}

Connection& ensure_connection(SMFICTX* ctx) {
    if (Connection* c = connection_of(ctx)) return *c;
    if (!g_service) throw std::runtime_error("no service installed");
    auto c = std::make_unique<Connection>(*g_service);
    if (smfi_setpriv(ctx, c.get()) != MI_SUCCESS) throw std::runtime_error("smfi_setpriv failed");
    return *c.release();
}

// Decode: the macros the MTA sent for this stage, names without braces.
policy::Macros macros_of(SMFICTX* ctx) {
    policy::Macros out;
    for (const char* name : macro_names) {
        char* value = smfi_getsymval(ctx, const_cast<char*>(name));
        if (!value) continue;
        std::string_view bare = name;
        if (bare.size() > 2 && bare.front() == '{') bare = bare.substr(1, bare.size() - 2);
        out.emplace_back(std::string(bare), value);
    }
    return out;
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

// Encode: log the decision, carry the Reply out. An edit the MTA refuses at
// end of message is an internal error, answered as the session says.
sfsistat answer(SMFICTX* ctx, Connection& c, Stage stage, const Reply& r, bool edits = false) {
    log_reply(r);
    if (c.held) {
        // The earlier stage's refusal (logged then) is this stage's answer.
        Reply held = std::move(*c.held);
        c.held.reset();
        LibmilterMta mta(ctx);
        std::string ignored;
        return carry_out(mta, held, false, ignored);
    }
    LibmilterMta mta(ctx);
    std::string failed;
    sfsistat status = carry_out(mta, r, edits, failed);
    if (failed.empty()) return status;
    Reply fallback = c.session.internal_error(stage, failed);
    log_reply(fallback);
    std::string ignored;
    return carry_out(mta, fallback, false, ignored);
}

// A stage negotiated as no-reply (SMFIP_NR_HELO, SMFIP_NR_RCPT): the MTA
// waits for nothing. Its answer is "continue" but for an internal error,
// which is held for the next stage that replies.
sfsistat answer_noreply(Connection& c, Stage stage, const Reply& r) {
    log_reply(r);
    if (r.action != policy::Action::continue_ && !c.held) {
        c.held = r;
        c.held_stage = stage;
    }
    return SMFIS_NOREPLY;
}

// Anything thrown outside the session (no memory for a Connection, no
// service): the safe answer, never a dead process.
template <class Body>
sfsistat guarded(const char* stage, Body&& body) noexcept {
    try {
        return body();
    } catch (const std::exception& e) {
        try {
            log_line(LOG_ERR, std::string("id=NOQUEUE stage=") + stage + " error=\"internal: " + e.what() +
                                  "\" action=tempfail");
        } catch (...) {
        }
    } catch (...) {
    }
    return SMFIS_TEMPFAIL;
}

sfsistat on_negotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long, unsigned long,
                      unsigned long* pf0, unsigned long* pf1, unsigned long* pf2,
                      unsigned long* pf3) noexcept {
    // Must answer even when the connection cannot be set up: the fallback comes at connect.
    *pf0 = f0 & wanted_actions;
    *pf1 = f1 & (skipped_steps | SMFIP_NR_HDR);
    *pf2 = 0;
    *pf3 = 0;
    guarded("negotiate", [&] {
        Connection& c = ensure_connection(ctx);
        c.negotiated = c.service.current();
        if (c.negotiated) *pf1 |= f1 & config_steps(*c.negotiated->config);
        c.protocol = *pf1;
        c.header_noreply = (*pf1 & SMFIP_NR_HDR) != 0;
        if (f0 & SMFIF_SETSYMLIST)
            for (const auto& [where, list] : symlists) smfi_setsymlist(ctx, where, const_cast<char*>(list));
        return SMFIS_CONTINUE;
    });
    if (!connection_of(ctx)) *pf1 &= skipped_steps;
    return SMFIS_CONTINUE;
}

sfsistat on_connect(SMFICTX* ctx, char* hostname, _SOCK_ADDR* hostaddr) noexcept {
    return guarded("connect", [&] {
        Connection& c = ensure_connection(ctx);
        policy::ConnectInfo info;
        info.ip = client_address(hostaddr);
        info.hostname = hostname ? hostname : "unknown";
        info.macros = macros_of(ctx);
        return answer(ctx, c, Stage::connect, c.session.connect(info));
    });
}

sfsistat on_helo(SMFICTX* ctx, char* helo) noexcept {
    return guarded("helo", [&] {
        Connection& c = ensure_connection(ctx);
        Reply r = c.session.helo(helo ? helo : "", macros_of(ctx));
        if (c.protocol & SMFIP_NR_HELO) return answer_noreply(c, Stage::helo, r);
        return answer(ctx, c, Stage::helo, r);
    });
}

// Tells the master that this transaction's RCPT TO are all answered
// continue (set_rcpt_hints), before libmilter sends the MAIL FROM reply.
// A hint that cannot go (no master, a full channel) only leaves the
// answering to this process, as without it.
void hint_rcpt(SMFICTX* ctx, const Connection& c) {
    const char* session = smfi_getsymval(ctx, const_cast<char*>("{regmilter_session}"));
    if (!session || !*session) return;
    send_message(g_hint_channel, std::string("rcpt\t") + session + "\t" + std::to_string(c.mails), false);
}

sfsistat on_envfrom(SMFICTX* ctx, char** argv) noexcept {
    return guarded("mail", [&] {
        Connection& c = ensure_connection(ctx);
        ++c.mails;
        const char* arg = argv && argv[0] ? argv[0] : "";
        sfsistat status = answer(ctx, c, Stage::mail, c.session.mail(arg, macros_of(ctx)));
        if (status == SMFIS_CONTINUE && g_hint_channel >= 0 && !(c.protocol & SMFIP_NR_RCPT) &&
            c.session.rcpt_continues())
            hint_rcpt(ctx, c);
        return status;
    });
}

sfsistat on_envrcpt(SMFICTX* ctx, char** argv) noexcept {
    return guarded("rcpt", [&] {
        Connection& c = ensure_connection(ctx);
        const char* arg = argv && argv[0] ? argv[0] : "";
        Reply r = c.session.rcpt(arg, macros_of(ctx));
        if (c.protocol & SMFIP_NR_RCPT) return answer_noreply(c, Stage::rcpt, r);
        return answer(ctx, c, Stage::rcpt, r);
    });
}

sfsistat on_header(SMFICTX* ctx, char* name, char* value) noexcept {
    Connection* c = connection_of(ctx);
    if (c) c->session.header(name ? name : "", value ? value : "");
    return c && c->header_noreply ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

sfsistat on_eoh(SMFICTX* ctx) noexcept {
    return guarded("data", [&] {
        Connection& c = ensure_connection(ctx);
        return answer(ctx, c, Stage::data, c.session.end_of_headers(macros_of(ctx)));
    });
}

sfsistat on_eom(SMFICTX* ctx) noexcept {
    return guarded("data", [&] {
        Connection& c = ensure_connection(ctx);
        return answer(ctx, c, Stage::data, c.session.end_of_message(macros_of(ctx)), true);
    });
}

sfsistat on_abort(SMFICTX* ctx) noexcept {
    if (Connection* c = connection_of(ctx)) {
        c->session.abort();
        if (c->held && c->held_stage == Stage::rcpt) c->held.reset();  // that transaction is over
    }
    return SMFIS_CONTINUE;
}

sfsistat on_close(SMFICTX* ctx) noexcept {
    Connection* c = connection_of(ctx);
    smfi_setpriv(ctx, nullptr);
    delete c;  // joins the session's lookups; its destructor does not throw
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

void set_rcpt_hints(int channel) {
    g_hint_channel = channel;
}

smfiDesc& filter_description(Service& service) {
    g_service = &service;
    return g_description;
}

}  // namespace regmilter::daemon
