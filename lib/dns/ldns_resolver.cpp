#include "dns/ldns_resolver.hpp"

#include <ldns/ldns.h>

#include <sys/time.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace regmilter::dns {

namespace {

using Ms = std::chrono::milliseconds;

struct PktFree {
    void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
struct RdfFree {
    void operator()(ldns_rdf* r) const { ldns_rdf_deep_free(r); }
};
using PktPtr = std::unique_ptr<ldns_pkt, PktFree>;
using RdfPtr = std::unique_ptr<ldns_rdf, RdfFree>;

// Presentation-format name (RFC 1035 §5.1: "\." and "\DDD" escapes) to wire
// format. Empty result = not encodable; `why` says why.
std::vector<uint8_t> encode_name(std::string_view name, std::string& why) {
    std::vector<uint8_t> wire;
    if (name == "." || name.empty()) return {0};
    if (name.back() == '.' && !(name.size() >= 2 && name[name.size() - 2] == '\\')) {
        name.remove_suffix(1);
    }
    std::string label;
    auto flush = [&]() -> bool {
        if (label.empty()) {
            why = "empty label";
            return false;
        }
        if (label.size() > 63) {
            why = "label longer than 63 octets";
            return false;
        }
        wire.push_back(uint8_t(label.size()));
        wire.insert(wire.end(), label.begin(), label.end());
        label.clear();
        return true;
    };
    for (size_t i = 0; i < name.size(); ++i) {
        char c = name[i];
        if (c == '\\' && i + 1 < name.size()) {
            if (i + 3 < name.size() && std::isdigit((unsigned char)name[i + 1]) &&
                std::isdigit((unsigned char)name[i + 2]) && std::isdigit((unsigned char)name[i + 3])) {
                int v = (name[i + 1] - '0') * 100 + (name[i + 2] - '0') * 10 + (name[i + 3] - '0');
                if (v > 255) {
                    why = "escape \\DDD above 255";
                    return {};
                }
                label.push_back(char(v));
                i += 3;
            } else {
                label.push_back(name[++i]);
            }
        } else if (c == '.') {
            if (!flush()) return {};
        } else {
            label.push_back(c);
        }
    }
    if (!flush()) return {};
    wire.push_back(0);
    if (wire.size() > 255) {
        why = "name longer than 255 octets";
        return {};
    }
    return wire;
}

// Wire-format name to text without the trailing dot; bytes that would change
// the name's meaning when read back ('.', '\\', controls, space, non-ASCII)
// become RFC 1035 escapes, so a label can never pose as two.
bool decode_name(const ldns_rdf* rdf, std::string& out) {
    out.clear();
    if (!rdf || ldns_rdf_get_type(rdf) != LDNS_RDF_TYPE_DNAME) return false;
    const uint8_t* d = ldns_rdf_data(rdf);
    size_t n = ldns_rdf_size(rdf), i = 0;
    while (i < n) {
        size_t len = d[i++];
        if (len == 0) return i == n;
        if (len > 63 || i + len > n) return false;
        if (!out.empty()) out.push_back('.');
        for (size_t k = 0; k < len; ++k) {
            unsigned char c = d[i + k];
            if (c == '.' || c == '\\') {
                out.push_back('\\');
                out.push_back(char(c));
            } else if (c <= 0x20 || c >= 0x7f) {
                char buf[5];
                snprintf(buf, sizeof buf, "\\%03u", unsigned(c));
                out += buf;
            } else {
                out.push_back(char(c));
            }
        }
        i += len;
    }
    return false;
}

// One RR's rdata in the text form of resolver.hpp; false when it has the wrong shape.
bool rdata_text(const ldns_rr* rr, RrType type, std::string& out) {
    out.clear();
    size_t count = ldns_rr_rd_count(rr);
    auto rdf = [&](size_t i) { return i < count ? ldns_rr_rdf(rr, i) : nullptr; };
    switch (type) {
        case RrType::a: {
            const ldns_rdf* r = rdf(0);
            if (count != 1 || !r || ldns_rdf_size(r) != 4) return false;
            const uint8_t* b = ldns_rdf_data(r);
            out = net::Address::v4(uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 |
                                   uint32_t(b[3]))
                      .str();
            return true;
        }
        case RrType::aaaa: {
            const ldns_rdf* r = rdf(0);
            if (count != 1 || !r || ldns_rdf_size(r) != 16) return false;
            std::array<uint8_t, 16> bytes;
            std::copy_n(ldns_rdf_data(r), 16, bytes.begin());
            out = net::Address::v6(bytes).str();
            return true;
        }
        case RrType::ns:
        case RrType::cname:
        case RrType::ptr:
            return count == 1 && decode_name(rdf(0), out);
        case RrType::mx: {
            const ldns_rdf* pref = rdf(0);
            std::string host;
            if (count != 2 || !pref || ldns_rdf_size(pref) != 2 || !decode_name(rdf(1), host)) return false;
            out = std::to_string(ldns_rdf2native_int16(pref)) + " " + host;
            return true;
        }
        case RrType::txt:
        case RrType::spf:
            // RFC 7208 §3.3: the character-strings are concatenated with nothing between.
            for (size_t i = 0; i < count; ++i) {
                const ldns_rdf* s = rdf(i);
                if (!s || ldns_rdf_size(s) < 1) return false;
                const uint8_t* d = ldns_rdf_data(s);
                if (size_t(d[0]) + 1 != ldns_rdf_size(s)) return false;
                out.append(reinterpret_cast<const char*>(d + 1), d[0]);
            }
            return true;
    }
    return false;
}

const char* rcode_name(ldns_pkt_rcode rc) {
    switch (rc) {
        case LDNS_RCODE_NOERROR:
            return "NOERROR";
        case LDNS_RCODE_FORMERR:
            return "FORMERR";
        case LDNS_RCODE_SERVFAIL:
            return "SERVFAIL";
        case LDNS_RCODE_NXDOMAIN:
            return "NXDOMAIN";
        case LDNS_RCODE_NOTIMPL:
            return "NOTIMP";
        case LDNS_RCODE_REFUSED:
            return "REFUSED";
        default:
            return "other";
    }
}

// ldns reports a packet that does not parse with these statuses.
bool is_parse_error(ldns_status st) {
    switch (st) {
        case LDNS_STATUS_EMPTY_LABEL:
        case LDNS_STATUS_LABEL_OVERFLOW:
        case LDNS_STATUS_DOMAINNAME_OVERFLOW:
        case LDNS_STATUS_DOMAINNAME_UNDERFLOW:
        case LDNS_STATUS_PACKET_OVERFLOW:
        case LDNS_STATUS_INVALID_POINTER:
        case LDNS_STATUS_WIRE_INCOMPLETE_HEADER:
        case LDNS_STATUS_WIRE_INCOMPLETE_QUESTION:
        case LDNS_STATUS_WIRE_INCOMPLETE_ANSWER:
        case LDNS_STATUS_WIRE_INCOMPLETE_AUTHORITY:
        case LDNS_STATUS_WIRE_INCOMPLETE_ADDITIONAL:
        case LDNS_STATUS_WIRE_RDATA_ERR:
        case LDNS_STATUS_RDATA_OVERFLOW:
            return true;
        default:
            return false;
    }
}

// One packet exchange. ldns_resolver_query_status() builds the query itself and
// never compares the reply's message id with it, so a stray or forged reply
// would pass for the answer: build the query here and check the id
// (RFC 5452 §9.1). On a mismatch the reply is freed and `id_mismatch` set.
// Failures of this host rather than of the network or the nameserver.
bool is_local_errno(int e) {
    return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

ldns_status send_query(PktPtr& out, ldns_resolver* res, const ldns_rdf* qname, RrType type,
                       bool& id_mismatch) {
    id_mismatch = false;
    ldns_pkt* q = nullptr;
    ldns_status st =
        ldns_resolver_prepare_query_pkt(&q, res, qname, ldns_rr_type(type), LDNS_RR_CLASS_IN, LDNS_RD);
    PktPtr query(q);
    if (st != LDNS_STATUS_OK || !query) return st;
    ldns_pkt* raw = nullptr;
    st = ldns_resolver_send_pkt(&raw, res, query.get());
    out.reset(raw);
    if (st == LDNS_STATUS_OK && out && ldns_pkt_id(out.get()) != ldns_pkt_id(query.get())) {
        id_mismatch = true;
        out.reset();
    }
    return st;
}

// A reply must be a response (QR) that repeats our one question (RFC 1035 §7.3).
bool answers_question(const ldns_pkt* p, const ldns_rdf* qname, RrType type) {
    const ldns_rr_list* q = ldns_pkt_question(p);
    if (!ldns_pkt_qr(p) || !q || ldns_rr_list_rr_count(q) != 1) return false;
    const ldns_rr* rr = ldns_rr_list_rr(q, 0);
    return ldns_rr_get_type(rr) == ldns_rr_type(type) && ldns_rr_get_class(rr) == LDNS_RR_CLASS_IN &&
           ldns_dname_compare(ldns_rr_owner(rr), qname) == 0;
}

timeval to_timeval(Ms ms) {
    timeval tv;
    tv.tv_sec = time_t(ms.count() / 1000);
    tv.tv_usec = suseconds_t((ms.count() % 1000) * 1000);
    return tv;
}

long long ms_since(Clock::time_point start) {
    return std::chrono::duration_cast<Ms>(Clock::now() - start).count();
}

}  // namespace

void LdnsResolver::LdnsFree::operator()(ldns_struct_resolver* r) const {
    ldns_resolver_deep_free(r);
}

// The outcome of asking the nameservers one question: a packet with rcode
// NOERROR or NXDOMAIN, or a failure status.
struct LdnsResolver::Exchange {
    PktPtr pkt;
    DnsStatus failure = DnsStatus::servfail;
    std::string detail;
    bool local = false;  // this host could not send (EMFILE, ENOBUFS, ...): see DnsAnswer::local
};

LdnsResolver::LdnsResolver(const ResolverOptions& options) : options_(options) {
    if (options_.timeout_ms <= 0) throw std::invalid_argument("timeout_ms must be positive");
    if (options_.retries < 0) throw std::invalid_argument("retries must not be negative");
    nameservers_ = options_.nameservers.empty() ? system_nameservers() : options_.nameservers;
    for (const Nameserver& ns : nameservers_) {
        Handle h(ldns_resolver_new());
        if (!h) throw std::bad_alloc();
        const bool v4 = ns.address.is_v4();
        RdfPtr addr(ldns_rdf_new_frm_data(v4 ? LDNS_RDF_TYPE_A : LDNS_RDF_TYPE_AAAA, ns.address.size(),
                                          ns.address.bytes()));
        if (!addr || ldns_resolver_push_nameserver(h.get(), addr.get()) != LDNS_STATUS_OK) {
            throw std::bad_alloc();
        }
        ldns_resolver_set_port(h.get(), ns.port);
        ldns_resolver_set_recursive(h.get(), true);
        ldns_resolver_set_defnames(h.get(), false);
        ldns_resolver_set_dnsrch(h.get(), false);
        ldns_resolver_set_random(h.get(), false);
        ldns_resolver_set_fail(h.get(), false);
        ldns_resolver_set_igntc(h.get(), false);
        // One packet per call: rounds and per-attempt timeouts are ours, so
        // every attempt can be shrunk to the time left before the Deadline.
        ldns_resolver_set_retry(h.get(), 1);
        ldns_resolver_set_retrans(h.get(), 0);
        // Truncation is handled in exchange(): TCP with a fresh per-attempt
        // budget, so the fallback cannot overrun the Deadline either.
        ldns_resolver_set_fallback(h.get(), false);
        ldns_resolver_set_usevc(h.get(), false);
        ldns_resolver_set_edns_udp_size(h.get(), options_.edns_size);
        handles_.push_back(std::move(h));
    }
}

LdnsResolver::~LdnsResolver() = default;

std::unique_ptr<LdnsResolver> LdnsResolver::create(const ResolverOptions& options, std::string& error) {
    try {
        return std::make_unique<LdnsResolver>(options);
    } catch (const std::invalid_argument& e) {
        error = e.what();
        return nullptr;
    }
}

LdnsResolver::Exchange LdnsResolver::exchange(const std::vector<uint8_t>& wire_name, RrType type,
                                              Deadline deadline) {
    Exchange ex;
    RdfPtr qname(ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, wire_name.size(), wire_name.data()));
    if (!qname) {
        ex.detail = "out of memory";
        return ex;
    }
    const Clock::time_point start = Clock::now();
    std::vector<bool> settled(handles_.size(), false);  // gave a definite failure: not retried
    int attempts = 0, timeouts = 0;
    std::string last_error;
    DnsStatus last_status = DnsStatus::servfail;

