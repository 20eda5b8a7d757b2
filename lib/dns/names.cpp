#include "dns/resolver.hpp"

namespace regmilter::dns {

const char* to_string(RrType t) {
    switch (t) {
    case RrType::a: return "A";
    case RrType::ns: return "NS";
    case RrType::cname: return "CNAME";
    case RrType::ptr: return "PTR";
    case RrType::mx: return "MX";
    case RrType::txt: return "TXT";
    case RrType::aaaa: return "AAAA";
    case RrType::spf: return "SPF";
    }
    return "TYPE?";
}

const char* to_string(DnsStatus s) {
    switch (s) {
    case DnsStatus::ok: return "ok";
    case DnsStatus::nxdomain: return "nxdomain";
    case DnsStatus::nodata: return "nodata";
    case DnsStatus::timeout: return "timeout";
    case DnsStatus::servfail: return "servfail";
    case DnsStatus::malformed: return "malformed";
    }
    return "?";
}

}  // namespace regmilter::dns
