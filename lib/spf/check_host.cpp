#include "spf/check_host.hpp"

#include "dns/trace.hpp"

#include "util/text.hpp"

#include <ctime>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "spf/domain.hpp"
#include "spf/macro.hpp"
#include "spf/record.hpp"

namespace regmilter::spf {

namespace {

using dns::DnsAnswer;
using dns::DnsStatus;
using dns::RrType;

enum class Match { yes, no, temperror, permerror };

// What one check_host() level concluded.
struct Verdict {
    Result result = Result::neutral;
    std::string mechanism;
    std::string problem;
    std::string exp_spec;    // exp= of the record that gave a fail (RFC 7208 §6.2)
    std::string exp_domain;  // the <domain> that record was evaluated for
};

Verdict make(Result r, std::string problem) {
    Verdict v;
    v.result = r;
    v.problem = std::move(problem);
    return v;
}

Result from_qualifier(Qualifier q) {
    switch (q) {
        case Qualifier::pass:
            return Result::pass;
        case Qualifier::fail:
            return Result::fail;
        case Qualifier::softfail:
            return Result::softfail;
        case Qualifier::neutral:
            return Result::neutral;
    }
    return Result::neutral;
}

// DNS text in traces and problems: quotes and backslashes escaped, other
// bytes outside printable ASCII as \xNN (the log-value policy), bounded.
std::string printable(std::string_view s, size_t max = 300) {
    return util::sanitize(s.substr(0, max), util::TextUse::log_value);
}

bool all_printable(std::string_view s) {
    for (unsigned char c : s)
        if (c < 0x20 || c > 0x7e) return false;
    return true;
}

std::string strip_dot(std::string_view s) {
    if (!s.empty() && s.back() == '.') s.remove_suffix(1);
    return std::string(s);
}

std::string reverse_name(const net::Address& ip) {
    return ip.reversed() + (ip.is_v4() ? ".in-addr.arpa" : ".ip6.arpa");
}

constexpr const char* deadline_text = "evaluation deadline passed";

class Evaluator {
public:
    Evaluator(dns::Resolver& dns, const Options& opt, const net::Address& ip, std::string sender,
              std::string local, std::string sender_domain, std::string_view helo, std::string_view receiver)
        : dns_(dns),
          opt_(opt),
          ip_(ip),
          sender_(std::move(sender)),
          local_(std::move(local)),
          sender_domain_(std::move(sender_domain)),
          helo_(helo),
          receiver_(receiver) {}

    // RFC 7208 §4: check_host(<ip>, <domain>, <sender>) at one level.
    Verdict check(const std::string& domain) {
        std::optional<Record> rec;
        Verdict v = fetch(domain, rec);
        if (!rec) {
            if (opt_.trace) opt_.trace(domain + ": " + to_string(v.result) + " (" + v.problem + ")");
            return v;
        }
        return evaluate(domain, *rec);
    }

    // §4.3-§4.6: the domain's one SPF record, parsed; or the verdict without one.
    Verdict fetch(const std::string& domain, std::optional<Record>& rec) {
        std::string why;
        if (!valid_identity_domain(domain, &why)) return make(Result::none, domain + ": " + why);
        DnsAnswer ans = query(domain, RrType::txt);
        if (dns::is_temporary(ans.status))
            return make(Result::temperror, temporary("TXT lookup for " + domain, ans));
        if (ans.status != DnsStatus::ok) return make(Result::none, "no SPF record at " + domain);
        // §4.5: exactly one "v=spf1" record; two or more is a permerror.
        const std::string* text = nullptr;
        int found = 0;
        for (const auto& r : ans.rdata) {
            if (!is_spf_record(r)) continue;
            ++found;
            text = &r;
        }
        if (found == 0) return make(Result::none, "no SPF record at " + domain);
        if (found > 1) return make(Result::permerror, std::to_string(found) + " SPF records at " + domain);
        ParsedRecord parsed = parse_record(*text);
        if (!parsed.record) return make(Result::permerror, domain + ": " + parsed.error);
        rec = std::move(parsed.record);
        record_cached_ = ans.cached;
        return Verdict{};
    }

