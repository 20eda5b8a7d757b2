#include "dns/resolver.hpp"

#include <mutex>

namespace regmilter::dns {

const char* to_string(RrType t) {
    switch (t) {
        case RrType::a:
            return "A";
        case RrType::ns:
            return "NS";
        case RrType::cname:
            return "CNAME";
        case RrType::ptr:
            return "PTR";
        case RrType::mx:
            return "MX";
        case RrType::txt:
            return "TXT";
        case RrType::aaaa:
            return "AAAA";
        case RrType::spf:
            return "SPF";
    }
    return "TYPE?";
}

const char* to_string(DnsStatus s) {
    switch (s) {
        case DnsStatus::ok:
            return "ok";
        case DnsStatus::nxdomain:
            return "nxdomain";
        case DnsStatus::nodata:
            return "nodata";
        case DnsStatus::timeout:
            return "timeout";
        case DnsStatus::servfail:
            return "servfail";
        case DnsStatus::malformed:
            return "malformed";
    }
    return "?";
}

namespace {

struct LocalErrors {
    std::mutex mu;
    std::function<void(const std::string&)> sink;  // guarded by mu
    Clock::time_point last_report{};               // guarded by mu
    unsigned long pending = 0;                     // since the last report; guarded by mu
};

LocalErrors& local_errors() {
    static LocalErrors* e = new LocalErrors;  // never destroyed: used until the process ends
    return *e;
}

}  // namespace

void set_local_error_log(std::function<void(const std::string&)> sink) {
    LocalErrors& e = local_errors();
    std::lock_guard<std::mutex> lock(e.mu);
    e.sink = std::move(sink);
}

void note_local_error(const std::string& what) {
    constexpr auto every = std::chrono::seconds(10);
    LocalErrors& e = local_errors();
    std::function<void(const std::string&)> sink;
    std::string line;
    {
        std::lock_guard<std::mutex> lock(e.mu);
        ++e.pending;
        Clock::time_point now = Clock::now();
        if (!e.sink || now - e.last_report < every) return;
        line = "DNS: " + std::to_string(e.pending) + " quer" + (e.pending == 1 ? "y" : "ies") +
               " failed on this host since the last such line, the last with " + what +
               "; not cached (raise the open-file limit: LimitNOFILE)";
        e.pending = 0;
        e.last_report = now;
        sink = e.sink;
    }
    sink(line);
}

}  // namespace regmilter::dns
