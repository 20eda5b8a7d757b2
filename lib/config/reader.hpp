// config: the first pass — ini text into sections and key = value entries,
// each with its line, through inih. Knows nothing of the keys (that is the
// option table's); reports lines inih would only count as "an error
// somewhere" (no '=', no ']', too long, NUL bytes) with their line.
// Internal to lib/config. Reentrant.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "util/problem.hpp"

namespace regmilter::config {

struct IniSection {
    std::string name;  // trimmed, inner blanks collapsed ("registry reg")
    int line = 0;
    bool reported = false;  // its header is already a problem: skip it and its keys
};

struct IniEntry {
    std::string section;  // as IniSection::name; empty before any section
    std::string key;
    std::vector<std::string> values;  // the first line's value, then continuation lines
    int line = 0;
};

struct IniFile {
    std::vector<IniSection> sections;
    std::vector<IniEntry> entries;
    std::vector<util::Problem> problems;  // bare messages (no section/key): FILE:LINE: message
};

// `file` names the text in problems.
IniFile read_ini(std::string_view text, const std::string& file);

// The longest section header regmilter accepts, in bytes between the brackets.
constexpr size_t max_section_length = 40;

}  // namespace regmilter::config