    // The first lookup of each DNS term after the first, asked together with
    // it: they do not depend on each other, only their use is in order
    // (RFC 7208 §4.6). Terms with macros (their names may need %{p}) and
    // terms past the §4.6.4 budget left are not prefetched; nothing is
    // counted here, the terms count as they are evaluated.
    void prefetch_terms(const std::string& domain, const Record& rec) {
        int budget = opt_.limits.dns_terms - dns_terms_;
        bool first = true;
        for (const Term& t : rec.terms) {
            RrType type;
            switch (t.mechanism) {
                case Mechanism::include:
                    type = RrType::txt;
                    break;
                case Mechanism::a:
                    type = address_type();
                    break;
                case Mechanism::mx:
                    type = RrType::mx;
                    break;
                case Mechanism::exists:
                    type = RrType::a;
                    break;
                case Mechanism::ptr:
                    --budget;
                    first = false;
                    continue;
                default:
                    continue;
            }
            if (budget-- <= 0 || deadline_hit_) return;
            std::string target;
            if (t.domain_spec.find('%') == std::string::npos && target_name(t.domain_spec, domain, target) &&
                !first)
                dns_.prefetch(target, type, opt_.deadline);
            first = false;
        }
    }

    Verdict evaluate(const std::string& domain, const Record& rec) {
        if (!record_cached_) prefetch_terms(domain, rec);  // a cached record: its terms' answers likely too
        for (const Term& t : rec.terms) {
            std::string problem;
            Match m = deadline_hit_ ? Match::temperror : match(t, domain, problem);
            if (deadline_hit_ && m != Match::permerror) {
                m = Match::temperror;
                problem = public_cause_ = deadline_text;
            }
            trace_term(domain, t.text, m, problem);
            if (m == Match::no) continue;
            if (m == Match::temperror) return make(Result::temperror, problem);
            if (m == Match::permerror) return make(Result::permerror, problem);
            Verdict v;
            v.result = from_qualifier(t.qualifier);
            v.mechanism = t.text;
            if (v.result == Result::fail && rec.exp) {
                v.exp_spec = *rec.exp;
                v.exp_domain = domain;
            }
            return v;
        }
        if (rec.redirect) {
            // §6.1: redirect is used only when no mechanism matched (an "all"
            // anywhere would have matched), and counts as a DNS term.
            std::string term = "redirect=" + *rec.redirect, problem;
            if (!count_term(problem)) {
                trace_term(domain, term, Match::permerror, problem);
                return make(Result::permerror, problem);
            }
            std::string target;
            if (!target_name(*rec.redirect, domain, target)) {
                problem = "redirect=" + *rec.redirect + " is not a valid domain name";
                trace_term(domain, term, Match::permerror, problem);
                return make(Result::permerror, problem);
            }
            if (opt_.trace) opt_.trace(domain + ": " + term + " -> " + target);
            Verdict v = check(target);
            // §6.1: a redirect to a domain without a record is a permerror.
            if (v.result == Result::none)
                return make(Result::permerror, "redirect=" + target + ": " + v.problem);
            return v;
        }
        // §4.7: no match and no redirect: neutral.
        if (opt_.trace) opt_.trace(domain + ": no term matched -> neutral (default)");
        Verdict v;
        v.result = Result::neutral;
        v.mechanism = "default";
        return v;
    }

    // RFC 7208 §6.2: the explanation for a fail; any trouble gives "".
    std::string explanation(const Verdict& v) {
        if (v.exp_spec.empty() || deadline_hit_) return "";
        std::string name;
        if (!target_name(v.exp_spec, v.exp_domain, name)) return "";
        DnsAnswer ans = query(name, RrType::txt);
        if (ans.status != DnsStatus::ok || ans.rdata.size() != 1) return "";
        const std::string& text = ans.rdata.front();
        if (!all_printable(text)) return "";  // §6.2: explanations are ASCII
        Expansion ex = expand_macros(text, MacroUse::explanation, inputs(v.exp_domain), 512);
        if (!ex.ok) return "";
        // Macro values (local part, HELO) may carry control bytes: never let
        // them into an SMTP reply.
        if (!all_printable(ex.text)) return "";
        return ex.text;
    }

    int dns_terms() const { return dns_terms_; }
    // The last temporary DNS failure without the resolver's details (its
    // address, tries, timings): what an SMTP reply may say about a temperror.
    const std::string& public_cause() const { return public_cause_; }
    int void_lookups() const { return voids_; }

private:
    // "WHAT: STATUS (DETAIL)" for the log and --trace; remembers "WHAT: STATUS"
    // as the public cause.
    std::string temporary(const std::string& what, const DnsAnswer& a) {
        public_cause_ = what + ": " + (a.detail == deadline_text ? deadline_text : dns::to_string(a.status));
        return what + ": " + describe(a);
    }

    static std::string describe(const DnsAnswer& a) {
        std::string s = dns::to_string(a.status);
        if (!a.detail.empty()) s += " (" + a.detail + ")";
        return s;
    }

