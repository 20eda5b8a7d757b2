#include "dns/trace.hpp"

#include "util/text.hpp"

namespace regmilter::dns {

std::string trace_line(std::string_view name, RrType type, const DnsAnswer& a) {
    std::string line = std::string("query ") + to_string(type) + " " +
                       util::sanitize(name, util::TextUse::log_value) + " -> " + to_string(a.status);
    if (!a.detail.empty()) line += " (" + a.detail + ")";
    if (a.status == DnsStatus::ok) {
        line += " [";
        for (size_t i = 0; i < a.rdata.size(); ++i) {
            if (i) line += ", ";
            line += "\"" +
                    util::sanitize(std::string_view(a.rdata[i]).substr(0, 300), util::TextUse::log_value) +
                    "\"";
        }
        line += "]";
    }
    return line;
}

DnsAnswer TracingResolver::query(std::string_view name, RrType type, Deadline deadline) {
    DnsAnswer a = inner_.query(name, type, deadline);
    if (sink_) sink_(prefix_ + trace_line(name, type, a));
    return a;
}

}  // namespace regmilter::dns
