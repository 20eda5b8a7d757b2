#include "bulk/optout.hpp"

#include <openssl/evp.h>

#include <algorithm>

namespace regmilter::bulk {

namespace {

std::string lower(std::string_view s) {
    std::string r(s);
    for (char& c : r)
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    return r;
}

void add_once(std::vector<std::string>& v, std::string s) {
    if (!s.empty() && std::find(v.begin(), v.end(), s) == v.end()) v.push_back(std::move(s));
}

}  // namespace

std::string base32(const uint8_t* data, size_t size) {
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";  // RFC 4648 Table 3
    std::string out;
    out.reserve((size * 8 + 4) / 5);
    uint32_t buffer = 0;
    int bits = 0;
    for (size_t i = 0; i < size; ++i) {
        buffer = (buffer << 8) | data[i];
        bits += 8;
        while (bits >= 5) {
            out += alphabet[(buffer >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0) out += alphabet[(buffer << (5 - bits)) & 31];  // zero-filled, no padding
    return out;
}

std::string optout_label(std::string_view key) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(key.data(), key.size(), digest, &len, EVP_sha256(), nullptr) != 1 || len != 32) return {};
    return base32(digest, len);
}

std::string optout_key(std::string_view rcpt, std::string_view delimiter) {
    std::string w = normalize_keep_local_case(rcpt);
    auto at = w.rfind('@');
    if (w.empty() || at == std::string::npos) return {};
    if (!delimiter.empty()) {
        auto d = w.find_first_of(delimiter);
        if (d != std::string::npos && d > 0 && d < at) w.erase(d, at - d);
    }
    return w;
}

std::vector<std::string> optout_keys(std::string_view rcpt, std::string_view delimiter) {
    std::vector<std::string> keys;
    std::string w = normalize_keep_local_case(rcpt);
    auto at = w.rfind('@');
    if (w.empty() || at == std::string::npos) return keys;
    add_once(keys, w);
    add_once(keys, lower(w));
    std::string folded = optout_key(rcpt, delimiter);
    add_once(keys, folded);
    add_once(keys, lower(folded));
    add_once(keys, w.substr(at));
    return keys;
}

const char* to_string(ZoneStatus s) {
    switch (s) {
        case ZoneStatus::opted_out:
            return "opted-out";
        case ZoneStatus::opted_in:
            return "opted-in";
        case ZoneStatus::none:
            return "none";
        case ZoneStatus::error:
            return "error";
    }
    return "?";
}

ZoneAnswer lookup_zone(dns::Resolver& dns, std::string_view rcpt, std::string_view zone,
                       std::string_view delimiter, dns::Deadline deadline) {
    ZoneAnswer z;
    for (const std::string& key : optout_keys(rcpt, delimiter)) {
        z.query = optout_label(key) + "." + std::string(zone);
        dns::DnsAnswer a = dns.query(z.query, dns::RrType::a, deadline);
        z.ttl = a.ttl;
        if (a.status == dns::DnsStatus::nxdomain || a.status == dns::DnsStatus::nodata) continue;
        z.zone = std::string(zone);
        z.key = key;
        if (a.status != dns::DnsStatus::ok) {
            z.status = ZoneStatus::error;
            z.cause = dns::to_string(a.status);
            z.error = z.cause + (a.detail.empty() ? "" : " (" + a.detail + ")");
            return z;
        }
        bool out = false, in = false;
        std::string other;
        for (const auto& r : a.rdata) {
            if (r == code_opted_out) {
                out = true;
            } else if (r == code_opted_in) {
                in = true;
            } else if (other.empty()) {
                other = r;
            }
        }
        if (out || in) {
            z.status = out ? ZoneStatus::opted_out : ZoneStatus::opted_in;
            z.code = out ? code_opted_out : code_opted_in;
        } else {
            z.status = ZoneStatus::error;
            z.error = z.cause = "answer " + other + " is not 127.0.0.2 (opted out) or 127.0.0.3 (opted in)";
        }
        return z;
    }
    return z;
}

ZoneAnswer lookup_zones(dns::Resolver& dns, std::string_view rcpt, const std::vector<std::string>& zones,
                        std::string_view delimiter, dns::Deadline deadline) {
    ZoneAnswer last;
    for (const auto& zone : zones) {
        ZoneAnswer z = lookup_zone(dns, rcpt, zone, delimiter, deadline);
        if (z.status != ZoneStatus::none) return z;
        last = std::move(z);
    }
    return last;
}

std::string check_optout_zone_name(std::string_view zone) {
    std::string why = dns::check_domain(zone);
    if (!why.empty()) return why;
    if (zone.size() > 253 - 53)
        return "\"" + std::string(zone) + "\" is too long for 52-character labels (at most 200 octets)";
    return {};
}

std::vector<Published> published_labels(const std::vector<Entry>& entries) {
    std::vector<Published> out;
    out.reserve(entries.size() * 2);
    for (const Entry& e : entries) {
        const char* code = e.choice == Choice::reject ? code_opted_out : code_opted_in;
        out.push_back({optout_label(e.written), code});
        if (e.written != e.key) out.push_back({optout_label(e.key), code});
    }
    std::sort(out.begin(), out.end(),
              [](const Published& a, const Published& b) { return a.label < b.label; });
    return out;
}

void write_optout_zone(std::ostream& out, const std::vector<Entry>& entries, const dns::ZoneHead& head,
                       const std::vector<std::string>& comments) {
    dns::write_zone_head(out, head, comments);
    for (const Published& p : published_labels(entries)) out << p.label << "\tIN\tA\t" << p.code << '\n';
}

void write_optout_rbldnsd(std::ostream& out, const std::vector<Entry>& entries, const dns::ZoneHead& head,
                          const std::vector<std::string>& comments) {
    dns::write_rbldnsd_head(out, head, comments);
    const auto labels = published_labels(entries);
    // A line ":A:" sets the A value of the lines after it, with no TXT (rbldnsd(8)).
    for (const char* code : {code_opted_out, code_opted_in}) {
        out << ':' << code << ":\n";
        for (const Published& p : labels)
            if (p.code == code) out << p.label << '\n';
    }
}

}  // namespace regmilter::bulk
