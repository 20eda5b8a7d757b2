#include "registry/zone_writer.hpp"

#include <algorithm>

#include "registry/registry.hpp"

namespace regmilter::registry {

namespace {

// One published server (or test point) as the writers need it.
struct Item {
    net::Address ip;
    const char* code;
    std::string txt;
};

// Test points first, then the entries by address (IPv4 before IPv6), so that
// rebuilds of the same data give the same file and small diffs (IXFR).
std::vector<Item> items_of(const std::vector<Registration>& entries) {
    std::vector<Item> items;
    items.reserve(entries.size() + 2);
    items.push_back({*net::Address::parse("127.0.0.2"), code_regular, test_point_text});
    items.push_back({*net::Address::parse("::ffff:7f00:2"), code_regular, test_point_text});
    std::vector<const Registration*> sorted;
    sorted.reserve(entries.size());
    for (const auto& r : entries) sorted.push_back(&r);
    std::sort(sorted.begin(), sorted.end(), [](const Registration* a, const Registration* b) {
        if (a->ip.is_v4() != b->ip.is_v4()) return a->ip.is_v4();
        return a->ip < b->ip;
    });
    for (const Registration* r : sorted)
        items.push_back(
            {r->ip, r->server_class == ServerClass::bulk ? code_bulk : code_regular, metadata_txt(*r)});
    return items;
}

}  // namespace

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
    return "registered=" + config::format_date(r.since) + " updated=" + config::format_date(r.updated) +
           " contact=" + r.contact;
}

void write_zone(std::ostream& out, const std::vector<Registration>& entries, const PublishSettings& s) {
    dns::write_zone_head(out, s.head, s.comments);
    const std::vector<Item> items = items_of(entries);
    std::vector<config::Format> formats;
    if (s.forms.dashed) formats.push_back(config::Format::dashed);
    if (s.forms.reversed) formats.push_back(config::Format::reversed);
    for (config::Format f : formats) {
        out << "; " << config::to_string(f) << " names\n";
        for (const Item& it : items) {
            out << query_label(it.ip, f) << "\tIN\tA\t" << it.code << "\n\tIN\tTXT\t"
                << dns::quote_txt(it.txt) << '\n';
        }
    }
}

void write_rbldnsd(std::ostream& out, const std::vector<Registration>& entries, const PublishSettings& s) {
    dns::write_rbldnsd_head(out, s.head, s.comments);
    const std::vector<Item> items = items_of(entries);
    // rbldnsd(8): in a TXT template '$' stands for the address; "$$" is a '$'.
    auto txt = [](const std::string& t) {
        std::string o;
        for (char c : t) o += c == '$' ? std::string("$$") : std::string(1, c);
        return o;
    };
    if (s.forms.reversed) {
        out << "$DATASET ip4set:reversed-ipv4 @\n";
        for (const Item& it : items)
            if (it.ip.is_v4()) out << it.ip.str() << " :" << it.code << ':' << txt(it.txt) << '\n';
        out << "$DATASET ip6trie:reversed-ipv6 @\n";
        for (const Item& it : items)
            if (it.ip.is_v6()) out << it.ip.full(':') << " :" << it.code << ':' << txt(it.txt) << '\n';
    }
    if (s.forms.dashed) {
        out << "$DATASET dnset:dashed @\n";
        for (const Item& it : items)
            out << query_label(it.ip, config::Format::dashed) << " :" << it.code << ':' << txt(it.txt)
                << '\n';
    }
}

}  // namespace regmilter::registry