    for (int round = 0; round <= options_.retries; ++round) {
        bool tried = false;
        for (size_t i = 0; i < handles_.size(); ++i) {
            if (settled[i]) continue;
            ldns_resolver* res = handles_[i].get();
            const std::string who = nameservers_[i].str();
            bool tcp = false;
            for (;;) {  // at most twice: UDP, then TCP when the UDP answer was truncated
                auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now());
                if (left.count() <= 0) {
                    ex.failure = DnsStatus::timeout;
                    ex.detail = "deadline reached after " + std::to_string(attempts) + " tries, " +
                                std::to_string(ms_since(start)) + " ms";
                    return ex;
                }
                const Ms budget = std::min(left, Ms(options_.timeout_ms));
                ldns_resolver_set_timeout(res, to_timeval(budget));
                // ldns marks a nameserver unreachable after a failure and skips
                // it from then on; each attempt here starts afresh.
                ldns_resolver_set_nameserver_rtt(res, 0, LDNS_RESOLV_RTT_MIN);
                ldns_resolver_set_usevc(res, tcp);
                ++attempts;
                tried = true;
                const Clock::time_point t0 = Clock::now();
                PktPtr pkt;
                bool id_mismatch = false;
                errno = 0;
                ldns_status st = send_query(pkt, res, qname.get(), type, id_mismatch);
                const int sent_errno = errno;
                ldns_resolver_set_usevc(res, false);
                const auto took = std::chrono::duration_cast<Ms>(Clock::now() - t0);
                if (id_mismatch) {
                    settled[i] = true;
                    last_status = DnsStatus::malformed;
                    last_error = "answer from " + who + " has another message id than the query";
                } else if (st == LDNS_STATUS_OK && pkt) {
                    if (ldns_pkt_tc(pkt.get()) && !tcp) {  // RFC 7766 §5: ask again over TCP
                        tcp = true;
                        continue;
                    }
                    ldns_pkt_rcode rc = ldns_pkt_get_rcode(pkt.get());
                    if (rc != LDNS_RCODE_NOERROR && rc != LDNS_RCODE_NXDOMAIN) {
                        settled[i] = true;
                        last_status = DnsStatus::servfail;
                        last_error = std::string("rcode ") + rcode_name(rc) + " from " + who;
                    } else if (!answers_question(pkt.get(), qname.get(), type)) {
                        settled[i] = true;
                        last_status = DnsStatus::malformed;
                        last_error = "answer from " + who + " is not for the question asked";
                    } else {
                        ex.pkt = std::move(pkt);
                        ex.detail = who + (tcp ? " tcp " : " ") + std::to_string(took.count()) + " ms";
                        return ex;
                    }
                } else if (st != LDNS_STATUS_OK && is_local_errno(sent_errno)) {
                    // No socket or buffer here: no other nameserver would do
                    // better now, and the name is not to blame.
                    ex.failure = DnsStatus::servfail;
                    ex.local = true;
                    ex.detail = std::string("local error: ") + std::strerror(sent_errno) + " (" +
                                ldns_get_errorstr_by_id(st) + ")";
                    note_local_error(ex.detail);
                    return ex;
                } else if (is_parse_error(st)) {
                    settled[i] = true;
                    last_status = DnsStatus::malformed;
                    last_error =
                        std::string("unparsable answer from ") + who + ": " + ldns_get_errorstr_by_id(st);
                } else if (took + Ms(20) >= budget) {
                    // ldns gives the same status for a timeout and for an
                    // unreachable server; the time spent tells them apart.
                    ++timeouts;
                    last_error = "no answer from " + who + " in " + std::to_string(budget.count()) + " ms";
                } else {
                    settled[i] = true;
                    last_status = DnsStatus::servfail;
                    last_error = "network error with " + who + ": " + ldns_get_errorstr_by_id(st);
                }
                break;
            }
        }
        if (!tried) break;
    }
    // Only timeouts: timeout. A definite failure from any server: that failure.
    const bool any_settled = std::any_of(settled.begin(), settled.end(), [](bool s) { return s; });
    ex.failure = (!any_settled && timeouts > 0) ? DnsStatus::timeout : last_status;
    ex.detail =
        last_error + " (" + std::to_string(attempts) + " tries, " + std::to_string(ms_since(start)) + " ms)";
    return ex;
}

