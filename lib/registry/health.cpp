#include "registry/health.hpp"

#include <algorithm>

namespace regmilter::registry {

namespace {

const net::Address& test_point(Family family, bool listed) {
    // RFC 5782 §5: 127.0.0.2 / ::FFFF:7F00:2 listed; 127.0.0.1 / ::FFFF:7F00:1 not.
    static const net::Address v4_listed = *net::Address::parse("127.0.0.2");
    static const net::Address v4_unlisted = *net::Address::parse("127.0.0.1");
    static const net::Address v6_listed = *net::Address::parse("::ffff:7f00:2");
    static const net::Address v6_unlisted = *net::Address::parse("::ffff:7f00:1");
    if (family == Family::v4) return listed ? v4_listed : v4_unlisted;
    return listed ? v6_listed : v6_unlisted;
}

std::string point_text(Family family, bool listed) {
    if (family == Family::v4) return listed ? "127.0.0.2" : "127.0.0.1";
    return listed ? "::FFFF:7F00:2" : "::FFFF:7F00:1";
}

std::string rdata_text(const dns::DnsAnswer& a) {
    std::string out;
    for (const auto& r : a.rdata) out += (out.empty() ? "" : " ") + r;
    return out;
}

std::string state_key(const Zone& zone, Family family) {
    return health_key(zone) + (family == Family::v4 ? "/4" : "/6");
}

}  // namespace

const char* to_string(Probe::Outcome o) {
    switch (o) {
        case Probe::Outcome::healthy:
            return "healthy";
        case Probe::Outcome::broken:
            return "broken";
        default:
            return "unknown";
    }
}

std::string test_point_name(const Zone& zone, Family family, bool listed) {
    // query_label keeps ::ffff:127.0.0.2 an IPv6 name (query_name would unmap it).
    return query_label(test_point(family, listed), zone.format) + "." + zone.zone;
}

std::string health_key(const Zone& zone) {
    return std::string(util::name_of(zone.format)) + ":" + zone.zone;
}

Probe check(dns::Resolver& dns, const Zone& zone, Family family, dns::Deadline deadline) {
    Probe p;
    std::string broken, unknown;
    auto add = [](std::string& to, const std::string& what) { to += (to.empty() ? "" : "; ") + what; };

    const std::string listed_point = point_text(family, true);
    dns::DnsAnswer a = dns.query(test_point_name(zone, family, true), dns::RrType::a, deadline);
    if (dns::is_temporary(a.status)) {
        add(unknown, "test point " + listed_point + ": " + dns::to_string(a.status));
    } else if (a.status != dns::DnsStatus::ok || a.rdata.empty()) {
        // The zone went dark (or never had the test point): an allow-list
        // would call every server unregistered.
        add(broken, "test point " + listed_point + " is not listed (" + dns::to_string(a.status) + ")");
    } else {
        Classified c = classify(a, zone);
        if (c.status != Status::listed) add(broken, "test point " + listed_point + ": " + c.error);
    }

    const std::string unlisted_point = point_text(family, false);
    dns::DnsAnswer b = dns.query(test_point_name(zone, family, false), dns::RrType::a, deadline);
    if (dns::is_temporary(b.status)) {
        add(unknown, "test point " + unlisted_point + ": " + dns::to_string(b.status));
    } else if (b.status == dns::DnsStatus::ok && !b.rdata.empty()) {
        // Any answer here: the zone lists every address (a block-list would refuse everyone).
        add(broken, "test point " + unlisted_point + " is listed (" + rdata_text(b) +
                        "): the zone lists every address");
    }

    if (!broken.empty()) {
        p.outcome = Probe::Outcome::broken;
        p.detail = broken;
    } else if (!unknown.empty()) {
        p.outcome = Probe::Outcome::unknown;
        p.detail = unknown;
    } else {
        p.outcome = Probe::Outcome::healthy;
    }
    return p;
}

Health::Transition Health::record(const Zone& zone, Family family, const Probe& probe) {
    if (probe.outcome == Probe::Outcome::unknown) return Transition::none;
    auto states = states_.lock();
    State& s = (*states)[state_key(zone, family)];
    const bool was = s.broken;
    s.broken = probe.outcome == Probe::Outcome::broken;
    s.detail = s.broken ? probe.detail : std::string();
    if (was == s.broken) return Transition::none;
    broken_.fetch_add(s.broken ? 1 : -1, std::memory_order_relaxed);
    return s.broken ? Transition::broke : Transition::recovered;
}

std::string Health::broken(const Zone& zone, Family family) const {
    if (broken_count() == 0) return {};
    auto states = states_.lock();
    auto it = states->find(state_key(zone, family));
    return it != states->end() && it->second.broken ? it->second.detail : std::string();
}

bool Health::apply(Entry& e, const Zone& zone, const net::Address& ip) const {
    std::string why = broken(zone, ip.unmapped().is_v4() ? Family::v4 : Family::v6);
    if (why.empty()) return false;
    e.status = Status::error;
    e.code.clear();
    e.bulk = false;
    e.info.clear();
    e.error = "zone failed its RFC 5782 health check: " + why;
    return true;
}

void Health::retain(const std::vector<std::string>& keep) {
    auto states = states_.lock();
    for (auto it = states->begin(); it != states->end();) {
        std::string key = it->first.substr(0, it->first.size() - 2);  // without "/4", "/6"
        if (std::find(keep.begin(), keep.end(), key) != keep.end()) {
            ++it;
            continue;
        }
        if (it->second.broken) broken_.fetch_sub(1, std::memory_order_relaxed);
        it = states->erase(it);
    }
}

}  // namespace regmilter::registry
