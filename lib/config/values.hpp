// config: value parsers, one per option type. Each parses the value lines of
// one key (one line, or continuation lines for lists) into a typed field and
// returns "" or what is wrong (the caller adds FILE:LINE and "allowed: ...").
// Internal to lib/config. Reentrant; reads the file system only to check that
// a `file` option names a readable file.
#pragma once

#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "config/options.hpp"

namespace regmilter::config::values {

using Lines = std::vector<std::string>;

std::string parse(const Option& o, const Lines& lines, bool& out);
std::string parse(const Option& o, const Lines& lines, int& out);            // integer, min..max
std::string parse(const Option& o, const Lines& lines, long& out);           // integer, min..max
std::string parse(const Option& o, const Lines& lines, unsigned long& out);  // integer, min..max
// octal (or integer, by o.type), min..max
std::string parse(const Option& o, const Lines& lines, unsigned& out);
// text, user, domain, path, file, socket, delimiter: by o.type.
std::string parse(const Option& o, const Lines& lines, std::string& out);
std::string parse(const Option& o, const Lines& lines, std::vector<dns::Nameserver>& out);
std::string parse(const Option& o, const Lines& lines, net::CidrSet& out);
std::string parse(const Option& o, const Lines& lines, std::vector<net::Address>& out);  // code_list
// line_list (one value per line, kept as written) or domain_list.
std::string parse(const Option& o, const Lines& lines, std::vector<std::string>& out);
std::string parse(const Option& o, const Lines& lines, bulk::Senders& out);
std::string parse(const Option& o, const Lines& lines, std::optional<util::Day>& out);
// endpoint: IP:PORT or [IPv6]:PORT, a port required; empty: none.
std::string parse(const Option& o, const Lines& lines, std::optional<net::Endpoint>& out);

// choice: one of o.names.
std::string parse_choice(const Option& o, const Lines& lines, size_t& index);
template <class E, std::enable_if_t<std::is_enum_v<E>, int> = 0>
std::string parse(const Option& o, const Lines& lines, E& out) {
    size_t i = 0;
    std::string err = parse_choice(o, lines, i);
    if (err.empty()) out = static_cast<E>(i);
    return err;
}

// A DNS name as written in a config: labels of letters, digits, '-' and '_',
// 1..63 octets each, 253 octets at most, one optional trailing dot.
bool valid_domain(std::string_view d);

}  // namespace regmilter::config::values
