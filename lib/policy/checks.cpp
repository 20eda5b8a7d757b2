#include "policy/checks.hpp"

#include <chrono>

#include "policy/auth_results.hpp"
#include "policy/replies.hpp"
#include "util/date.hpp"
#include "util/text.hpp"

namespace regmilter::policy {

using CAction = policy::CheckAction;
using config::Config;

namespace {

void set_codes(Check& c, const replies::Codes& codes) {
    if (c.action == CAction::reject) {
        c.code = codes.reject.code;
        c.xcode = codes.reject.xcode;
    } else if (c.action == CAction::tempfail) {
        c.code = codes.tempfail.code;
        c.xcode = codes.tempfail.xcode;
    }
}

std::string ip_text(const Facts& f) {
    return f.connect.ip ? f.connect.ip->str() : "unknown";
}

// enforce_after: before the date, reject, tempfail and greylist of a zone become tag.
void enforce(Check& c, const config::Registry& z, util::Day today) {
    if (z.enforce_after && today < *z.enforce_after &&
        (c.action == CAction::reject || c.action == CAction::tempfail || c.action == CAction::greylist)) {
        c.action = CAction::tag;
        c.downgraded = true;
        c.tag += " (enforced from " + util::format_date(*z.enforce_after) + ")";
    }
}

// A zone that could not be asked: on_error.
Check error_check(const registry::Entry& e, const config::Registry& z, const net::Address& ip) {
    Check c;
    c.source = "registry:" + e.name;
    c.reason = "registry:error:" + e.zone;
    c.action = z.on_error == policy::OnError::tempfail ? CAction::tempfail : CAction::accept;
    if (c.action == CAction::tempfail) {
        c.code = replies::dns_trouble.code;
        c.xcode = replies::dns_trouble.xcode;
    }
    c.text = "cannot check " + ip.str() + " in " + e.zone + " (" + e.error + "), try again later";
    c.tag = "registry error for " + ip.str() + " in " + e.zone + ": " + e.error;
    return c;
}

// meaning = registered: the client is in none of the registered zones.
// `uncertain`: another registered zone could not be asked.
Check unregistered_check(const registry::Entry& e, const config::Registry& z, const net::Address& ip,
                         bool uncertain) {
    Check c;
    c.source = "registry:" + e.name;
    c.reason = "registry:unregistered:" + e.zone;
    c.action = z.unregistered;
    std::string why = e.status == registry::Status::listed
                          ? " (in " + e.zone + " without forward-confirmed reverse DNS)"
                          : " (not in " + e.zone + ")";
    c.text = z.reject_text.empty() ? ip.str() + " is not a registered mail server" + why
                                   : registry::expand_text(z.reject_text, ip, e);
    c.tag = "unregistered " + ip.str() + why;
    if (!z.reject_text.empty()) c.tag += "; " + registry::expand_text(z.reject_text, ip, e);
    // "Unregistered" is not certain, and a temporary failure never becomes a
    // permanent reject (nor greylisting of what may be a registered server).
    if (uncertain && c.action != CAction::accept) c.action = CAction::tag;
    return c;
}

// meaning = blocked: the client is listed.
Check listed_check(const registry::Entry& e, const config::Registry& z, const net::Address& ip) {
    Check c;
    c.source = "registry:" + e.name;
    c.reason = "registry:listed:" + e.zone;
    c.action = z.listed;
    std::string detail = " (" + e.code + (e.info.empty() ? "" : ": " + e.info) + ")";
    c.text = z.reject_text.empty() ? ip.str() + " is listed in " + e.zone + detail
                                   : registry::expand_text(z.reject_text, ip, e);
    c.tag = "listed " + ip.str() + " in " + e.zone + detail;
    return c;
}

const config::Registry* zone_of(const registry::Entry& e, const Config& cfg) {
    for (const auto& r : cfg.registries)
        if (r.name == e.name) return &r;
    return nullptr;
}

void registry_checks(const Facts& f, const Config& cfg, std::vector<Check>& out) {
    if (!f.connect.ip) return;
    const net::Address& ip = *f.connect.ip;
    const auto& entries = f.connect.registry;
    // meaning = registered zones: listed in any one counts as registered.
    bool any_registered = false, any_error = false;
    for (const auto& e : entries)
        if (e.meaning == registry::Meaning::registered) {
            any_registered = any_registered || counts_registered(e);
            any_error = any_error || e.status == registry::Status::error;
        }
    for (const auto& e : entries) {
        const config::Registry* z = zone_of(e, cfg);
        if (!z || (e.meaning == registry::Meaning::registered && any_registered)) continue;
        if (e.status == registry::Status::error) {
            out.push_back(error_check(e, *z, ip));
            continue;
        }
        if (e.meaning == registry::Meaning::blocked && e.status != registry::Status::listed) continue;
        Check c = e.meaning == registry::Meaning::registered ? unregistered_check(e, *z, ip, any_error)
                                                             : listed_check(e, *z, ip);
        enforce(c, *z, util::day_of(f.now));
        set_codes(c, replies::policy);
        if (c.action == CAction::greylist) {  // not a verdict at MAIL FROM: at each RCPT
            c.action = CAction::accept;
            c.greylist = true;
        }
        out.push_back(std::move(c));
    }
}

CAction spf_action(spf::Result r, const config::Spf& s) {
    switch (r) {
        case spf::Result::pass:
            return s.pass;
        case spf::Result::fail:
            return s.fail;
        case spf::Result::softfail:
            return s.softfail;
        case spf::Result::neutral:
            return s.neutral;
        case spf::Result::none:
            return s.none;
        case spf::Result::permerror:
            return s.permerror;
        case spf::Result::temperror:
            return s.temperror;
    }
    return CAction::accept;
}

Check spf_check(const spf::Outcome& o, CAction action, const std::string& ip, bool helo) {
    Check c;
    c.source = std::string("spf:") + (helo ? "helo" : "mailfrom");
    std::string res = spf::to_string(o.result);
    c.reason = c.source + ":" + res;
    c.action = action;
    std::string who = helo ? "HELO " + o.domain : o.domain;
    switch (o.result) {
        case spf::Result::temperror:
            // DESIGN "Codes": temperror -> 451 4.7.24, or 550 5.7.24 only when the
            // administrator wrote `temperror = reject`. Nothing else turns a DNS
            // failure into a permanent reject.
            // The reply names the lookup and its status, never the resolver's
            // address or timings: those are in the log line's reason.
            c.text = "cannot check SPF of " + who +
                     (o.public_problem.empty() ? "" : " (" + o.public_problem + ")") + ", try again later";
            set_codes(c, replies::spf_error);
            break;
        case spf::Result::permerror:
            c.text = "SPF record of " + who + " is invalid" + (o.problem.empty() ? "" : ": " + o.problem);
            set_codes(c, replies::spf_error);
            break;
        default:
            // RFC 7208 §6.2: the domain's explanation, when it has one.
            if (!o.explanation.empty())
                c.text = o.explanation;
            else if (o.result == spf::Result::none)
                c.text = who + " publishes no SPF record";
            else
                c.text = ip + " is not allowed to send mail for " + who + " (SPF " + res + ")";
            if (o.result == spf::Result::pass) c.text = "SPF pass for " + who;
            set_codes(c, replies::spf_result);
            break;
    }
    const std::string& why = o.result == spf::Result::temperror ? o.public_problem : o.problem;
    c.tag = "spf " + res + " for " + who + " (" + ip + ")" +
            (o.result == spf::Result::fail || why.empty() ? "" : ": " + why);
    return c;
}

}  // namespace

bool counts_registered(const registry::Entry& e) {
    return e.status == registry::Status::listed && (!e.fcrdns_checked || e.fcrdns_ok);
}

std::vector<Check> evaluate_checks(const Facts& f, const Config& cfg) {
    std::vector<Check> out;
    if (f.mail.trust != TrustReason::none) return out;
    registry_checks(f, cfg, out);
    std::string ip = ip_text(f);
    // RFC 7208 §2.3: a HELO fail is acted on like a MAIL FROM fail.
    if (cfg.spf.check_helo && f.mail.spf_helo && f.mail.spf_helo->result == spf::Result::fail)
        out.push_back(spf_check(*f.mail.spf_helo, cfg.spf.fail, ip, true));
    if (f.mail.spf_mail)
        out.push_back(spf_check(*f.mail.spf_mail, spf_action(f.mail.spf_mail->result, cfg.spf), ip, false));
    for (auto& c : out) {
        c.text = util::sanitize(c.text, util::TextUse::reply);
        c.tag = util::sanitize(c.tag, util::TextUse::header);
    }
    return out;
}

const Check* strongest(const std::vector<Check>& checks) {
    const Check* top = nullptr;
    for (const auto& c : checks)
        if (!top || c.action > top->action) top = &c;
    return top;
}

const Check* greylisting(const std::vector<Check>& checks) {
    for (const auto& c : checks)
        if (c.greylist) return &c;
    return nullptr;
}

std::vector<Header> result_headers(const Facts& f, const Config& cfg) {
    std::vector<Header> out;
    const std::string& id = f.authserv_id.empty() ? std::string("localhost") : f.authserv_id;
    bool want_ar = cfg.spf.headers == policy::ResultHeaders::authentication_results ||
                   cfg.spf.headers == policy::ResultHeaders::both;
    bool want_rspf = cfg.spf.headers == policy::ResultHeaders::received_spf ||
                     cfg.spf.headers == policy::ResultHeaders::both;

    std::vector<std::string> results;
    if (f.mail.trust == TrustReason::authenticated) {
        results.push_back("auth=pass");
    }
    if (want_ar) {
        if (f.mail.spf_mail)
            results.push_back("spf=" + std::string(spf::to_string(f.mail.spf_mail->result)) +
                              " smtp.mailfrom=" + ar_address(f.mail.spf_mail->sender));
        if (f.mail.spf_helo)
            results.push_back("spf=" + std::string(spf::to_string(f.mail.spf_helo->result)) +
                              " smtp.helo=" + ar_address(f.mail.spf_helo->domain));
    }
    // RFC 8904: dnswl for allow-list (meaning = registered) zones.
    if (f.mail.trust == TrustReason::none)
        for (const auto& e : f.connect.registry) {
            if (e.meaning != registry::Meaning::registered) continue;
            std::string r = e.status == registry::Status::error ? "temperror"
                            : e.status == registry::Status::listed && (!e.fcrdns_checked || e.fcrdns_ok)
                                ? "pass"
                                : "none";
            std::string s = "dnswl=" + r + " dns.zone=" + e.zone;
            if (r == "pass") {
                s += " policy.ip=" + e.code;
                if (!e.info.empty()) s += " policy.txt=" + ar_value(e.info);
            }
            results.push_back(s);
        }
    if (!results.empty() || want_ar) {
        std::string v = id + ";";
        if (results.empty()) v += " none";  // RFC 8601 §2.2: no method ran
        for (size_t i = 0; i < results.size(); ++i) v += (i ? "; " : " ") + results[i];
        out.push_back({"Authentication-Results", v});
    }
    // RFC 7208 §9.1 Received-SPF, one per identity checked.
    if (want_rspf) {
        std::string ip = ip_text(f);
        auto add = [&](const spf::Outcome& o) {
            std::string r = spf::to_string(o.result);
            std::string comment = id + ": ";
            switch (o.result) {
                case spf::Result::pass:
                    comment += "domain of " + o.sender + " designates " + ip + " as permitted sender";
                    break;
                case spf::Result::fail:
                    comment += "domain of " + o.sender + " does not designate " + ip + " as permitted sender";
                    break;
                case spf::Result::softfail:
                    comment += "domain of " + o.sender + " discourages use of " + ip + " as permitted sender";
                    break;
                case spf::Result::neutral:
                    comment += ip + " is neither permitted nor denied by domain of " + o.sender;
                    break;
                case spf::Result::none:
                    comment += "domain of " + o.sender + " does not designate permitted sender hosts";
                    break;
                case spf::Result::permerror:
                    comment += "permanent error in processing domain of " + o.sender;
                    break;
                case spf::Result::temperror:
                    comment += "temporary error in processing domain of " + o.sender;
                    break;
            }
            std::string safe = util::sanitize(comment, util::TextUse::header_comment);
            std::string v = r + " (" + safe + ") client-ip=" + ip + "; envelope-from=" + ar_value(o.sender) +
                            "; helo=" + ar_value(f.mail.helo.empty() ? "unknown" : f.mail.helo) +
                            "; receiver=" + ar_value(id) + "; identity=" + o.identity;
            if (!o.mechanism.empty()) v += "; mechanism=" + ar_value(o.mechanism);
            out.push_back({"Received-SPF", v});
        };
        if (f.mail.spf_mail) add(*f.mail.spf_mail);
        if (f.mail.spf_helo && f.mail.spf_helo->result != spf::Result::none) add(*f.mail.spf_helo);
    }
    return out;
}

}  // namespace regmilter::policy
