// config: the last pass — checks across keys, once every key of a file is
// known (as unbound-checkconf's morechecks): a registry without a zone, keys
// that do not apply to a zone's meaning, one zone asked twice, [bulk] zone
// names too long for their labels or listed twice. Reports every problem;
// decides nothing else. Internal to lib/config. Reentrant.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace regmilter::config {

// Where each key was set: "SECTION\0KEY" -> line ("registry NAME" sections).
using KeyLines = std::map<std::string, int>;
std::string key_id(const std::string& section, const std::string& key);

// Adds one problem per conflict to `out` ("FILE:LINE: [section] key: ...").
void cross_check(const Config& cfg, const KeyLines& set, const std::string& file,
                 std::vector<util::Problem>& out);

// "[section] key: message" (the part after FILE:LINE: ).
std::string located(const std::string& section, const std::string& key, const std::string& message);

}  // namespace regmilter::config