    DnsAnswer query(const std::string& name, RrType type) {
        DnsAnswer ans;
        if (deadline_hit_ || dns::Clock::now() >= opt_.deadline) {
            deadline_hit_ = true;
            ans.status = DnsStatus::timeout;
            ans.detail = deadline_text;
        } else {
            ans = dns_.query(name, type, opt_.deadline);
            if (ans.status == DnsStatus::timeout && dns::Clock::now() >= opt_.deadline) deadline_hit_ = true;
        }
        if (opt_.trace) opt_.trace(dns::trace_line(name, type, ans));
        return ans;
    }

    void trace_term(const std::string& domain, const std::string& term, Match m, const std::string& problem) {
        if (!opt_.trace) return;
        const char* what = m == Match::yes         ? "match"
                           : m == Match::no        ? "no match"
                           : m == Match::temperror ? "temperror"
                                                   : "permerror";
        std::string line = domain + ": " + term + " -> " + what;
        if (!problem.empty() && m != Match::yes) line += " (" + problem + ")";
        opt_.trace(line);
    }

    // RFC 7208 §4.6.4: at most `dns_terms` terms that cause DNS queries.
    bool count_term(std::string& problem) {
        if (++dns_terms_ > opt_.limits.dns_terms) {
            problem = "more than " + std::to_string(opt_.limits.dns_terms) +
                      " DNS-querying terms (RFC 7208 §4.6.4)";
            return false;
        }
        return true;
    }

    // RFC 7208 §4.6.4: a void lookup past the limit is a permerror.
    bool count_void(std::string& problem) {
        if (++voids_ > opt_.limits.void_lookups) {
            problem = "more than " + std::to_string(opt_.limits.void_lookups) +
                      " void DNS lookups (RFC 7208 §4.6.4)";
            return false;
        }
        problem = "void lookup " + std::to_string(voids_) + " of at most " +
                  std::to_string(opt_.limits.void_lookups);
        return true;
    }

    MacroInputs inputs(const std::string& domain) {
        MacroInputs in;
        in.sender = sender_;
        in.local_part = local_;
        in.sender_domain = sender_domain_;
        in.domain = domain;
        in.helo = helo_;
        in.receiver = receiver_;
        in.ip = ip_;
        in.validated_name = [this, domain] { return validated_name(domain); };
        in.now = static_cast<int64_t>(std::time(nullptr));
        return in;
    }

    // Expand a domain-spec (empty: <domain>) into a name to query; false when
    // the result is not a usable name (treated as non-existent).
    bool target_name(const std::string& spec, const std::string& domain, std::string& out) {
        if (spec.empty()) return query_name(domain, out);
        Expansion ex = expand_macros(spec, MacroUse::domain, inputs(domain));
        if (!ex.ok) return false;
        return query_name(ex.text, out);
    }

    bool has_address(const DnsAnswer& ans, int prefix) const {
        if (ans.status != DnsStatus::ok) return false;
        for (const auto& r : ans.rdata) {
            auto a = net::Address::parse(r);
            if (a && ip_.in(a->unmapped(), prefix)) return true;
        }
        return false;
    }

    RrType address_type() const { return ip_.is_v4() ? RrType::a : RrType::aaaa; }

    // PTR names of <ip> (first `ptr_names` of them, §4.6.4), or nothing on error.
    std::optional<std::vector<std::string>> ptr_names(DnsAnswer& ans) {
        ans = query(reverse_name(ip_), RrType::ptr);
        if (ans.status != DnsStatus::ok) return std::nullopt;
        std::vector<std::string> names;
        for (const auto& r : ans.rdata) {
            if (int(names.size()) >= opt_.limits.ptr_names) break;
            names.push_back(strip_dot(r));
        }
        return names;
    }

    // §5.5: a name is validated when one of its addresses is <ip>. DNS errors
    // skip the name.
    bool validates(const std::string& name) {
        std::string q;
        if (!query_name(name, q)) return false;
        return has_address(query(q, address_type()), ip_.is_v4() ? 32 : 128);
    }

