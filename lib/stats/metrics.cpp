#include "stats/metrics.hpp"

#include <algorithm>

#include "util/version.hpp"

namespace regmilter::stats {

namespace {

// One word of a reason as a label value: [a-z0-9_-], at most 32 characters.
std::string word(std::string_view w) {
    std::string out;
    for (char c : w.substr(0, 32)) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
        out += ok ? c : '_';
    }
    return out;
}

// The n-th ':'-separated word of `s` ("" when there is none).
std::string_view nth(std::string_view s, int n) {
    for (int i = 0; i < n; ++i) {
        size_t colon = s.find(':');
        if (colon == std::string_view::npos) return {};
        s.remove_prefix(colon + 1);
    }
    return s.substr(0, s.find(':'));
}

}  // namespace

Attribution attribute(std::string_view reason) {
    // "observe:" and "deferred-to-rcpt:" wrap the refusal that decided; count that refusal.
    for (std::string_view wrapper : {"observe:", "deferred-to-rcpt:"})
        if (reason.substr(0, wrapper.size()) == wrapper) reason.remove_prefix(wrapper.size());
    if (reason.empty()) return {"none", "none"};
    constexpr std::string_view exempt = "exempt:";
    if (reason.substr(0, exempt.size()) == exempt) {
        reason.remove_prefix(exempt.size());
        return {"exempt", reason.empty() ? "none" : attribute(reason).policy};
    }
    std::string first = word(nth(reason, 0)), second = word(nth(reason, 1));
    if (first == "spf") return {second == "helo" ? "spf_helo" : "spf", word(nth(reason, 2))};
    if (first == "trusted") return {"trust", second};
    if (first == "unknown-client") return {"trust", "unknown-client"};
    if (first == "internal-error") return {"internal", second.empty() ? "error" : second};
    if (first == "shutting-down") return {"shutdown", "shutting-down"};
    if (first == "bulk" && second.empty()) return {"bulk", "opted-out"};
    // greylist:registry:unregistered:ZONE: what the registry found; ratelimit:unregistered:messages:
    // the [ratelimit] key that limited.
    if (first == "greylist") {
        std::string found = word(nth(reason, 2));
        return {"greylist", found.empty() ? "greylisted" : found};
    }
    if (first == "ratelimit" && !second.empty()) {
        std::string kind = word(nth(reason, 2));
        return {"ratelimit", kind.empty() ? second : second + "_" + kind};
    }
    return {first, second.empty() ? first : second};
}

Metrics::Metrics()
    : sessions_("regmilter_sessions_total", "SMTP sessions begun (the connect stage answered).", {}),
      verdicts_(
          "regmilter_verdicts_total",
          "Answers to the MTA, one per stage (connect, helo, each mail and rcpt, the message), by the policy "
          "and result that decided them and the action.",
          {"stage", "policy", "result", "action"}),
      policy_results_(
          "regmilter_policy_results_total",
          "What the checks found, per examined MAIL FROM: registry (per zone), spf, spf_helo, or trust.",
          {"policy", "result"}),
      would_reject_(
          "regmilter_would_reject_total",
          "Observe mode: refusals enforce mode would have answered (reject, tempfail, discard), by stage, "
          "policy and result.",
          {"stage", "policy", "result", "action"}),
      latency_(
          "regmilter_stage_duration_seconds",
          "Time regmilter took to answer each stage, DNS included (the message: end of headers and end of "
          "message together).",
          {"stage"}),
      sessions_total_(&sessions_.at({})) {
    for (size_t i = 0; i < 5; ++i) stage_latency_[i] = &latency_.at({policy::stage_names[i]});
}

