#include "dns/nameserver.hpp"

#include <fstream>
#include <sstream>

namespace regmilter::dns {

std::optional<Nameserver> parse_nameserver(std::string_view text, std::string& error) {
    auto ep = net::parse_endpoint(text, 53, "nameserver", error);
    if (!ep) return std::nullopt;
    return Nameserver(ep->address, ep->port);
}

std::vector<Nameserver> system_nameservers(const std::string& path) {
    std::vector<Nameserver> out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string key, value;
        if (!(words >> key >> value) || key != "nameserver") continue;
        // resolv.conf has bare addresses only: a v4 with ":port" is not valid there.
        if (value.find('%') != std::string::npos) continue;
        auto addr = net::Address::parse(value);
        if (addr) out.emplace_back(*addr, 53);
    }
    if (out.empty()) out.emplace_back(net::Address::v4(0x7f000001), 53);
    return out;
}

}  // namespace regmilter::dns