    // §7.3 %{p}: a validated name of <ip>, preferring <domain> itself, then
    // its subdomains, then any; "unknown" when none validates.
    std::string validated_name(const std::string& domain) {
        auto it = p_cache_.find(domain);
        if (it != p_cache_.end()) return it->second;
        std::string result = "unknown";
        DnsAnswer ans;
        auto names = ptr_names(ans);
        if (names) {
            std::vector<const std::string*> order;
            for (const auto& n : *names)
                if (iequals(n, strip_dot(domain))) order.push_back(&n);
            for (const auto& n : *names)
                if (!iequals(n, strip_dot(domain)) && is_same_or_subdomain(n, domain)) order.push_back(&n);
            for (const auto& n : *names)
                if (!is_same_or_subdomain(n, domain)) order.push_back(&n);
            for (const std::string* n : order) {
                if (validates(*n)) {
                    result = *n;
                    break;
                }
            }
        }
        p_cache_.emplace(domain, result);
        return result;
    }

    // RFC 7208 §4.3, §4.8 by analogy: a target that is no valid DNS name is
    // treated as non-existent, without a query.
    static Match unusable(std::string& problem) {
        problem = "target is not a valid domain name after expansion";
        return Match::no;
    }

    Match lookup_failed(const DnsAnswer& ans, const std::string& what, std::string& problem) {
        if (dns::is_temporary(ans.status)) {
            problem = temporary(what, ans);
            return Match::temperror;
        }
        if (!count_void(problem)) return Match::permerror;
        return Match::no;
    }

    // One mechanism against the client (RFC 7208 §5).
    Match match(const Term& t, const std::string& domain, std::string& problem) {
        switch (t.mechanism) {
            case Mechanism::all:
                return Match::yes;
            case Mechanism::ip4:
            case Mechanism::ip6:
                return ip_.in(t.network, t.prefix) ? Match::yes : Match::no;
            default:
                break;
        }
        if (!count_term(problem)) return Match::permerror;
        std::string target;
        bool usable = target_name(t.domain_spec, domain, target);
        if (!usable && t.mechanism == Mechanism::include) {
            problem = t.text + ": target is not a valid domain name";
            return Match::permerror;
        }
        if (!usable) return unusable(problem);
        switch (t.mechanism) {
            case Mechanism::include:
                return match_include(target, problem);
            case Mechanism::a:
                return match_a(t, target, problem);
            case Mechanism::mx:
                return match_mx(t, target, problem);
            case Mechanism::ptr:
                return match_ptr(target, problem);
            case Mechanism::exists:
                return match_exists(target, problem);
            default:
                return Match::no;
        }
    }

    // §5.2: the included domain's result decides whether this term matches.
    Match match_include(const std::string& target, std::string& problem) {
        Verdict v = check(target);
        switch (v.result) {
            case Result::pass:
                return Match::yes;
            case Result::fail:
            case Result::softfail:
            case Result::neutral:
                return Match::no;
            case Result::temperror:
                problem = v.problem;
                return Match::temperror;
            case Result::permerror:
                problem = v.problem;
                return Match::permerror;
            case Result::none:
                problem = "include:" + target + ": " + v.problem;
                return Match::permerror;
        }
        return Match::permerror;
    }

    // §5.3
    Match match_a(const Term& t, const std::string& target, std::string& problem) {
        DnsAnswer ans = query(target, address_type());
        if (ans.status != DnsStatus::ok)
            return lookup_failed(ans, std::string(dns::to_string(address_type())) + " lookup for " + target,
                                 problem);
        return has_address(ans, ip_.is_v4() ? t.cidr4 : t.cidr6) ? Match::yes : Match::no;
    }

    // §5.4
    Match match_mx(const Term& t, const std::string& target, std::string& problem) {
        DnsAnswer ans = query(target, RrType::mx);
        if (ans.status != DnsStatus::ok) return lookup_failed(ans, "MX lookup for " + target, problem);
        std::vector<std::string> hosts;
        for (const auto& r : ans.rdata) {
            size_t sp = r.find(' ');
            std::string host =
                strip_dot(sp == std::string::npos ? std::string_view() : std::string_view(r).substr(sp + 1));
            if (!host.empty()) hosts.push_back(std::move(host));  // "0 ." is a null MX
        }
        // §4.6.4: more than 10 MX names is a permerror.
        if (int(hosts.size()) > opt_.limits.mx_names) {
            problem = target + " has " + std::to_string(hosts.size()) + " MX names, more than " +
                      std::to_string(opt_.limits.mx_names) + " (RFC 7208 §4.6.4)";
            return Match::permerror;
        }
        // The hosts' addresses are independent of each other: asked together
        // (the first here, the rest prefetched), still matched in order.
        for (size_t i = 1; i < hosts.size() && !ans.cached; ++i) {
            std::string q;
            if (query_name(hosts[i], q) && !deadline_hit_) dns_.prefetch(q, address_type(), opt_.deadline);
        }
        // The hosts' address lookups are not counted as void: an IPv6
        // client checked against IPv4-only MX hosts would otherwise
        // exhaust the limit (pyspf #44).
        for (const auto& h : hosts) {
            std::string q;
            if (!query_name(h, q)) continue;
            DnsAnswer addr = query(q, address_type());
            if (dns::is_temporary(addr.status)) {
                problem =
                    temporary(std::string(dns::to_string(address_type())) + " lookup for MX host " + q, addr);
                return Match::temperror;
            }
            if (has_address(addr, ip_.is_v4() ? t.cidr4 : t.cidr6)) return Match::yes;
        }
        return Match::no;
    }

