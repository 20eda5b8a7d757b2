#include "config/config.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "config/options.hpp"
#include "config/reader.hpp"
#include "config/validate.hpp"
#include "util/strings.hpp"

namespace regmilter::config {

namespace {

// Sets every option of `section` to its default. A default the table itself
// cannot parse is a programming error (config_test parses each one).
void apply_defaults(Config& cfg, Registry* reg, std::string_view section) {
    Target t{cfg, reg};
    for (const auto& o : options()) {
        if (section != o.section) continue;
        std::string err = o.set(o, t, {o.default_value});
        if (!err.empty())
            throw std::logic_error(std::string("option table: default of [") + o.section + "] " + o.key +
                                   ": " + err);
    }
}

Config make_defaults() {
    Config c;
    for (const auto& kind : section_kinds())
        if (kind != "registry") apply_defaults(c, nullptr, kind);
    return c;
}

bool allowed_registry_name(std::string_view n) {
    if (n.empty()) return false;
    for (char c : n) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '_' || c == '.';
        if (!ok) return false;
    }
    return true;
}

std::string sections_allowed() {
    std::string s;
    for (const auto& k : section_kinds()) s += (s.empty() ? "" : ", ") + k + (k == "registry" ? " NAME" : "");
    return s;
}

std::string keys_of(std::string_view section) {
    std::string s;
    for (const auto& o : options())
        if (section == o.section) s += (s.empty() ? "" : ", ") + std::string(o.key);
    return s;
}

// The second pass: sections and keys of an IniFile into a Config.
class Builder {
public:
    Builder(const IniFile& ini, std::string file) : ini_(ini), file_(std::move(file)) {
        cfg_ = make_defaults();
        cfg_.source = file_;
        problems_ = ini.problems;
    }

    LoadResult build() {
        sections();
        keys();
        // Rate limits group clients as greylisting does.
        cfg_.ratelimit.network_v4 = cfg_.greylist.network_v4;
        cfg_.ratelimit.network_v6 = cfg_.greylist.network_v6;
        cross_check(cfg_, set_, file_, problems_);
        std::stable_sort(problems_.begin(), problems_.end(),
                         [](const util::Problem& a, const util::Problem& b) { return a.line < b.line; });
        LoadResult res;
        if (problems_.empty()) res.value = std::make_shared<const Config>(std::move(cfg_));
        res.problems = std::move(problems_);
        return res;
    }

private:
    void problem(int line, const std::string& section, const std::string& key, const std::string& msg) {
        problems_.push_back({file_, line, located(section, key, msg)});
    }

    // Known kinds, one [registry NAME] per name, each other kind once.
    void sections() {
        std::map<std::string, int> seen;
        for (const auto& s : ini_.sections) {
            if (s.reported) {
                bad_.insert(s.name);
                continue;
            }
            std::string kind = s.name.substr(0, s.name.find(' '));
            std::string rest = s.name.size() > kind.size() ? s.name.substr(kind.size() + 1) : "";
            bool known =
                std::find(section_kinds().begin(), section_kinds().end(), kind) != section_kinds().end();
            if (!known || (kind != "registry" && !rest.empty())) {
                problem(s.line, s.name, "", "unknown section, allowed: " + sections_allowed());
                bad_.insert(s.name);
            } else if (kind == "registry" && !allowed_registry_name(rest)) {
                problem(s.line, s.name, "",
                        rest.empty() ? "a registry section needs a name: [registry NAME]"
                                     : "\"" + rest + "\" is not a registry name (letters, digits, - _ .)");
                bad_.insert(s.name);
            } else if (auto it = seen.find(s.name); it != seen.end()) {
                problem(s.line, s.name, "", "duplicate section, first at line " + std::to_string(it->second));
            } else {
                seen[s.name] = s.line;
                if (kind == "registry") add_registry(rest, s.line);
            }
        }
    }

    void add_registry(const std::string& name, int line) {
        Registry r;
        apply_defaults(cfg_, &r, "registry");
        r.name = name;
        r.line = line;
        registry_index_[name] = cfg_.registries.size();
        cfg_.registries.push_back(std::move(r));
    }

    // Each key: known in its section, set once, parsed by its row.
    void keys() {
        for (const auto& e : ini_.entries) {
            if (e.section.empty()) {
                problem(e.line, "", e.key, "key outside any section");
                continue;
            }
            if (bad_.count(e.section)) continue;
            std::string kind = e.section.substr(0, e.section.find(' '));
            Registry* reg = nullptr;
            if (kind == "registry") {
                auto it = registry_index_.find(e.section.substr(kind.size() + 1));
                if (it == registry_index_.end()) continue;  // a duplicate section, already reported
                reg = &cfg_.registries[it->second];
            }
            const Option* o = find_option(kind, e.key);
            if (!o) {
                problem(e.line, e.section, e.key, "unknown key, allowed: " + keys_of(kind));
                continue;
            }
            std::string id = key_id(e.section, e.key);
            if (auto it = set_.find(id); it != set_.end()) {
                problem(e.line, e.section, e.key, "set twice, first at line " + std::to_string(it->second));
                continue;
            }
            set_[id] = e.line;
            if (!o->is_list() && e.values.size() > 1) {
                problem(e.line, e.section, e.key, "takes one value; continuation lines are only for lists");
                continue;
            }
            Target t{cfg_, reg};
            std::string msg = o->set(*o, t, e.values);
            if (!msg.empty()) problem(e.line, e.section, e.key, msg + ", allowed: " + o->allowed());
        }
    }

    const IniFile& ini_;
    std::string file_;
    Config cfg_;
    std::vector<util::Problem> problems_;
    std::set<std::string> bad_;                     // sections whose keys are skipped
    std::map<std::string, size_t> registry_index_;  // NAME -> index in cfg_.registries
    KeyLines set_;                                  // keys set, with their line
};

}  // namespace

std::shared_ptr<const Config> defaults() {
    static const std::shared_ptr<const Config> d = std::make_shared<const Config>(make_defaults());
    return d;
}

LoadResult load_string(std::string_view text, std::string_view name) {
    std::string file(name);
    IniFile ini = read_ini(text, file);
    return Builder(ini, file).build();
}

LoadResult load_file(const std::string& path) {
    auto fail = [&](const std::string& why) {
        LoadResult r;
        r.problems.push_back({path, 0, why});
        return r;
    };
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return fail(std::string("cannot read: ") + std::strerror(errno));
    if (S_ISDIR(st.st_mode)) return fail("is a directory, not a configuration file");
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail(std::string("cannot read: ") + std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return fail(std::string("cannot read: ") + std::strerror(errno));
    return load_string(ss.str(), path);
}

}  // namespace regmilter::config
