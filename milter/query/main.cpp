// regmilter-query: the policy library from the command line, for
// administrators, tests and benchmarks. Thin: parse arguments, ask the
// library, print. Exit status 0 on an answer, 2 on bad arguments.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "dns/ldns_resolver.hpp"
#include "net/address.hpp"
#include "spf/check_host.hpp"
#include "util/json.hpp"

namespace {

using namespace regmilter;

const char usage_text[] =
    "usage: regmilter-query --ip ADDR [--helo NAME] [--from ADDR] [--rcpt ADDR]...\n"
    "                       [--header 'Name: value']... [--nameserver HOST[:PORT]]...\n"
    "                       [--timeout-ms MS] [--retries N] [--receiver NAME] [--json] [--trace]\n";

[[noreturn]] void usage(const std::string& why) {
    if (!why.empty()) std::fprintf(stderr, "regmilter-query: %s\n", why.c_str());
    std::fputs(usage_text, stderr);
    std::exit(2);
}

struct Args {
    std::optional<net::Address> ip;
    std::string helo;
    std::string from;
    std::vector<std::string> rcpts;
    std::vector<std::string> headers;
    dns::ResolverOptions resolver;
    std::string receiver = "unknown";
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
        if (opt == "--ip") {
            const char* v = need();
            a.ip = net::Address::parse(v);
            if (!a.ip) usage(std::string("--ip: \"") + v + "\" is not an IPv4 or IPv6 address");
        } else if (opt == "--helo") {
            a.helo = need();
        } else if (opt == "--from") {
            a.from = need();
        } else if (opt == "--rcpt") {
            a.rcpts.push_back(need());
        } else if (opt == "--header") {
            std::string h = need();
            if (h.find(':') == std::string::npos) usage("--header: \"" + h + "\" has no ':' (want 'Name: value')");
            a.headers.push_back(h);
        } else if (opt == "--nameserver") {
            std::string ns = need();
            std::string err;
            if (!dns::parse_nameserver(ns, err)) usage("--nameserver: " + err);
            a.resolver.nameservers.push_back(ns);
        } else if (opt == "--timeout-ms") {
            a.resolver.timeout_ms = parse_int("--timeout-ms", need(), 100, 30000);
        } else if (opt == "--retries") {
            a.resolver.retries = parse_int("--retries", need(), 0, 10);
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
    if (!a.ip) usage("--ip is required");
    return a;
}

void print_spf_json(util::JsonWriter& w, const spf::Outcome& o) {
    w.key("spf").begin_object();
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

int main(int argc, char** argv) {
    Args args = parse_args(argc, argv);
    std::string error;
    auto resolver = dns::LdnsResolver::create(args.resolver, error);
    if (!resolver) {
        std::fprintf(stderr, "regmilter-query: resolver: %s\n", error.c_str());
        return 1;
    }

    spf::Request req;
    req.ip = args.ip->unmapped();
    req.sender = args.from;
    req.helo = args.helo;
    req.receiver = args.receiver;
    spf::Options opt;
    if (args.trace) opt.trace = [](std::string_view line) { std::cerr << "trace: " << line << '\n'; };
    // One stage's bound: well below Postfix's 30 s milter_command_timeout.
    opt.deadline = dns::deadline_in(std::chrono::milliseconds(20000));
    spf::Outcome spf = spf::check_mailfrom(*resolver, req, opt);

    if (args.json) {
        util::JsonWriter w;
        w.begin_object();
        print_spf_json(w, spf);
        w.key("registry").begin_array().end_array();
        w.key("bulk").begin_object().key("bulk").value(false).key("signals").begin_array().end_array().end_object();
        w.key("verdicts").begin_array().end_array();
        w.key("headers").begin_array().end_array();
        w.end_object();
        std::cout << w.str() << '\n';
    } else {
        std::cout << "spf: " << spf::to_string(spf.result) << " (identity " << spf.identity << ", domain "
                  << spf.domain << ")";
        if (!spf.mechanism.empty()) std::cout << " mechanism " << spf.mechanism;
        if (!spf.problem.empty()) std::cout << ": " << spf.problem;
        std::cout << '\n';
        if (!spf.explanation.empty()) std::cout << "explanation: " << spf.explanation << '\n';
    }
    return 0;
}
