#include "registry/registry.hpp"

#include "util/text.hpp"

namespace regmilter::registry {

std::string query_name(const net::Address& ip, Format format, std::string_view zone) {
    std::string name = query_label(ip.unmapped(), format);
    name += '.';
    name += zone;
    return name;
}

std::string query_label(const net::Address& a, Format format) {
    std::string name;
    if (format == Format::reversed) {
        name = a.reversed();  // RFC 5782 §2.1 (IPv4), §2.4 (IPv6 nibbles)
    } else if (a.is_v4()) {
        name = a.str();
        for (char& c : name)
            if (c == '.') c = '-';
    } else {
        name = a.full('-');
    }
    return name;
}

Classified classify(const dns::DnsAnswer& ans, const Zone& zone) {
    Classified c;
    switch (ans.status) {
        case dns::DnsStatus::nxdomain:
        case dns::DnsStatus::nodata:
            c.status = Status::unlisted;
            return c;
        case dns::DnsStatus::ok:
            break;
        default:
            c.status = Status::error;
            c.error = std::string(dns::to_string(ans.status));
            if (!ans.detail.empty()) c.error += " (" + ans.detail + ")";
            return c;
    }
    static const net::Address loop = *net::Address::parse("127.0.0.0");
    static const net::Address refused = *net::Address::parse("127.255.255.0");
    static const net::Address test_unlisted = *net::Address::parse("127.0.0.1");
    std::string listed_code, bulk_code;
    for (const auto& r : ans.rdata) {
        auto a = net::Address::parse(r);
        std::string err;
        if (!a || !a->is_v4() || !a->in(loop, 8))
            err = "answer " + r + " is outside 127.0.0.0/8";
        else if (a->in(refused, 24))
            err = "answer " + r + ": the registry refused the query (127.255.255.0/24)";
        else if (*a == test_unlisted)
            err = "answer 127.0.0.1 is not a listing (RFC 5782 §5)";
        if (!err.empty()) {
            c.status = Status::error;
            if (!c.error.empty()) c.error += "; ";
            c.error += err;
            continue;
        }
        if (listed_code.empty()) listed_code = r;
        for (const auto& b : zone.bulk_codes)
            if (*a == b && bulk_code.empty()) bulk_code = r;
    }
    if (c.status == Status::error) return c;
    if (listed_code.empty()) {  // ok with no rdata: treat as no listing
        c.status = Status::unlisted;
        return c;
    }
    c.status = Status::listed;
    c.bulk = zone.meaning == Meaning::registered && !bulk_code.empty();
    c.code = c.bulk ? bulk_code : listed_code;
    return c;
}

Fcrdns check_fcrdns(dns::Resolver& dns, const net::Address& ip_in, dns::Deadline deadline) {
    net::Address ip = ip_in.unmapped();
    Fcrdns f;
    std::string rev = ip.reversed() + (ip.is_v4() ? ".in-addr.arpa" : ".ip6.arpa");
    dns::DnsAnswer ptr = dns.query(rev, dns::RrType::ptr, deadline);
    if (dns::is_temporary(ptr.status)) {
        f.result = Fcrdns::Result::temperror;
        f.detail = std::string("PTR ") + dns::to_string(ptr.status);
        return f;
    }
    if (ptr.status != dns::DnsStatus::ok) {
        f.detail = "no PTR record";
        return f;
    }
    bool temporary = false;
    size_t asked = 0;
    for (const auto& name : ptr.rdata) {
        if (++asked > 10) break;  // bounded work, as RFC 7208 §4.6.4 bounds ptr
        dns::DnsAnswer fwd = dns.query(name, ip.is_v4() ? dns::RrType::a : dns::RrType::aaaa, deadline);
        if (dns::is_temporary(fwd.status)) temporary = true;
        for (const auto& r : fwd.rdata) {
            auto a = net::Address::parse(r);
            if (a && a->unmapped() == ip) {
                f.result = Fcrdns::Result::pass;
                f.detail = name;
                return f;
            }
        }
    }
    if (temporary) {
        f.result = Fcrdns::Result::temperror;
        f.detail = "forward lookup failed";
    } else {
        f.detail = "no PTR name resolves back to " + ip.str();
    }
    return f;
}

Entry lookup(dns::Resolver& dns, const net::Address& ip_in, const Zone& zone, dns::Deadline deadline) {
    net::Address ip = ip_in.unmapped();
    Entry e;
    e.name = zone.name;
    e.zone = zone.zone;
    e.meaning = zone.meaning;
    e.query = query_name(ip, zone.format, zone.zone);
    Classified c = classify(dns.query(e.query, dns::RrType::a, deadline), zone);
    e.status = c.status;
    e.code = c.code;
    e.bulk = c.bulk;
    e.error = c.error;
    if (e.status != Status::listed) return e;
    dns::DnsAnswer txt = dns.query(e.query, dns::RrType::txt, deadline);
    // Metadata goes into log lines and headers: bounded, printable ASCII.
    if (txt.status == dns::DnsStatus::ok && !txt.rdata.empty())
        e.info = util::sanitize(txt.rdata.front(), util::TextUse::dns_text);
    if (zone.require_fcrdns && zone.meaning == Meaning::registered) {
        Fcrdns f = check_fcrdns(dns, ip, deadline);
        e.fcrdns_checked = true;
        e.fcrdns_ok = f.result == Fcrdns::Result::pass;
        e.fcrdns_detail = f.detail;
        if (f.result == Fcrdns::Result::temperror) {
            e.status = Status::error;
            e.error = "FCrDNS: " + f.detail;
        }
    }
    return e;
}

std::string expand_text(std::string_view text, const net::Address& ip, const Entry& e) {
    std::string out;
    for (size_t i = 0; i < text.size();) {
        auto sub = text.substr(i);
        if (sub.rfind("%{ip}", 0) == 0) {
            out += ip.unmapped().str();
            i += 5;
        } else if (sub.rfind("%{zone}", 0) == 0) {
            out += e.zone;
            i += 7;
        } else if (sub.rfind("%{info}", 0) == 0) {
            out += e.info;
            i += 7;
        } else {
            out += text[i++];
        }
    }
    return out;
}

}  // namespace regmilter::registry
