// bench: SPF evaluation cost with every answer already at hand (the "warm
// cache" case of DESIGN's performance model): an include chain, mx and a, for
// a passing and a failing client. Prints evaluations/s and p50/p99 latency.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "dns/memory_resolver.hpp"
#include "spf/check_host.hpp"

using namespace regmilter;
using Clock = std::chrono::steady_clock;

namespace {

void load(dns::MemoryResolver& r) {
    using dns::RrType;
    r.add("example.com", RrType::txt,
          "v=spf1 ip4:198.51.100.0/24 include:_spf.example.com mx a:relay.example.com -all");
    r.add("_spf.example.com", RrType::txt,
          "v=spf1 ip4:203.0.113.0/26 ip6:2001:db8:1::/48 include:_spf2.example.com ~all");
    r.add("_spf2.example.com", RrType::txt, "v=spf1 ip4:192.0.2.128/25 -all");
    r.add("example.com", RrType::mx, "10 mx1.example.com");
    r.add("example.com", RrType::mx, "20 mx2.example.com");
    r.add("mx1.example.com", RrType::a, "192.0.2.10");
    r.add("mx2.example.com", RrType::a, "192.0.2.11");
    r.add("relay.example.com", RrType::a, "192.0.2.20");
}

void run(const char* label, const char* ip) {
    dns::MemoryResolver r;
    load(r);
    spf::Request req;
    req.ip = *net::Address::parse(ip);
    req.sender = "alice@example.com";
    req.helo = "mail.example.com";
    spf::Options opt;
    const int n = 200000;
    std::vector<double> us;
    us.reserve(n);
    spf::Result last = spf::Result::none;
    auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) {
        auto a = Clock::now();
        last = spf::check_mailfrom(r, req, opt).result;
        us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count());
        if (i % 1000 == 0) r.clear_log();
    }
    double total = std::chrono::duration<double>(Clock::now() - t0).count();
    std::sort(us.begin(), us.end());
    std::printf("spf %-28s result=%-8s evals/s=%.0f p50_us=%.2f p99_us=%.2f (n=%d)\n", label,
                spf::to_string(last), n / total, us[n / 2], us[n * 99 / 100], n);
}

}  // namespace

int main() {
    run("pass via 2 includes", "192.0.2.200");
    run("fail after every term", "203.0.113.200");
    return 0;
}
