// dns-lookup: one lookup through the production resolver (LdnsResolver), for
// integration tests of the DNS layer itself. Prints one line:
//   STATUS TTL COUNT ELAPSED_MS   then each rdata on its own line (TXT as is)
//
//   dns-lookup --nameserver NS [--timeout-ms MS] [--retries N] [--deadline-ms MS]
//              [--edns N] NAME TYPE          (TYPE: A AAAA MX TXT PTR NS CNAME SPF)
//
// Exit: 0 when a status was printed, 2 on bad usage.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "dns/ldns_resolver.hpp"
#include "dns/nameserver.hpp"

using namespace regmilter;

namespace {

bool type_of(const std::string& s, dns::RrType& t) {
    static const dns::RrType all[] = {dns::RrType::a,     dns::RrType::aaaa, dns::RrType::mx,
                                      dns::RrType::txt,   dns::RrType::ptr,  dns::RrType::ns,
                                      dns::RrType::cname, dns::RrType::spf};
    for (dns::RrType x : all) {
        if (s == dns::to_string(x)) {
            t = x;
            return true;
        }
    }
    return false;
}

int usage() {
    std::fprintf(stderr,
                 "usage: dns-lookup --nameserver NS [--timeout-ms MS] [--retries N] "
                 "[--deadline-ms MS] [--edns N] NAME TYPE\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    dns::ResolverOptions opt;
    long deadline_ms = -1;
    std::string name, type_text;
    int positional = 0;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
        if (a == "--nameserver") {
            const char* v = value();
            if (!v) return usage();
            std::string err;
            auto ns = dns::parse_nameserver(v, err);
            if (!ns) {
                std::fprintf(stderr, "dns-lookup: %s\n", err.c_str());
                return 2;
            }
            opt.nameservers.push_back(*ns);
        } else if (a == "--timeout-ms" || a == "--retries" || a == "--deadline-ms" || a == "--edns") {
            const char* v = value();
            if (!v) return usage();
            long n = std::strtol(v, nullptr, 10);
            if (a == "--timeout-ms")
                opt.timeout_ms = int(n);
            else if (a == "--retries")
                opt.retries = int(n);
            else if (a == "--edns")
                opt.edns_size = uint16_t(n);
            else
                deadline_ms = n;
        } else if (positional == 0) {
            name = a;
            ++positional;
        } else if (positional == 1) {
            type_text = a;
            ++positional;
        } else {
            return usage();
        }
    }
    dns::RrType type;
    if (positional != 2 || !type_of(type_text, type)) return usage();
    std::string error;
    auto res = dns::LdnsResolver::create(opt, error);
    if (!res) {
        std::fprintf(stderr, "dns-lookup: %s\n", error.c_str());
        return 2;
    }
    const auto start = dns::Clock::now();
    dns::Deadline deadline =
        deadline_ms >= 0 ? dns::deadline_in(std::chrono::milliseconds(deadline_ms)) : dns::no_deadline();
    dns::DnsAnswer ans = res->query(name, type, deadline);
    const auto took =
        std::chrono::duration_cast<std::chrono::milliseconds>(dns::Clock::now() - start).count();
    std::cout << dns::to_string(ans.status) << ' ' << ans.ttl << ' ' << ans.rdata.size() << ' ' << took
              << '\n';
    for (const std::string& r : ans.rdata) std::cout << r << '\n';
    std::cerr << "detail: " << ans.detail << '\n';
    return 0;
}
