// regmilter-query: the policy library from the command line, for
// administrators, tests and benchmarks. Thin: parse arguments, run one
// simulated SMTP session through the library (policy::run_session), print.
// Exit status 0 on an answer, 1 on a configuration or resolver error, 2 on
// bad arguments.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "bulk/bulk.hpp"
#include "config/config.hpp"
#include "dns/ldns_resolver.hpp"
#include "net/address.hpp"
#include "policy/report.hpp"
#include "spf/check_host.hpp"

namespace {

using namespace regmilter;

const char usage_text[] =
    "usage: regmilter-query --ip ADDR [-c FILE] [--helo NAME] [--from ADDR] [--rcpt ADDR]...\n"
    "                       [--header 'Name: value']... [--macro NAME=VALUE]... [--hostname NAME]\n"
    "                       [--date YYYY-MM-DD] [--nameserver HOST[:PORT]]... [--timeout-ms MS]\n"
    "                       [--retries N] [--receiver NAME] [--json] [--trace]\n"
    "       regmilter-query [-c FILE] --check\n";

[[noreturn]] void usage(const std::string& why) {
    if (!why.empty()) std::fprintf(stderr, "regmilter-query: %s\n", why.c_str());
    std::fputs(usage_text, stderr);
    std::exit(2);
}

struct Args {
    std::string config_file;
    bool check = false;
    std::optional<net::Address> ip;
    std::string helo;
    std::string from;
    std::string hostname = "unknown";
    std::vector<std::string> rcpts;
    std::vector<policy::Header> headers;
    std::vector<std::pair<std::string, std::string>> macros;
    std::optional<util::Day> date;
    std::vector<dns::Nameserver> nameservers;
    std::optional<int> timeout_ms, retries;
    std::string receiver;
    bool json = false;
    bool trace = false;
};

int parse_int(const char* opt, const char* s, int lo, int hi) {
    char* end = nullptr;
    errno = 0;
    long v = std::strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        usage(std::string(opt) + ": \"" + s + "\" is not a number from " + std::to_string(lo) + " to " +
              std::to_string(hi));
    return int(v);
}

Args parse_args(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        std::string opt = argv[i];
        auto need = [&]() -> const char* {
            if (i + 1 >= argc) usage(opt + " needs a value");
            return argv[++i];
        };
        if (opt == "-c" || opt == "--config") {
            a.config_file = need();
        } else if (opt == "--check" || opt == "-t") {
            a.check = true;
        } else if (opt == "--ip") {
            const char* v = need();
            a.ip = net::Address::parse(v);
            if (!a.ip) usage(std::string("--ip: \"") + v + "\" is not an IPv4 or IPv6 address");
        } else if (opt == "--helo") {
            a.helo = need();
        } else if (opt == "--from") {
            a.from = need();
        } else if (opt == "--hostname") {
            a.hostname = need();
        } else if (opt == "--rcpt") {
            a.rcpts.push_back(need());
        } else if (opt == "--header") {
            std::string h = need();
            auto colon = h.find(':');
            if (colon == std::string::npos) usage("--header: \"" + h + "\" has no ':' (want 'Name: value')");
            if (colon == 0) usage("--header: \"" + h + "\" has no name (want 'Name: value')");
            std::string value = h.substr(colon + 1);
            if (!value.empty() && value[0] == ' ') value.erase(0, 1);
            a.headers.push_back({h.substr(0, colon), value});
        } else if (opt == "--macro") {
            std::string m = need();
            auto eq = m.find('=');
            if (eq == std::string::npos || eq == 0) usage("--macro: \"" + m + "\" is not NAME=VALUE");
            std::string name = m.substr(0, eq);
            if (name.size() > 2 && name.front() == '{' && name.back() == '}')
                name = name.substr(1, name.size() - 2);
            a.macros.emplace_back(name, m.substr(eq + 1));
        } else if (opt == "--date") {
            const char* v = need();
            a.date = util::parse_date(v);
            if (!a.date) usage(std::string("--date: \"") + v + "\" is not a YYYY-MM-DD date");
        } else if (opt == "--nameserver") {
            std::string err;
            auto ns = dns::parse_nameserver(need(), err);
            if (!ns) usage("--nameserver: " + err);
            a.nameservers.push_back(*ns);
        } else if (opt == "--timeout-ms") {
            a.timeout_ms = parse_int("--timeout-ms", need(), 100, 30000);
        } else if (opt == "--retries") {
            a.retries = parse_int("--retries", need(), 0, 10);
        } else if (opt == "--receiver") {
            a.receiver = need();
        } else if (opt == "--json") {
            a.json = true;
        } else if (opt == "--trace") {
            a.trace = true;
        } else if (opt == "-h" || opt == "--help") {
            std::fputs(usage_text, stdout);
            std::exit(0);
        } else {
            usage("unknown option \"" + opt + "\"");
        }
    }
    if (!a.check && !a.ip) usage("--ip is required");
    return a;
}

