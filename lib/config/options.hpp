// config: the option table. One row per key: section, key, the field it
// sets, its default (as written in the file), its bounds or allowed names,
// and its help text. The parser, the defaults of Config, `-t`, the sample
// file check and the regmilter.ini(5) check all read these rows. No I/O
// besides what a value check needs (is a path readable); thread-safe (the
// table is built once, then read-only).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "util/names.hpp"

namespace regmilter::config {

enum class Type {
    boolean,
    integer,
    octal,
    choice,
    text,
    user,
    domain,
    path,
    file,
    socket,
    nameserver_list,
    cidr_list,
    code_list,
    line_list,
    domain_list,
    sender_list,
    date,
    delimiter,
    recipient_list,
    endpoint,
};
// What each type is called in messages and documentation.
inline constexpr const char* type_names[] = {"boolean",
                                             "integer",
                                             "octal mode",
                                             "choice",
                                             "text",
                                             "user name",
                                             "DNS name",
                                             "path",
                                             "file",
                                             "socket",
                                             "list of nameservers",
                                             "list of networks",
                                             "list of addresses",
                                             "list, one per line",
                                             "list of host names",
                                             "list of domains and networks",
                                             "date",
                                             "characters",
                                             "list of addresses and local parts",
                                             "address and port"};
constexpr util::Names names_of(Type) {
    return type_names;
}
inline const char* to_string(Type t) {
    return util::name_of(t);
}

// Where a value goes: the config being built and, in [registry NAME], its zone.
struct Target {
    Config& cfg;
    Registry* reg;
};

struct Option {
    const char* section;  // "milter", "resolver", "trust", "registry", "spf", "bulk", "greylist", ...
    const char* key;
    Type type;
    const char* default_value;  // as written in the file ("" = empty)
    long min = 0, max = 0;      // integer and octal: inclusive bounds
    util::Names names;          // choice: the allowed values
    const char* allowed_text;   // other types: what is allowed, in words
    const char* help;
    // Parses the value lines (one, or more for lists) into the target's
    // field; returns "" or what is wrong.
    std::function<std::string(const Option&, Target&, const std::vector<std::string>&)> set;

    bool is_list() const;
    // "100..30000", "accept|tag|tempfail|reject", or allowed_text.
    std::string allowed() const;
};

// Every row, in documentation order (the sections in file order).
const std::vector<Option>& options();
// The row of section/key (section "registry" for [registry NAME]), or null.
const Option* find_option(std::string_view section, std::string_view key);
// The sections that take no name, in order, then "registry".
const std::vector<std::string>& section_kinds();

}  // namespace regmilter::config
