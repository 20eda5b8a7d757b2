#include "config/validate.hpp"

#include <algorithm>

#include "bulk/optout.hpp"

namespace regmilter::config {

std::string key_id(const std::string& section, const std::string& key) {
    return section + '\0' + key;
}

std::string located(const std::string& section, const std::string& key, const std::string& message) {
    std::string s;
    if (!section.empty()) {
        s += "[" + section + "]";
        s += key.empty() ? ": " : " " + key + ": ";
    } else if (!key.empty()) {
        s += key + ": ";
    }
    return s + message;
}

void cross_check(const Config& cfg, const KeyLines& set, const std::string& file,
                 std::vector<util::Problem>& out) {
    auto problem = [&](int line, const std::string& sec, const char* key, const std::string& msg) {
        out.push_back({file, line, located(sec, key, msg)});
    };
    std::map<std::string, std::string> zone_owner;  // "ZONE FORMAT" -> NAME
    for (const auto& r : cfg.registries) {
        std::string sec = "registry " + r.name;
        auto line_of = [&](const char* key) -> int {
            auto it = set.find(key_id(sec, key));
            return it == set.end() ? 0 : it->second;
        };
        if (r.zone.empty()) problem(line_of("zone") ? line_of("zone") : r.line, sec, "zone", "is required");
        if (r.meaning == registry::Meaning::registered) {
            if (int l = line_of("listed"))
                problem(l, sec, "listed",
                        "applies to meaning = blocked; this zone has meaning = registered (use unregistered)");
        } else {
            for (const char* k : {"unregistered", "bulk_codes", "require_fcrdns"})
                if (int l = line_of(k))
                    problem(l, sec, k, "applies to meaning = registered; this zone has meaning = blocked");
        }
        if (r.zone.empty()) continue;
        std::string id = r.zone + " " + util::name_of(r.format);
        if (auto it = zone_owner.find(id); it != zone_owner.end())
            problem(line_of("zone"), sec, "zone", "zone " + r.zone + " is already asked by [registry " + it->second + "]");
        else
            zone_owner[id] = r.name;
    }
    // [bulk] zone: each name must leave room for the 52-character labels, once.
    if (auto it = set.find(key_id("bulk", "zone")); it != set.end()) {
        const auto& zones = cfg.bulk.zones;
        for (size_t i = 0; i < zones.size(); ++i) {
            std::string why = bulk::check_optout_zone_name(zones[i]);
            if (!why.empty()) problem(it->second, "bulk", "zone", why);
            if (std::find(zones.begin(), zones.begin() + long(i), zones[i]) != zones.begin() + long(i))
                problem(it->second, "bulk", "zone", zones[i] + " is listed twice");
        }
    }
}

}  // namespace regmilter::config