    // §5.5
    Match match_ptr(const std::string& target, std::string& problem) {
        DnsAnswer ans;
        auto names = ptr_names(ans);
        if (!names) {
            // §5.5: a DNS error on the PTR lookup makes the mechanism not match.
            if (dns::is_temporary(ans.status)) return Match::no;
            if (!count_void(problem)) return Match::permerror;
            return Match::no;
        }
        for (const auto& n : *names)
            if (is_same_or_subdomain(n, target) && validates(n)) return Match::yes;
        return Match::no;
    }

    // §5.7: an A query whatever the client's family.
    Match match_exists(const std::string& target, std::string& problem) {
        DnsAnswer ans = query(target, RrType::a);
        if (ans.status != DnsStatus::ok) return lookup_failed(ans, "A lookup for " + target, problem);
        return Match::yes;
    }

    dns::Resolver& dns_;
    const Options& opt_;
    net::Address ip_;
    std::string sender_, local_, sender_domain_;
    std::string_view helo_, receiver_;
    int dns_terms_ = 0, voids_ = 0;
    bool deadline_hit_ = false;
    bool record_cached_ = false;  // the record being evaluated came from the cache
    std::string public_cause_;    // see public_cause()
    std::map<std::string, std::string> p_cache_;
};

// Split a sender into local part and domain (§4.3: no local part ->
// "postmaster"); a sender without "@" is taken as a bare domain.
void split_sender(std::string_view sender, std::string& local, std::string& domain) {
    size_t at = sender.rfind('@');
    if (at == std::string_view::npos) {
        local.clear();
        domain.assign(sender);
    } else {
        local.assign(sender.substr(0, at));
        domain.assign(sender.substr(at + 1));
    }
    if (local.empty()) local = "postmaster";
}

Outcome run(dns::Resolver& dns, const Request& req, const Options& opt, const char* identity,
            const std::string& local, const std::string& sender_domain, std::string_view domain) {
    Outcome out;
    out.identity = identity;
    out.domain = strip_dot(domain);
    out.sender = local + "@" + sender_domain;
    std::string why;
    // §4.3: a malformed or single-label domain (or an address literal) is "none".
    if (!valid_identity_domain(domain, &why)) {
        out.result = Result::none;
        out.problem = "\"" + printable(domain, 80) + "\": " + why;
        return out;
    }
    Evaluator ev(dns, opt, req.ip.unmapped(), out.sender, local, sender_domain, req.helo, req.receiver);
    Verdict v = ev.check(out.domain);
    out.result = v.result;
    out.mechanism = v.mechanism;
    out.problem = v.problem;
    if (v.result == Result::temperror)
        out.public_problem = ev.public_cause().empty() ? "DNS trouble" : ev.public_cause();
    if (v.result == Result::fail) out.explanation = ev.explanation(v);
    out.dns_terms = ev.dns_terms();
    out.void_lookups = ev.void_lookups();
    return out;
}

}  // namespace

Outcome check_host(dns::Resolver& dns, const Request& req, std::string_view domain, const Options& opt) {
    std::string local, sender_domain;
    if (req.sender.empty()) {
        local = "postmaster";
        sender_domain = std::string(domain);
    } else {
        split_sender(req.sender, local, sender_domain);
    }
    return run(dns, req, opt, "mailfrom", local, sender_domain, domain);
}

Outcome check_mailfrom(dns::Resolver& dns, const Request& req, const Options& opt) {
    std::string local, domain;
    // §2.4: a null reverse-path is checked as postmaster@HELO.
    split_sender(req.sender.empty() ? "postmaster@" + req.helo : req.sender, local, domain);
    return run(dns, req, opt, "mailfrom", local, domain, domain);
}

Outcome check_helo(dns::Resolver& dns, const Request& req, const Options& opt) {
    // §2.3: the HELO identity is checked with <sender> postmaster@HELO.
    return run(dns, req, opt, "helo", "postmaster", req.helo, req.helo);
}

}  // namespace regmilter::spf
