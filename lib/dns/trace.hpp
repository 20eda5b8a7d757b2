// dns trace: one line per DNS query for regmilter-query --trace, in one
// format for every caller (SPF's own evaluation, the registry lookups):
//   query A 7.2.0.192.reg.example -> ok ["127.0.0.2"]
//   query TXT example.org -> servfail (rcode REFUSED from 127.0.0.1:53, 1 tries, 0 ms)
// Thread-safety: trace_line is pure; a TracingResolver is used by one thread,
// and calls its sink from that thread.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "dns/resolver.hpp"

namespace regmilter::dns {

// "query TYPE NAME -> STATUS[ (DETAIL)][ [RDATA, ...]]", record data quoted
// and escaped (\xHH), each at most 300 bytes.
std::string trace_line(std::string_view name, RrType type, const DnsAnswer& answer);

// Passes every query to `inner` and each answer's trace_line, after
// `prefix`, to `sink`.
class TracingResolver : public Resolver {
public:
    TracingResolver(Resolver& inner, std::function<void(std::string_view)> sink, std::string prefix)
        : inner_(inner), sink_(std::move(sink)), prefix_(std::move(prefix)) {}
    DnsAnswer query(std::string_view name, RrType type, Deadline deadline) override;

private:
    Resolver& inner_;
    std::function<void(std::string_view)> sink_;
    std::string prefix_;
};

}  // namespace regmilter::dns
