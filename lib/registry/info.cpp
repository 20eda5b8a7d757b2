#include "registry/info.hpp"

#include "util/json.hpp"

namespace regmilter::registry {

std::string class_of(const Entry& e) {
    if (e.status != Status::listed) return {};
    if (e.meaning == Meaning::blocked) return "blocked";
    return e.bulk ? "bulk" : "regular";
}

Info lookup_info(dns::Resolver& dns, const net::Address& ip, const Zone& zone, dns::Deadline deadline) {
    Info i;
    i.entry = lookup(dns, ip, zone, deadline);
    i.klass = class_of(i.entry);
    i.metadata = parse_metadata(i.entry.info);
    return i;
}

void write_info_text(std::ostream& out, const net::Address& ip, const std::vector<Info>& infos) {
    out << "ip: " << ip.unmapped().str() << '\n';
    for (const Info& i : infos) {
        const Entry& e = i.entry;
        out << "registry " << e.name << " (" << e.zone << "): ";
        switch (e.status) {
            case Status::listed:
                out << "listed " << e.code << ' ' << i.klass << '\n';
                break;
            case Status::unlisted:
                out << "not listed\n";
                break;
            case Status::error:
                out << "error: " << e.error << '\n';
                break;
        }
        out << "  query: " << e.query << '\n';
        if (!i.metadata.registered.empty()) out << "  registered: " << i.metadata.registered << '\n';
        if (!i.metadata.updated.empty()) out << "  updated: " << i.metadata.updated << '\n';
        if (!i.metadata.contact.empty()) out << "  contact: " << i.metadata.contact << '\n';
        if (!e.info.empty()) out << "  txt: \"" << e.info << "\"\n";
        if (e.fcrdns_checked)
            out << "  fcrdns: " << (e.fcrdns_ok ? "pass " : "fail ") << e.fcrdns_detail << '\n';
    }
}

void entry_json(util::JsonWriter& w, const Entry& e) {
    w.key("name").value(e.name);
    w.key("zone").value(e.zone);
    w.key("query").value(e.query);
    w.key("status").value(to_string(e.status));
    w.key("code").value(e.code);
    w.key("meaning").value(e.bulk ? "bulk" : util::name_of(e.meaning));
    w.key("info").value(e.info);
    w.key("error").value(e.error);
    if (e.fcrdns_checked) {
        w.key("fcrdns").begin_object();
        w.key("ok").value(e.fcrdns_ok);
        w.key("detail").value(e.fcrdns_detail);
        w.end_object();
    }
}

std::string info_json(const net::Address& ip, const std::vector<Info>& infos) {
    util::JsonWriter w;
    w.begin_object();
    w.key("ip").value(ip.unmapped().str());
    w.key("registry").begin_array();
    for (const Info& i : infos) {
        w.begin_object();
        entry_json(w, i.entry);
        w.key("class").value(i.klass);
        w.key("registered").value(i.metadata.registered);
        w.key("updated").value(i.metadata.updated);
        w.key("contact").value(i.metadata.contact);
        w.key("metadata").begin_object();
        w.key("registered").value(i.metadata.registered);
        w.key("updated").value(i.metadata.updated);
        w.key("contact").value(i.metadata.contact);
        w.end_object();
        w.end_object();
    }
    w.end_array();
    w.end_object();
    return w.str();
}

}  // namespace regmilter::registry
