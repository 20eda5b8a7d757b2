#include "registry/checks.hpp"

#include <algorithm>
#include <atomic>
#include <thread>

#include "registry/host_rules.hpp"

namespace regmilter::registry {

namespace {

std::string failure(const char* type, std::string_view name, const dns::DnsAnswer& a) {
    std::string s =
        std::string(type) + " lookup for " + std::string(name) +
        (a.status == dns::DnsStatus::timeout ? " timed out"
                                             : std::string(" failed: ") + dns::to_string(a.status));
    if (!a.detail.empty()) s += " (" + a.detail + ")";
    return s;
}

std::string lower_name(std::string_view s) {
    if (!s.empty() && s.back() == '.') s.remove_suffix(1);
    std::string r(s);
    for (char& c : r)
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    return r;
}

std::string joined(const std::vector<std::string>& v, size_t max) {
    std::string s;
    for (size_t i = 0; i < v.size() && i < max; ++i) s += (i ? ", " : "") + v[i];
    if (v.size() > max) s += ", ...";
    return s;
}

}  // namespace

std::vector<std::string> check_address(const Registration& r, const CheckSettings& s) {
    std::vector<std::string> why;
    if (auto sp = special_use(r.ip)) {
        if (sp->never_a_host)
            why.push_back(r.ip.str() + " is in " + sp->network + ", " + sp->name +
                          ": never a mail server's address");
        else if (!s.allow_special)
            why.push_back(r.ip.str() + " is in " + sp->network + ", " + sp->name +
                          " (special-use; --allow-special accepts it)");
    }
    if (!s.allow_generic_ptr) {
        std::string d = dynamic_ptr_reason(r.hostname, r.ip);
        if (!d.empty()) why.push_back("HOSTNAME " + d);
    }
    return why;
}

std::vector<std::string> check_dns(dns::Resolver& dns, const Registration& r, dns::Deadline deadline) {
    std::vector<std::string> why;
    const std::string rev = r.ip.reversed() + (r.ip.is_v4() ? ".in-addr.arpa" : ".ip6.arpa");
    dns::DnsAnswer ptr = dns.query(rev, dns::RrType::ptr, deadline);
    switch (ptr.status) {
        case dns::DnsStatus::ok: {
            std::vector<std::string> names;
            for (const auto& n : ptr.rdata) names.push_back(lower_name(n));
            std::sort(names.begin(), names.end());  // servers may rotate RRsets: stable messages
            if (names.size() > 1) {
                why.push_back(std::to_string(names.size()) + " PTR records at " + rev + " (" +
                              joined(names, 4) + "); want exactly one, " + r.hostname);
            } else if (names.front() != r.hostname) {
                std::string w = "PTR at " + rev + " is " + names.front() + ", not " + r.hostname;
                if (names.front().find('.') == std::string::npos) w += " (and has no domain)";
                why.push_back(w);
            }
            break;
        }
        case dns::DnsStatus::nxdomain:
        case dns::DnsStatus::nodata:
            why.push_back("no PTR record at " + rev);
            break;
        default:
            why.push_back(failure("PTR", rev, ptr));
    }
    const dns::RrType type = r.ip.is_v4() ? dns::RrType::a : dns::RrType::aaaa;
    const char* tname = dns::to_string(type);
    dns::DnsAnswer fwd = dns.query(r.hostname, type, deadline);
    switch (fwd.status) {
        case dns::DnsStatus::ok: {
            bool found = false;
            for (const auto& a : fwd.rdata) {
                auto addr = net::Address::parse(a);
                found = found || (addr && addr->unmapped() == r.ip);
            }
            if (!found)
                why.push_back(r.hostname + " has " + tname + " " + joined(fwd.rdata, 4) + ", not " +
                              r.ip.str() + " (not forward-confirmed)");
            break;
        }
        case dns::DnsStatus::nxdomain:
            why.push_back(r.hostname + " does not exist (NXDOMAIN; not forward-confirmed)");
            break;
        case dns::DnsStatus::nodata:
            why.push_back(r.hostname + " has no " + tname + " record (not forward-confirmed)");
            break;
        default:
            why.push_back(failure(tname, r.hostname, fwd));
    }
    return why;
}

CheckedFile check_registrations(std::string_view text, std::string_view file, util::Day today,
                                const CheckSettings& s, const ResolverFactory& factory) {
    Parsed parsed = parse_registrations(text, file, today);
    const size_t n = parsed.entries.size();
    std::vector<std::vector<std::string>> reasons(n);
    for (size_t i = 0; i < n; ++i) reasons[i] = check_address(parsed.entries[i], s);

    if (s.dns && n > 0) {
        const dns::Deadline budget_end = dns::Clock::now() + s.budget;
        const std::string budget_text =
            "not checked: the time budget of " + std::to_string(s.budget.count() / 1000) + " s ran out";
        std::atomic<size_t> next{0};
        auto worker = [&](std::unique_ptr<dns::Resolver> resolver) {
            for (;;) {
                const size_t i = next.fetch_add(1);
                if (i >= n) return;
                const auto now = dns::Clock::now();
                if (now >= budget_end) {
                    reasons[i].push_back(budget_text);
                    continue;
                }
                const dns::Deadline deadline = std::min(budget_end, now + s.entry_timeout);
                try {
                    for (auto& w : check_dns(*resolver, parsed.entries[i], deadline))
                        reasons[i].push_back(std::move(w));
                } catch (const std::exception& e) {
                    reasons[i].push_back(std::string("not checked: ") + e.what());
                }
            }
        };
        const size_t jobs = std::min<size_t>(size_t(std::max(1, s.jobs)), n);
        std::vector<std::unique_ptr<dns::Resolver>> resolvers;
        for (size_t j = 0; j < jobs; ++j) resolvers.push_back(factory());  // may throw: before any thread
        std::vector<std::thread> threads;
        for (size_t j = 0; j < jobs; ++j) threads.emplace_back(worker, std::move(resolvers[j]));
        for (auto& t : threads) t.join();
    }

    CheckedFile out;
    out.problems = std::move(parsed.problems);
    for (const Registration& r : parsed.broken)
        for (auto& w : check_address(r, s))
            out.problems.push_back({std::string(file), r.line, r.ip.str() + " " + r.hostname, std::move(w)});
    for (size_t i = 0; i < n; ++i) {
        Registration& r = parsed.entries[i];
        if (reasons[i].empty()) {
            out.passed.push_back(std::move(r));
            continue;
        }
        for (auto& w : reasons[i])
            out.problems.push_back({std::string(file), r.line, r.ip.str() + " " + r.hostname, std::move(w)});
    }
    std::stable_sort(out.problems.begin(), out.problems.end(),
                     [](const Problem& a, const Problem& b) { return a.line < b.line; });
    int last_line = 0;
    for (const auto& p : out.problems)
        if (p.line != last_line) {
            ++out.lines_failed;
            last_line = p.line;
        }
    return out;
}

}  // namespace regmilter::registry