void print_text(const policy::Session& s) {
    const policy::Facts& f = s.facts;
    if (f.mail.spf_mail) {
        const spf::Outcome& o = *f.mail.spf_mail;
        std::cout << "spf: " << spf::to_string(o.result) << " (identity " << o.identity << ", domain "
                  << o.domain << ")";
        if (!o.mechanism.empty()) std::cout << " mechanism " << o.mechanism;
        if (!o.problem.empty()) std::cout << ": " << o.problem;
        std::cout << '\n';
        if (!o.explanation.empty()) std::cout << "explanation: " << o.explanation << '\n';
    } else {
        std::cout << "spf: not checked"
                  << (f.mail.trust != policy::TrustReason::none
                          ? std::string(" (trusted: ") + policy::to_string(f.mail.trust) + ")"
                          : std::string())
                  << '\n';
    }
    if (f.mail.spf_helo)
        std::cout << "spf helo: " << spf::to_string(f.mail.spf_helo->result) << " (domain "
                  << f.mail.spf_helo->domain << ")\n";
    for (const auto& e : f.connect.registry) {
        std::cout << "registry " << e.name << ": " << registry::to_string(e.status) << " (" << e.query << ")";
        if (!e.code.empty()) std::cout << " " << e.code << (e.bulk ? " bulk sender" : "");
        if (!e.info.empty()) std::cout << " \"" << e.info << "\"";
        if (!e.error.empty()) std::cout << ": " << e.error;
        std::cout << '\n';
    }
    std::cout << "bulk:";
    bool any = false;
    for (const auto& sig : f.mail.envelope_bulk.signals) std::cout << ' ' << sig, any = true;
    for (const auto& sig : f.data.header_bulk.signals) std::cout << ' ' << sig, any = true;
    std::cout << (any ? "" : " no") << '\n';
    for (const auto& v : s.verdicts) {
        std::cout << "verdict " << policy::to_string(v.stage);
        if (!v.rcpt.empty()) std::cout << " <" << v.rcpt << ">";
        std::cout << ": " << policy::to_string(v.verdict.action);
        if (!v.verdict.code.empty()) std::cout << ' ' << v.verdict.code << ' ' << v.verdict.xcode;
        if (!v.verdict.text.empty()) std::cout << ' ' << v.verdict.text;
        if (!v.verdict.reason.empty()) std::cout << " [" << v.verdict.reason << "]";
        std::cout << '\n';
        for (const auto& r : v.verdict.rcpts_to_remove) std::cout << "remove recipient: " << r << '\n';
        for (const auto& h : v.verdict.headers_to_add)
            std::cout << "header: " << h.name << ": " << h.value << '\n';
    }
}

}  // namespace

int main(int argc, char** argv) {
    Args args = parse_args(argc, argv);

    std::shared_ptr<const config::Config> cfg = config::defaults();
    if (!args.config_file.empty()) {
        config::LoadResult r = config::load_file(args.config_file);
        for (const auto& e : r.problems) std::cout << e.str() << '\n';
        if (!r.value) return 1;
        cfg = r.value;
    }
    if (args.check) {
        if (!cfg->bulk.table.empty()) {
            auto t = bulk::Table::load(cfg->bulk.table);
            for (const auto& e : t.problems) std::cout << e.str() << '\n';
            if (!t.value) return 1;
        }
        std::cout << cfg->source << ": ok\n";
        return 0;
    }

    dns::ResolverOptions ro;
    ro.nameservers = args.nameservers.empty() ? cfg->resolver.nameservers : args.nameservers;
    ro.timeout_ms = args.timeout_ms.value_or(cfg->resolver.timeout_ms);
    ro.retries = args.retries.value_or(cfg->resolver.retries);
    std::string error;
    auto resolver = dns::LdnsResolver::create(ro, error);
    if (!resolver) {
        std::fprintf(stderr, "regmilter-query: resolver: %s\n", error.c_str());
        return 1;
    }

    std::shared_ptr<const bulk::Table> table;
    if (!cfg->bulk.table.empty()) {
        auto t = bulk::Table::load(cfg->bulk.table);
        for (const auto& e : t.problems) std::fprintf(stderr, "regmilter-query: %s\n", e.str().c_str());
        if (!t.value) return 1;
        table = t.value;
    }

    policy::SessionInput in;
    in.ip = args.ip;
    in.hostname = args.hostname;
    in.helo = args.helo;
    in.mail_from = args.from;
    in.rcpts = args.rcpts;
    in.headers = args.headers;
    in.macros = args.macros;
    in.authserv_id = args.receiver;
    if (args.date) in.now = std::chrono::system_clock::time_point(std::chrono::seconds(*args.date * 86400));
    spf::Tracer trace;
    if (args.trace) trace = [](std::string_view line) { std::cerr << "trace: " << line << '\n'; };

    // Registry zones are asked at once, each through its own resolver.
    policy::ResolverFactory zone_resolvers = [ro]() -> std::unique_ptr<dns::Resolver> {
        std::string err;
        return dns::LdnsResolver::create(ro, err);
    };
    policy::Session s = policy::run_session(in, *cfg, *resolver, table.get(), trace, zone_resolvers);
    if (args.json)
        std::cout << policy::to_json(s) << '\n';
    else
        print_text(s);
    return 0;
}
