#include "policy/policy.hpp"

#include <algorithm>

#include "util/text.hpp"

namespace regmilter::policy {

namespace {

// A log value: bare when it is plain, otherwise "quoted" with \" \\ and \xNN
// (util::TextUse::log_value, at most 512 bytes of the value).
void put(std::string& out, std::string_view key, std::string_view value) {
    bool plain = !value.empty() && value.size() <= util::limit_of(util::TextUse::log_value);
    for (char c : value) {
        unsigned char u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f || c == '"' || c == '\\' || c == '=') plain = false;
    }
    if (!out.empty()) out += ' ';
    out += key;
    out += '=';
    if (plain)
        out += value;
    else
        out += '"' + util::sanitize(value, util::TextUse::log_value) + '"';
}

std::string joined(const std::vector<std::string>& items, std::string_view sep) {
    std::string s;
    for (const auto& i : items) s += (s.empty() ? "" : std::string(sep)) + i;
    return s;
}

// greylist= (this recipient's outcome; at end of message those of the
// recipients let through) and ratelimit= (KIND:OUTCOME of the counts), when
// asked. Never the store's address: that is the outage line's.
void throttle_fields(std::string& out, const ThrottleFacts& t, Stage stage, std::string_view rcpt) {
    std::vector<std::string> grey, rate;
    auto add = [](std::vector<std::string>& to, std::string item) {
        if (std::find(to.begin(), to.end(), item) == to.end()) to.push_back(std::move(item));
    };
    if (t.messages) rate.push_back(std::string("messages:") + ratelimit::to_string(t.messages->outcome));
    size_t first = stage == Stage::rcpt && !t.rcpts.empty() ? t.rcpts.size() - 1 : 0;
    for (size_t i = first; i < t.rcpts.size(); ++i) {
        const RcptThrottle& r = t.rcpts[i];
        if (stage == Stage::rcpt && r.rcpt != rcpt) continue;  // refused before greylisting
        if (r.greylist && (stage == Stage::rcpt || !r.greylist->delays()))
            add(grey, greylist::to_string(r.greylist->outcome));
        if (r.ratelimit) add(rate, std::string("recipients:") + ratelimit::to_string(r.ratelimit->outcome));
    }
    if (!grey.empty()) put(out, "greylist", joined(grey, ","));
    if (!rate.empty()) put(out, "ratelimit", joined(rate, ","));
}

}  // namespace

std::string log_prefix(const Context& ctx) {
    std::string out;
    put(out, "session", ctx.session_id.empty() ? "-" : ctx.session_id);
    const std::string* id = ctx.macro("i");
    put(out, "id", id && !id->empty() ? *id : "NOQUEUE");
    return out;
}

std::string log_line(const Context& ctx, const Facts& facts, const config::Config& cfg, Stage stage,
                     const Reply& v, std::string_view rcpt, const Recipient* recipient) {
    std::string out = log_prefix(ctx);
    put(out, "stage", to_string(stage));
    put(out, "ip", facts.connect.ip ? facts.connect.ip->str() : "unknown");
    put(out, "helo", ctx.helo);
    if (stage >= Stage::mail) put(out, "from", "<" + ctx.mail_from + ">");
    if (!rcpt.empty()) put(out, "rcpt", "<" + std::string(rcpt) + ">");
    if (facts.mail.trust != TrustReason::none) {
        put(out, "trust", to_string(facts.mail.trust));
        // Who was trusted: the SMTP AUTH user, the client certificate's issuer.
        const std::string* who = facts.mail.trust == TrustReason::authenticated ? ctx.macro("auth_authen")
                                 : facts.mail.trust == TrustReason::tls         ? ctx.macro("cert_issuer")
                                                                                : nullptr;
        if (who) put(out, facts.mail.trust == TrustReason::tls ? "tls_issuer" : "auth_user", *who);
    }
    if (stage >= Stage::mail) {
        std::string spf;
        if (facts.mail.spf_mail)
            spf = spf::to_string(facts.mail.spf_mail->result);
        else if (facts.mail.spf_skipped_forwarder)
            spf = "skipped:forwarder";
        else
            spf = "skipped";
        put(out, "spf", spf);
        // Why an error is an error, with the resolver's details that the reply leaves out.
        if (facts.mail.spf_mail && !facts.mail.spf_mail->problem.empty() &&
            (facts.mail.spf_mail->result == spf::Result::temperror ||
             facts.mail.spf_mail->result == spf::Result::permerror))
            put(out, "spf_problem", facts.mail.spf_mail->problem);
        if (facts.mail.spf_helo) put(out, "spf_helo", spf::to_string(facts.mail.spf_helo->result));
    }
    std::string reg;
    for (const auto& e : facts.connect.registry) {
        if (!reg.empty()) reg += ',';
        reg += e.name + ":" + registry::to_string(e.status);
        if (!e.code.empty()) reg += ":" + e.code;
        if (e.bulk) reg += ":bulk";
        if (e.fcrdns_checked && !e.fcrdns_ok) reg += ":no-fcrdns";
    }
    put(out, "registry", reg.empty() ? "-" : reg);
    std::string info;
    for (const auto& e : facts.connect.registry)
        if (!e.info.empty()) info += (info.empty() ? "" : "; ") + e.name + ": " + e.info;
    if (!info.empty()) put(out, "registry_info", info);
    if (stage >= Stage::mail) {
        std::vector<std::string> bulk = facts.mail.envelope_bulk.signals;
        if (stage == Stage::data)
            for (auto& s : facts.data.header_bulk.signals(cfg.bulk).signals) bulk.push_back(std::move(s));
        put(out, "bulk", bulk.empty() ? "no" : joined(bulk, ","));
    }
    if (recipient) {
        put(out, "bulk_source", recipient->source);
        if (recipient->zone && recipient->zone->status == bulk::ZoneStatus::error)
            put(out, "bulk_error",
                recipient->zone->zone + ": " + recipient->zone->error +
                    " (on_error=" + util::name_of(cfg.bulk.on_error) + ")");
    }
    throttle_fields(out, facts.throttle, stage, rcpt);
    put(out, "action", to_string(v.action));
    if (!v.code.empty()) put(out, "code", v.code + " " + v.xcode);
    if (!v.reason.empty()) put(out, "reason", v.reason);
    // Observe mode: what enforce would have answered here ("would greylist", "would reject").
    if (v.would != Action::continue_)
        put(out, "observe",
            std::string("would ") +
                (v.reason.rfind("observe:greylist:", 0) == 0 ? "greylist" : to_string(v.would)));
    if (!v.remove_rcpts.empty()) put(out, "removed", joined(v.remove_rcpts, ","));
    return out;
}

}  // namespace regmilter::policy
