#include "registry/zone_writer.hpp"

#include <algorithm>
#include <unordered_map>

#include "registry/registry.hpp"

namespace regmilter::registry {

std::string check_zone_name(std::string_view zone, const Forms& forms) {
    std::string why = dns::check_domain(zone);
    if (!why.empty()) return why;
    // Longest owner: 32 nibble labels (64 octets with dots) for reversed IPv6,
    // 39 for dashed IPv6, plus the dot before the zone.
    const size_t longest = forms.reversed ? 64 : 40;
    if (zone.size() + longest > 253)
        return "\"" + std::string(zone) + "\" is too long: its names would pass 253 octets (at most " +
               std::to_string(253 - longest) + " octets for this --format)";
    return {};
}

std::string metadata_txt(const Registration& r) {
    return "registered=" + util::format_date(r.since) + " updated=" + util::format_date(r.updated) +
           " contact=" + r.contact;
}

Metadata parse_metadata(std::string_view txt) {
    Metadata m;
    size_t i = 0;
    while (i < txt.size()) {
        while (i < txt.size() && txt[i] == ' ') ++i;
        size_t b = i;
        while (i < txt.size() && txt[i] != ' ') ++i;
        std::string_view w = txt.substr(b, i - b);
        auto eq = w.find('=');
        if (eq == std::string_view::npos) continue;
        std::string_view key = w.substr(0, eq), value = w.substr(eq + 1);
        if ((key == "registered" || key == "updated") && util::parse_date(value)) {
            (key == "registered" ? m.registered : m.updated) = std::string(value);
        } else if (key == "contact" && !value.empty() && value.size() <= 64) {
            bool good = true;
            for (char c : value)
                good = good && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                                c == '.' || c == '_' || c == '-');
            if (good) m.contact = std::string(value);
        }
    }
    return m;
}

Publication::Publication(const std::vector<Registration>& entries, const Forms& forms) : forms_(forms) {
    std::vector<const Registration*> sorted;
    sorted.reserve(entries.size());
    for (const auto& r : entries) sorted.push_back(&r);
    // By address, IPv4 first: rebuilds of the same data give the same file,
    // and changed data small diffs (IXFR).
    std::sort(sorted.begin(), sorted.end(), [](const Registration* a, const Registration* b) {
        if (a->ip.is_v4() != b->ip.is_v4()) return a->ip.is_v4();
        return a->ip < b->ip;
    });
    items_.reserve(entries.size() + 2);
    auto add = [&](const net::Address& ip, const char* code, std::string txt) {
        Item it{ip, code, std::move(txt), {}, {}};
        if (forms.dashed) it.dashed = query_label(ip, Format::dashed);
        if (forms.reversed) it.reversed = query_label(ip, Format::reversed);
        items_.push_back(std::move(it));
    };
    add(*net::Address::parse("127.0.0.2"), code_regular, test_point_text);
    add(*net::Address::parse("::ffff:7f00:2"), code_regular, test_point_text);
    std::unordered_map<util::Day, std::string> dates;  // format each date once
    auto date = [&](util::Day d) -> const std::string& {
        auto it = dates.find(d);
        if (it == dates.end()) it = dates.emplace(d, util::format_date(d)).first;
        return it->second;
    };
    for (const Registration* r : sorted) {
        std::string txt =
            "registered=" + date(r->since) + " updated=" + date(r->updated) + " contact=" + r->contact;
        add(r->ip, r->server_class == ServerClass::bulk ? code_bulk : code_regular, std::move(txt));
    }
}

void Publication::write_zone(std::ostream& out, const PublishSettings& s) const {
    dns::write_zone_head(out, s.head, s.comments);
    for (bool dashed : {true, false}) {
        if (!(dashed ? forms_.dashed : forms_.reversed)) continue;
        out << (dashed ? "; dashed names\n" : "; reversed names\n");
        for (const Item& it : items_)
            out << (dashed ? it.dashed : it.reversed) << "\tIN\tA\t" << it.code << "\n\tIN\tTXT\t"
                << dns::quote_txt(it.txt) << '\n';
    }
}

void Publication::write_rbldnsd(std::ostream& out, const PublishSettings& s) const {
    dns::write_rbldnsd_head(out, s.head, s.comments);
    // rbldnsd(8): in a TXT template '$' stands for the address; "$$" is a '$'.
    auto txt = [](const std::string& t) {
        if (t.find('$') == std::string::npos) return t;
        std::string o;
        for (char c : t) o += c == '$' ? std::string("$$") : std::string(1, c);
        return o;
    };
    if (forms_.reversed) {
        out << "$DATASET ip4set:reversed-ipv4 @\n";
        for (const Item& it : items_)
            if (it.ip.is_v4()) out << it.ip.str() << " :" << it.code << ':' << txt(it.txt) << '\n';
        out << "$DATASET ip6trie:reversed-ipv6 @\n";
        for (const Item& it : items_)
            if (it.ip.is_v6()) out << it.ip.full(':') << " :" << it.code << ':' << txt(it.txt) << '\n';
    }
    if (forms_.dashed) {
        out << "$DATASET dnset:dashed @\n";
        for (const Item& it : items_) out << it.dashed << " :" << it.code << ':' << txt(it.txt) << '\n';
    }
}

void write_zone(std::ostream& out, const std::vector<Registration>& entries, const PublishSettings& s) {
    Publication(entries, s.forms).write_zone(out, s);
}

void write_rbldnsd(std::ostream& out, const std::vector<Registration>& entries, const PublishSettings& s) {
    Publication(entries, s.forms).write_rbldnsd(out, s);
}

}  // namespace regmilter::registry