namespace {

// What one answer packet says about a name, following the CNAMEs it holds.
struct Walk {
    enum class Outcome { found, ended, malformed } outcome = Outcome::ended;
    std::vector<std::string> rdata;  // found: the records of the type asked
    uint32_t ttl = 0;                // the least TTL of the CNAMEs followed (and records found)
    RdfPtr end;                      // ended: the name the chain ended at
    bool followed = false;           // a CNAME was followed
    std::string error;               // malformed: why
};

Walk walk_answer(const ldns_pkt* p, const std::vector<uint8_t>& wire, RrType type, uint32_t ttl) {
    Walk w;
    w.ttl = ttl;
    const ldns_rr_list* answer = ldns_pkt_answer(p);
    const size_t n = answer ? ldns_rr_list_rr_count(answer) : 0;
    w.end.reset(ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, wire.size(), wire.data()));
    if (!w.end) throw std::bad_alloc();
    for (int hop = 0; hop < 16; ++hop) {
        uint32_t found_ttl = w.ttl;
        const ldns_rr* cname = nullptr;
        for (size_t i = 0; i < n; ++i) {
            const ldns_rr* rr = ldns_rr_list_rr(answer, i);
            if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN) continue;
            if (ldns_dname_compare(ldns_rr_owner(rr), w.end.get()) != 0) continue;
            if (ldns_rr_get_type(rr) == ldns_rr_type(type)) {
                std::string text;
                if (!rdata_text(rr, type, text)) {
                    w.outcome = Walk::Outcome::malformed;
                    w.error = std::string("bad ") + to_string(type) + " rdata";
                    return w;
                }
                w.rdata.push_back(std::move(text));
                found_ttl = std::min(found_ttl, ldns_rr_ttl(rr));
            } else if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_CNAME && !cname) {
                cname = rr;
            }
        }
        if (!w.rdata.empty()) {
            w.outcome = Walk::Outcome::found;
            w.ttl = found_ttl;
            return w;
        }
        if (!cname || type == RrType::cname) return w;
        const ldns_rdf* target = ldns_rr_rd_count(cname) == 1 ? ldns_rr_rdf(cname, 0) : nullptr;
        if (!target || ldns_rdf_get_type(target) != LDNS_RDF_TYPE_DNAME) {
            w.outcome = Walk::Outcome::malformed;
            w.error = "bad CNAME rdata";
            return w;
        }
        w.ttl = std::min(w.ttl, ldns_rr_ttl(cname));
        w.end.reset(ldns_rdf_clone(target));
        if (!w.end) throw std::bad_alloc();
        w.followed = true;
    }
    return w;
}

