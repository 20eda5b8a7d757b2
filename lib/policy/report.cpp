#include "policy/report.hpp"
#include "registry/info.hpp"

#include "util/json.hpp"

namespace regmilter::policy {

Transcript simulate(Session& session, const Scenario& sc) {
    Transcript t;
    auto record = [&](Stage st, const Reply& r, const std::string& rcpt = {}) {
        t.replies.push_back({st, rcpt, r});
        return refuses(r.action) || r.action == Action::accept;
    };
    ConnectInfo info;
    info.ip = sc.ip;
    info.hostname = sc.hostname;
    info.macros = sc.macros;
    bool stop = record(Stage::connect, session.connect(info)) ||
                record(Stage::helo, session.helo(sc.helo, sc.macros)) ||
                record(Stage::mail, session.mail("<" + sc.mail_from + ">", sc.macros));
    if (stop || !session.runtime()) {
        session.close();
        return t;
    }
    size_t accepted = 0;
    for (const auto& r : sc.rcpts) {
        std::string arg = "<" + r + ">";
        Reply reply = session.rcpt(arg, sc.macros);
        t.asked.push_back(session.last_recipient());
        if (reply.action == Action::accept) {
            record(Stage::rcpt, reply, r);
            session.close();
            return t;
        }
        if (!record(Stage::rcpt, reply, r)) ++accepted;
    }
    if (!sc.rcpts.empty() && accepted == 0) {
        t.facts = session.facts();
        session.abort();
        session.close();
        return t;
    }
    for (const auto& h : sc.headers) session.header(h.name, h.value);
    Reply eoh = session.end_of_headers(sc.macros);
    if (refuses(eoh.action) || eoh.action == Action::accept)
        record(Stage::data, eoh);
    else
        record(Stage::data, session.end_of_message(sc.macros));
    session.close();
    return t;
}

namespace {

void spf_json(util::JsonWriter& w, const spf::Outcome& o) {
    w.begin_object();
    w.key("identity").value(o.identity);
    w.key("domain").value(o.domain);
    w.key("sender").value(o.sender);
    w.key("result").value(spf::to_string(o.result));
    w.key("explanation").value(o.explanation);
    w.key("mechanism").value(o.mechanism);
    w.key("problem").value(o.problem);
    w.key("dns_terms").value(o.dns_terms);
    w.key("void_lookups").value(o.void_lookups);
    w.end_object();
}

}  // namespace

namespace {

void spf_section(util::JsonWriter& w, const MailFacts& m) {
    w.key("spf");
    if (m.spf_mail) {
        spf_json(w, *m.spf_mail);
    } else {
        // Not evaluated (trusted client, trusted forwarder, refused before MAIL FROM).
        w.begin_object();
        w.key("identity").value("mailfrom");
        w.key("domain").value("");
        w.key("result").value("none");
        w.key("skipped").value(m.trust != TrustReason::none ? std::string("trusted:") + to_string(m.trust)
                               : m.spf_skipped_forwarder    ? std::string("trusted-forwarder")
                                                            : std::string("not-reached"));
        w.end_object();
    }
    if (m.spf_helo) {
        w.key("spf_helo");
        spf_json(w, *m.spf_helo);
    }
}

void registry_section(util::JsonWriter& w, const ConnectFacts& c) {
    w.key("registry").begin_array();
    for (const auto& e : c.registry) {
        w.begin_object();
        registry::entry_json(w, e);
        w.end_object();
    }
    w.end_array();
}

void bulk_section(util::JsonWriter& w, const Facts& f, const config::Config& cfg, const Transcript& t) {
    bulk::Signals header_bulk = f.data.header_bulk.signals(cfg.bulk);
    w.key("bulk").begin_object();
    w.key("bulk").value(f.mail.envelope_bulk.any() || header_bulk.any());
    w.key("signals").begin_array();
    for (const auto& sig : f.mail.envelope_bulk.signals) w.value(sig);
    for (const auto& sig : header_bulk.signals) w.value(sig);
    w.end_array();
    // The last recipient's source at the top too: with one --rcpt, "bulk.source".
    if (!t.asked.empty()) w.key("source").value(t.asked.back().source);
    w.key("recipients").begin_array();
    for (const auto& r : t.asked) {
        w.begin_object();
        w.key("rcpt").value(r.rcpt);
        w.key("choice").value(util::name_of(r.bulk.choice));
        w.key("key").value(r.bulk.key);
        w.key("source").value(r.source);
        if (r.zone) {
            w.key("zone").begin_object();
            w.key("status").value(bulk::to_string(r.zone->status));
            w.key("zone").value(r.zone->zone);
            w.key("key").value(r.zone->key);
            w.key("query").value(r.zone->query);
            w.key("code").value(r.zone->code);
            w.key("error").value(r.zone->error);
            w.key("ttl").value(static_cast<long long>(r.zone->ttl));
            w.end_object();
        }
        w.end_object();
    }
    w.end_array();
    w.end_object();
}

// "verdicts", then what the data stage would do to the message, then the log.
void verdicts_section(util::JsonWriter& w, const Transcript& t) {
    w.key("verdicts").begin_array();
    const Reply* data = nullptr;
    for (const auto& sr : t.replies) {
        w.begin_object();
        w.key("stage").value(to_string(sr.stage));
        if (sr.stage == Stage::rcpt) w.key("rcpt").value(sr.rcpt);
        w.key("action").value(to_string(sr.reply.action));
        w.key("code").value(sr.reply.code);
        w.key("xcode").value(sr.reply.xcode);
        w.key("text").value(sr.reply.text);
        w.key("reason").value(sr.reply.reason);
        w.end_object();
        if (sr.stage == Stage::data) data = &sr.reply;
    }
    w.end_array();
    w.key("headers").begin_array();
    if (data)
        for (const auto& h : data->add_headers) w.value(h.name + ": " + h.value);
    w.end_array();
    w.key("headers_to_remove").begin_array();
    if (data)
        for (const auto& h : data->remove_headers) w.value(h.name + "[" + std::to_string(h.index) + "]");
    w.end_array();
    w.key("rcpts_to_remove").begin_array();
    if (data)
        for (const auto& r : data->remove_rcpts) w.value(envelope_address(r));
    w.end_array();
    w.key("log").begin_array();
    for (const auto& sr : t.replies)
        if (!sr.reply.log.empty()) w.value(sr.reply.log);
    w.end_array();
}

void state_outcome(util::JsonWriter& w, const state::Outcome& o) {
    w.key("error").value(o.ok() ? std::string() : std::string(state::to_string(o.status)) + ": " + o.reason);
}

void ratelimit_json(util::JsonWriter& w, const ratelimit::Result& r) {
    w.begin_object();
    w.key("outcome").value(ratelimit::to_string(r.outcome));
    w.key("count").value(static_cast<long long>(r.count));
    w.key("limit").value(static_cast<long long>(r.limit));
    w.key("window").value(static_cast<long long>(r.window));
    w.key("retry_after").value(static_cast<long long>(r.retry_after));
    w.key("network").value(r.network.str());
    state_outcome(w, r.store);
    w.end_object();
}

// "state", "greylist" and "ratelimit": the store asked, and what greylisting
// and the rate limits said for this transaction.
void throttle_section(util::JsonWriter& w, const Session& session, const Facts& f,
                      const config::Config& cfg) {
    const ThrottleFacts& t = f.throttle;
    w.key("state").begin_object();
    w.key("backend").value(util::name_of(cfg.state.backend));
    w.key("store").value(session.store() ? session.store()->describe() : std::string("none"));
    w.key("peek").value(session.peeking());
    w.end_object();
    w.key("greylist").begin_object();
    w.key("applies").value(t.greylist);
    w.key("reason").value(t.greylist_reason);
    w.key("recipients").begin_array();
    for (const auto& r : t.rcpts) {
        if (!r.greylist) continue;
        const greylist::Result& g = *r.greylist;
        w.begin_object();
        w.key("rcpt").value(r.rcpt);
        w.key("outcome").value(greylist::to_string(g.outcome));
        w.key("wait").value(static_cast<long long>(g.wait));
        w.key("network").value(g.network.str());
        w.key("client_passes").value(static_cast<long long>(g.client_passes));
        state_outcome(w, g.store);
        w.end_object();
    }
    w.end_array();
    w.end_object();
    w.key("ratelimit").begin_object();
    w.key("class").value(t.registered ? "registered" : "unregistered");
    w.key("applies").value(t.limited);
    w.key("messages");
    if (t.messages)
        ratelimit_json(w, *t.messages);
    else
        w.null();
    w.key("recipients").begin_array();
    for (const auto& r : t.rcpts) {
        if (!r.ratelimit) continue;
        w.begin_object();
        w.key("rcpt").value(r.rcpt);
        w.key("result");
        ratelimit_json(w, *r.ratelimit);
        w.end_object();
    }
    w.end_array();
    w.end_object();
}

}  // namespace

std::string to_json(const Session& session, const Transcript& t) {
    const Facts& f = t.facts ? *t.facts : session.facts();
    static const config::Config& none = *config::defaults();
    const config::Config& cfg = session.runtime() ? *session.runtime()->config : none;
    util::JsonWriter w;
    w.begin_object();
    w.key("config").value(cfg.source);
    spf_section(w, f.mail);
    w.key("client").begin_object();
    w.key("ip").value(f.connect.ip ? f.connect.ip->str() : "");
    w.key("hostname").value(session.context().hostname);
    w.key("trust").value(to_string(f.mail.trust == TrustReason::none && f.connect.network_trusted
                                       ? TrustReason::network
                                       : f.mail.trust));
    w.end_object();
    registry_section(w, f.connect);
    bulk_section(w, f, cfg, t);
    verdicts_section(w, t);
    throttle_section(w, session, f, cfg);
    w.end_object();
    return w.str();
}

}  // namespace regmilter::policy