void Metrics::count_facts(const policy::Facts& f) {
    if (f.mail.trust != policy::TrustReason::none) {
        policy_results_.at({"trust", policy::to_string(f.mail.trust)}).add();
        return;
    }
    for (const auto& e : f.connect.registry)
        policy_results_.at({"registry", registry::to_string(e.status)}).add();
    if (f.mail.spf_helo) policy_results_.at({"spf_helo", spf::to_string(f.mail.spf_helo->result)}).add();
    if (f.mail.spf_mail)
        policy_results_.at({"spf", spf::to_string(f.mail.spf_mail->result)}).add();
    else if (f.mail.spf_skipped_forwarder)
        policy_results_.at({"spf", "skipped-forwarder"}).add();
}

void Metrics::answered(policy::Stage stage, const policy::Reply& r, const policy::Facts& facts,
                       std::chrono::nanoseconds elapsed) noexcept {
    try {
        size_t s = static_cast<size_t>(stage);
        if (s >= 5) return;
        const char* stage_name = policy::stage_names[s];
        stage_latency_[s]->observe(elapsed);
        if (stage == policy::Stage::connect) sessions_total_->add();
        Attribution a = attribute(r.reason);
        verdicts_.at({stage_name, a.policy, a.result, policy::to_string(r.action)}).add();
        if (r.would != policy::Action::continue_)
            would_reject_.at({stage_name, a.policy, a.result, policy::to_string(r.would)}).add();
        if (stage == policy::Stage::mail && a.policy != "internal" && a.policy != "shutdown")
            count_facts(facts);
    } catch (...) {
        // Out of memory for a new series: this answer goes uncounted.
    }
}

std::string Metrics::render(const ScrapeFacts& sf) const {
    Writer w;
    w.family("regmilter_build_info", "The running regmilter's version (always 1).", "gauge");
    w.sample("regmilter_build_info", {{"version", util::version}}, uint64_t{1});
    sessions_.render(w);
    verdicts_.render(w);
    policy_results_.render(w);
    would_reject_.render(w);
    latency_.render(w);
    if (sf.dns) {
        w.family("regmilter_dns_cache_hits_total", "DNS questions answered from the shared cache.",
                 "counter");
        w.sample("regmilter_dns_cache_hits_total", {}, sf.dns->cache_hits.value());
        w.family("regmilter_dns_cache_misses_total",
                 "DNS questions not in the shared cache (asked upstream, or joined to the same question in "
                 "flight).",
                 "counter");
        w.sample("regmilter_dns_cache_misses_total", {}, sf.dns->cache_misses.value());
        w.family("regmilter_dns_upstream_queries_total",
                 "Lookups sent to the upstream nameservers ([resolver] nameservers), by outcome.", "counter");
        for (dns::DnsStatus s : dns::all_statuses)
            w.sample("regmilter_dns_upstream_queries_total", {{"result", dns::to_string(s)}},
                     sf.dns->upstream[static_cast<size_t>(s)].value());
    }
    if (sf.dns_cache_entries) {
        w.family("regmilter_dns_cache_entries", "Answers held in the shared DNS cache now.", "gauge");
        w.sample("regmilter_dns_cache_entries", {}, *sf.dns_cache_entries);
    }
    if (sf.open_connections) {
        w.family("regmilter_connections_open", "MTA connections open now.", "gauge");
        w.sample("regmilter_connections_open", {}, static_cast<uint64_t>(std::max(0, *sf.open_connections)));
    }
    if (sf.config_generation) {
        w.family("regmilter_config_generation", "Configuration generation: 1 at start, +1 per reload.",
                 "gauge");
        w.sample("regmilter_config_generation", {}, uint64_t{*sf.config_generation});
    }
    return w.take();
}

std::string listen_warning(const net::Endpoint& listen) {
    net::Address a = listen.address.unmapped();
    bool loopback = a.is_v4() ? a.in(net::Address::v4(0x7f000000), 8) : a == *net::Address::parse("::1");
    if (loopback) return {};
    return "[stats] listen = " + listen.str() +
           " is not a loopback address: anyone who can reach it reads the counters (use 127.0.0.1:PORT, or a "
           "firewall)";
}

}  // namespace regmilter::stats