// The SOA of a negative answer's authority section (RFC 2308 §5), or null.
const ldns_rr* negative_soa(const ldns_pkt* p) {
    const ldns_rr_list* auth = ldns_pkt_authority(p);
    for (size_t i = 0; auth && i < ldns_rr_list_rr_count(auth); ++i) {
        const ldns_rr* rr = ldns_rr_list_rr(auth, i);
        if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA && ldns_rr_rd_count(rr) == 7) return rr;
    }
    return nullptr;
}

}  // namespace

DnsAnswer LdnsResolver::query(std::string_view name, RrType type, Deadline deadline) {
    DnsAnswer ans;
    if (Clock::now() >= deadline) {
        ans.status = DnsStatus::timeout;
        ans.detail = "deadline passed before the query";
        return ans;
    }
    std::string why;
    std::vector<uint8_t> wire = encode_name(name, why);
    if (wire.empty()) {
        ans.status = DnsStatus::nxdomain;
        ans.detail = "invalid name: " + why;
        return ans;
    }
    // Counted: the lookups that go upstream (not the two above).
    ans = lookup(std::move(wire), type, deadline);
    if (options_.counters) options_.counters->upstream_answered(ans.status);
    return ans;
}

DnsAnswer LdnsResolver::lookup(std::vector<uint8_t> wire, RrType type, Deadline deadline) {
    DnsAnswer ans;
    uint32_t ttl = std::numeric_limits<uint32_t>::max();
    std::string trail;
    // Each pass asks one name; a CNAME chain that leaves the answer (an
    // authoritative server does not chase out-of-zone targets) is asked again.
    for (int pass = 0; pass < 8; ++pass) {
        Exchange ex = exchange(wire, type, deadline);
        if (!ex.pkt) {
            ans.status = ex.failure;
            ans.detail = trail + ex.detail;
            ans.local = ex.local;
            return ans;
        }
        trail += ex.detail + "; ";
        Walk w = walk_answer(ex.pkt.get(), wire, type, ttl);
        if (w.outcome == Walk::Outcome::malformed) {
            ans.status = DnsStatus::malformed;
            ans.detail = trail + w.error;
            return ans;
        }
        if (w.outcome == Walk::Outcome::found) {
            ans.status = DnsStatus::ok;
            ans.rdata = std::move(w.rdata);
            ans.ttl = w.ttl;
            ans.detail = trail.substr(0, trail.size() - 2);
            return ans;
        }
        ttl = w.ttl;
        // Negative answer (RFC 2308): its TTL is min(SOA TTL, SOA MINIMUM).
        const ldns_rr* soa = negative_soa(ex.pkt.get());
        const bool nxdomain = ldns_pkt_get_rcode(ex.pkt.get()) == LDNS_RCODE_NXDOMAIN;
        if (w.followed && !soa && !nxdomain) {
            // The chain ends at a name this answer says nothing about: ask for it.
            wire.assign(ldns_rdf_data(w.end.get()), ldns_rdf_data(w.end.get()) + ldns_rdf_size(w.end.get()));
            continue;
        }
        ans.status = nxdomain ? DnsStatus::nxdomain : DnsStatus::nodata;
        uint32_t neg = soa ? std::min(ldns_rr_ttl(soa), ldns_rdf2native_int32(ldns_rr_rdf(soa, 6))) : 0;
        ans.ttl = std::min(ttl, neg);
        ans.detail = trail.substr(0, trail.size() - 2);
        return ans;
    }
    ans.status = DnsStatus::servfail;
    ans.detail = trail + "CNAME chain too long";
    return ans;
}

}  // namespace regmilter::dns
