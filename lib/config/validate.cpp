#include "config/validate.hpp"

#include <algorithm>

#include "bulk/optout.hpp"
#include "state/redis_store.hpp"

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

namespace {

// [greylist] and [state]: a retry window that lets retries pass, a Redis
// address and prefix the store can use.
template <class Problem>
void state_check(const Config& cfg, const KeyLines& set, Problem&& problem) {
    auto line_of = [&](const char* sec, const char* key) -> int {
        auto it = set.find(key_id(sec, key));
        return it == set.end() ? 0 : it->second;
    };
    const greylist::Settings& g = cfg.greylist;
    if (g.retry_window <= g.delay) {
        int l = line_of("greylist", "retry_window");
        problem(l ? l : line_of("greylist", "delay"), "greylist", "retry_window",
                "must be longer than delay (" + std::to_string(g.delay) + "), or no retry could ever pass");
    }
    state::RedisOptions ro;
    std::string error;
    if (!state::parse_redis_address(cfg.state.redis, ro, error))
        problem(line_of("state", "redis"), "state", "redis", error);
    ro.prefix = cfg.state.prefix;
    ro.timeout = std::chrono::milliseconds(cfg.state.timeout_ms);
    for (const auto& p : state::check_redis_options(ro))
        problem(line_of("state", "prefix"), "state", "prefix", p);
}

}  // namespace

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
                problem(
                    l, sec, "listed",
                    "applies to meaning = blocked; this zone has meaning = registered (use unregistered)");
        } else {
            for (const char* k : {"unregistered", "bulk_codes", "require_fcrdns"})
                if (int l = line_of(k))
                    problem(l, sec, k, "applies to meaning = registered; this zone has meaning = blocked");
        }
        if (r.zone.empty()) continue;
        std::string id = r.zone + " " + util::name_of(r.format);
        if (auto it = zone_owner.find(id); it != zone_owner.end())
            problem(line_of("zone"), sec, "zone",
                    "zone " + r.zone + " is already asked by [registry " + it->second + "]");
        else
            zone_owner[id] = r.name;
    }
    state_check(cfg, set, problem);
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
