// t/fuzz: what the fuzz targets share -- the input read as lines and
// fields, a zone for the in-memory resolver written as input lines, and
// FUZZ_CHECK for the properties a target asserts (a failed one aborts, which
// libFuzzer and the replay driver both report as a crash with the input).
// Header-only; used by one thread (each target runs one input at a time).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "dns/memory_resolver.hpp"
#include "net/address.hpp"
#include "util/strings.hpp"

// A property of the code under test; on failure the condition and `what`
// (a std::string) go to stderr and the process aborts.
#define FUZZ_CHECK(cond, what)                                                                          \
    do {                                                                                                \
        if (!(cond)) {                                                                                  \
            std::fprintf(stderr, "fuzz: %s:%d: property failed: %s\n  %s\n", __FILE__, __LINE__, #cond, \
                         std::string(what).c_str());                                                    \
            std::abort();                                                                               \
        }                                                                                               \
    } while (0)

namespace regmilter::fuzz {

inline std::string_view as_text(const uint8_t* data, size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

// Lines without their "\n" (and a trailing "\r").
inline std::vector<std::string_view> lines_of(std::string_view text) {
    std::vector<std::string_view> out;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        out.push_back(line);
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
    return out;
}

// The first blank-separated word of `line`, removed from it (with the blanks
// after it).
inline std::string_view take_word(std::string_view& line) {
    size_t b = 0;
    while (b < line.size() && (line[b] == ' ' || line[b] == '\t')) ++b;
    size_t e = b;
    while (e < line.size() && line[e] != ' ' && line[e] != '\t') ++e;
    std::string_view w = line.substr(b, e - b);
    while (e < line.size() && (line[e] == ' ' || line[e] == '\t')) ++e;
    line.remove_prefix(e);
    return w;
}

inline bool printable_ascii(std::string_view s) {
    for (unsigned char c : s)
        if (c < 0x20 || c >= 0x7f) return false;
    return true;
}

// One zone line for the in-memory resolver, as a real resolver would answer
// (lib/dns/resolver.hpp's text forms):
//   NAME A|AAAA ADDRESS     kept only when the address parses, in its canonical text
//   NAME MX PREF TARGET     PREF 0..65535
//   NAME PTR|CNAME|NS TARGET
//   NAME TXT|SPF TEXT...    the rest of the line, any bytes
//   NAME TIMEOUT|SERVFAIL|MALFORMED|NXDOMAIN|NODATA   every query for NAME
//   NAME MISSING-TIMEOUT|MISSING-SERVFAIL   types NAME has no records of
//   NAME EMPTY              exists, with no records
// Returns false when the line is not one of these (the caller may read it
// as something else).
inline bool add_zone_line(dns::MemoryResolver& dns, std::string_view line) {
    std::string_view name = take_word(line);
    std::string_view type = take_word(line);
    if (name.empty() || type.empty()) return false;
    using dns::DnsStatus;
    using dns::RrType;
    auto address = [&](bool v4) {
        auto a = net::Address::parse(line);
        if (a && a->is_v4() == v4) dns.add(name, v4 ? RrType::a : RrType::aaaa, a->str());
        return true;
    };
    if (type == "A") return address(true);
    if (type == "AAAA") return address(false);
    if (type == "MX") {
        std::string_view pref = take_word(line);
        if (pref.empty() || pref.size() > 5 ||
            pref.find_first_not_of("0123456789") != std::string_view::npos ||
            std::stoul(std::string(pref)) > 65535)
            return true;
        dns.add(name, RrType::mx, std::to_string(std::stoul(std::string(pref))) + " " + std::string(line));
        return true;
    }
    if (type == "PTR") return dns.add(name, RrType::ptr, std::string(line)), true;
    if (type == "CNAME") return dns.add(name, RrType::cname, std::string(line)), true;
    if (type == "NS") return dns.add(name, RrType::ns, std::string(line)), true;
    if (type == "TXT") return dns.add(name, RrType::txt, std::string(line)), true;
    if (type == "SPF") return dns.add(name, RrType::spf, std::string(line)), true;
    if (type == "EMPTY") return dns.add_empty(name), true;
    static const std::pair<const char*, DnsStatus> failures[] = {
        {"TIMEOUT", DnsStatus::timeout},     {"SERVFAIL", DnsStatus::servfail},
        {"MALFORMED", DnsStatus::malformed}, {"NXDOMAIN", DnsStatus::nxdomain},
        {"NODATA", DnsStatus::nodata},
    };
    for (const auto& [word, status] : failures) {
        if (type == word) return dns.add_failure(name, status), true;
        if (type == "MISSING-" + std::string(word)) return dns.add_failure_for_missing(name, status), true;
    }
    return false;
}

}  // namespace regmilter::fuzz
