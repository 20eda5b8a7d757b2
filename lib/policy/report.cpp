#include "policy/report.hpp"

#include "util/json.hpp"

namespace regmilter::policy {

namespace {

bool refuses(const Verdict& v) {
    return v.action == Action::reject || v.action == Action::tempfail || v.action == Action::discard;
}

}  // namespace

Session run_session(const SessionInput& in, const config::Config& cfg, dns::Resolver& dns,
                    const bulk::Table* table, spf::Tracer trace, const ResolverFactory& zone_resolvers) {
    Session s;
    Context& ctx = s.ctx;
    Facts& f = s.facts;
    ctx.ip = in.ip;
    ctx.hostname = in.hostname;
    ctx.macros = in.macros;
    f.now = in.now;
    f.authserv_id = in.authserv_id.empty() ? authserv_id(cfg) : in.authserv_id;
    auto record = [&](Stage st, const Verdict& v, const std::string& rcpt = {}) {
        s.verdicts.push_back({st, rcpt, v});
        s.log.push_back(log_line(ctx, f, st, v, rcpt));
    };

    f.connect = zone_resolvers ? gather_connect(ctx, cfg, zone_resolvers, stage_deadline(cfg))
                               : gather_connect(ctx, cfg, dns, stage_deadline(cfg));
    Verdict v = decide_connect(f, cfg);
    record(Stage::connect, v);
    if (v.action == Action::accept || refuses(v)) return s;

    ctx.helo = in.helo;
    v = decide_helo(f, cfg);
    record(Stage::helo, v);

    begin_transaction(ctx, f);
    ctx.mail_from = in.mail_from;
    f.mail = gather_mail(ctx, f, cfg, dns, stage_deadline(cfg), std::move(trace));
    v = decide_mail(f, cfg);
    record(Stage::mail, v);
    if (v.action == Action::accept || refuses(v)) return s;

    for (const auto& r : in.rcpts) {
        RcptFacts rf = gather_rcpt(r, f, cfg, table);
        Verdict rv = decide_rcpt(f, rf, cfg);
        record(Stage::rcpt, rv, r);
        s.asked.push_back(rf);
        if (!refuses(rv)) {
            ctx.rcpts.push_back(r);
            f.rcpts.push_back(std::move(rf));
        }
    }
    if (!in.rcpts.empty() && f.rcpts.empty()) {
        s.refused_all_rcpts = true;
        return s;
    }

    ctx.headers = in.headers;
    f.data = gather_data(ctx, f, cfg);
    record(Stage::data, decide_data(f, cfg));
    return s;
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

std::string to_json(const Session& s) {
    const Facts& f = s.facts;
    util::JsonWriter w;
    w.begin_object();

    w.key("spf");
    if (f.mail.spf_mail) {
        spf_json(w, *f.mail.spf_mail);
    } else {
        // Not evaluated (trusted client, trusted forwarder, refused before MAIL FROM).
        w.begin_object();
        w.key("identity").value("mailfrom");
        w.key("domain").value("");
        w.key("result").value("none");
        w.key("skipped").value(f.mail.trust != TrustReason::none
                                   ? std::string("trusted:") + to_string(f.mail.trust)
                               : f.mail.spf_skipped_forwarder ? std::string("trusted-forwarder")
                                                              : std::string("not-reached"));
        w.end_object();
    }
    if (f.mail.spf_helo) {
        w.key("spf_helo");
        spf_json(w, *f.mail.spf_helo);
    }
    w.key("client").begin_object();
    w.key("ip").value(f.connect.ip ? f.connect.ip->str() : "");
    w.key("hostname").value(s.ctx.hostname);
    w.key("trust").value(to_string(f.mail.trust == TrustReason::none && f.connect.network_trusted
                                       ? TrustReason::network
                                       : f.mail.trust));
    w.end_object();

    w.key("registry").begin_array();
    for (const auto& e : f.connect.registry) {
        w.begin_object();
        w.key("name").value(e.name);
        w.key("zone").value(e.zone);
        w.key("query").value(e.query);
        w.key("status").value(registry::to_string(e.status));
        w.key("code").value(e.code);
        w.key("meaning").value(e.bulk ? "bulk" : util::name_of(e.meaning));
        w.key("info").value(e.info);
        w.key("error").value(e.error);
        if (e.fcrdns_checked) {
            w.key("fcrdns").begin_object();
            w.key("ok").value(e.fcrdns_ok);
            w.key("detail").value(e.fcrdns_detail);
            w.end_object();
        }
        w.end_object();
    }
    w.end_array();

    w.key("bulk").begin_object();
    w.key("bulk").value(f.mail.envelope_bulk.any() || f.data.header_bulk.any());
    w.key("signals").begin_array();
    for (const auto& sig : f.mail.envelope_bulk.signals) w.value(sig);
    for (const auto& sig : f.data.header_bulk.signals) w.value(sig);
    w.end_array();
    w.key("recipients").begin_array();
    for (const auto& r : s.asked) {
        w.begin_object();
        w.key("rcpt").value(r.rcpt);
        w.key("choice").value(util::name_of(r.bulk.choice));
        w.key("key").value(r.bulk.key);
        w.end_object();
    }
    w.end_array();
    w.end_object();

    w.key("verdicts").begin_array();
    const Verdict* data = nullptr;
    for (const auto& sv : s.verdicts) {
        w.begin_object();
        w.key("stage").value(to_string(sv.stage));
        if (sv.stage == Stage::rcpt) w.key("rcpt").value(sv.rcpt);
        w.key("action").value(to_string(sv.verdict.action));
        w.key("code").value(sv.verdict.code);
        w.key("xcode").value(sv.verdict.xcode);
        w.key("text").value(sv.verdict.text);
        w.key("reason").value(sv.verdict.reason);
        w.end_object();
        if (sv.stage == Stage::data) data = &sv.verdict;
    }
    w.end_array();

    w.key("headers").begin_array();
    if (data)
        for (const auto& h : data->headers_to_add) w.value(h.name + ": " + h.value);
    w.end_array();
    w.key("headers_to_remove").begin_array();
    if (data)
        for (const auto& h : data->headers_to_remove) w.value(h.first + "[" + std::to_string(h.second) + "]");
    w.end_array();
    w.key("rcpts_to_remove").begin_array();
    if (data)
        for (const auto& r : data->rcpts_to_remove) w.value(r);
    w.end_array();
    w.key("log").begin_array();
    for (const auto& l : s.log) w.value(l);
    w.end_array();
    w.end_object();
    return w.str();
}

}  // namespace regmilter::policy
