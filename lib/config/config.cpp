#include "config/config.hpp"

#include <ini.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "dns/ldns_resolver.hpp"

namespace regmilter::config {

const char* to_string(Mode m) {
    return m == Mode::enforce ? "enforce" : "observe";
}
const char* to_string(Action a) {
    switch (a) {
        case Action::accept:
            return "accept";
        case Action::tag:
            return "tag";
        case Action::tempfail:
            return "tempfail";
        case Action::reject:
            return "reject";
    }
    return "?";
}
const char* to_string(OnError e) {
    return e == OnError::accept ? "accept" : "tempfail";
}
const char* to_string(Format f) {
    return f == Format::dashed ? "dashed" : "reversed";
}
const char* to_string(Meaning m) {
    return m == Meaning::registered ? "registered" : "blocked";
}
const char* to_string(BulkChoice c) {
    return c == BulkChoice::accept ? "accept" : "reject";
}
const char* to_string(BulkAction a) {
    switch (a) {
        case BulkAction::reject:
            return "reject";
        case BulkAction::discard:
            return "discard";
        case BulkAction::tag:
            return "tag";
    }
    return "?";
}
const char* to_string(Type t) {
    switch (t) {
        case Type::boolean:
            return "boolean";
        case Type::integer:
            return "integer";
        case Type::octal:
            return "octal mode";
        case Type::string:
            return "string";
        case Type::choice:
            return "choice";
        case Type::cidr_list:
            return "list of networks";
        case Type::address_list:
            return "list of addresses";
        case Type::string_list:
            return "list";
        case Type::domain_or_cidr_list:
            return "list of domains and networks";
        case Type::date:
            return "date";
        case Type::path:
            return "path";
    }
    return "?";
}

net::CidrSet default_trusted_networks() {
    net::CidrSet s;
    for (const char* n : {"127.0.0.0/8", "::1/128"}) s.add(*net::Cidr::parse(n).cidr);
    return s;
}

std::string Error::str() const {
    std::string s = file;
    if (line > 0) s += ":" + std::to_string(line);
    s += ": ";
    if (!section.empty()) {
        s += "[" + section + "]";
        s += key.empty() ? ": " : " " + key + ": ";
    } else if (!key.empty()) {
        s += key + ": ";
    }
    return s + message;
}

// Howard Hinnant's days_from_civil (public-domain algorithm).
static Day days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = unsigned(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + int64_t(doe) - 719468;
}

std::optional<Day> parse_date(std::string_view t) {
    if (t.size() != 10 || t[4] != '-' || t[7] != '-') return std::nullopt;
    for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9})
        if (t[i] < '0' || t[i] > '9') return std::nullopt;
    auto num = [&](size_t pos, size_t n) {
        int v = 0;
        for (size_t i = pos; i < pos + n; ++i) v = v * 10 + (t[i] - '0');
        return v;
    };
    int y = num(0, 4), m = num(5, 2), d = num(8, 2);
    if (y < 1970 || m < 1 || m > 12 || d < 1) return std::nullopt;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    int max = mdays[m - 1] + (m == 2 && leap ? 1 : 0);
    if (d > max) return std::nullopt;
    return days_from_civil(y, unsigned(m), unsigned(d));
}

std::string format_date(Day z) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = unsigned(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = int64_t(yoe) + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u", static_cast<long long>(y), m, d);
    return buf;
}

namespace {

// ---- value parsers: each returns an error message, empty on success ----

std::vector<std::string> split_words(const std::vector<std::string>& lines) {
    std::vector<std::string> out;
    for (const auto& l : lines) {
        std::string cur;
        for (char c : l) {
            if (c == ' ' || c == '\t' || c == ',') {
                if (!cur.empty()) out.push_back(std::move(cur));
                cur.clear();
            } else {
                cur += c;
            }
        }
        if (!cur.empty()) out.push_back(std::move(cur));
    }
    return out;
}

std::string quoted(std::string_view v) {
    return "\"" + std::string(v) + "\"";
}

std::string lower(std::string_view s) {
    std::string r(s);
    for (char& c : r)
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    return r;
}

// A DNS name as written in a config: labels of letters, digits, '-' and '_',
// 1..63 octets each, 253 octets at most, no trailing dot needed.
bool valid_domain(std::string_view d) {
    if (!d.empty() && d.back() == '.') d.remove_suffix(1);
    if (d.empty() || d.size() > 253) return false;
    size_t label = 0;
    for (char c : d) {
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '_';
        if (!ok || ++label > 63) return false;
    }
    return label > 0;
}

struct Target {
    Config& cfg;
    Registry* reg;  // set for [registry NAME] options
};

using Setter = std::function<std::string(Target&, const std::vector<std::string>& lines)>;

struct Def {
    Option opt;
    Setter set;
    bool list;  // continuation lines allowed
};

std::string single(const std::vector<std::string>& lines, std::string& out) {
    if (lines.size() != 1) return "takes one value; continuation lines are only for lists";
    out = lines[0];
    return {};
}

template <class F>
Setter scalar(F f) {
    return [f](Target& t, const std::vector<std::string>& lines) -> std::string {
        std::string v;
        if (auto e = single(lines, v); !e.empty()) return e;
        return f(t, v);
    };
}

std::string parse_bool(const std::string& v, bool& out) {
    if (v == "yes")
        out = true;
    else if (v == "no")
        out = false;
    else
        return quoted(v) + " is not yes or no";
    return {};
}

std::string parse_int(const std::string& v, int lo, int hi, int& out) {
    if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos)
        return quoted(v) + " is not a whole number";
    long n = std::stol(v);
    if (n < lo || n > hi) return v + " is out of range";
    out = int(n);
    return {};
}

template <class E>
std::string parse_choice(const std::string& v, std::initializer_list<std::pair<const char*, E>> choices,
                         E& out) {
    for (const auto& c : choices)
        if (v == c.first) {
            out = c.second;
            return {};
        }
    return quoted(v) + " is not a valid choice";
}

#define ACTIONS                                                                             \
    {                                                                                       \
        {"accept", Action::accept}, {"tag", Action::tag}, {"tempfail", Action::tempfail}, { \
            "reject", Action::reject                                                        \
        }                                                                                   \
    }

Setter action_of(Action Spf::*field) {
    return scalar([field](Target& t, const std::string& v) {
        return parse_choice<Action>(v, ACTIONS, t.cfg.spf.*field);
    });
}

Setter cidrs_into(std::function<net::CidrSet&(Target&)> where) {
    return [where](Target& t, const std::vector<std::string>& lines) -> std::string {
        net::CidrSet set;
        std::string errs;
        for (const auto& w : split_words(lines)) {
            auto p = net::Cidr::parse(w);
            if (!p.cidr) {
                if (!errs.empty()) errs += "; ";
                errs += p.error;
            } else {
                set.add(*p.cidr);
            }
        }
        if (!errs.empty()) return errs;
        where(t) = std::move(set);
        return {};
    };
}

// A socket as libmilter spells it: unix:PATH, local:PATH, inet:PORT[@HOST],
// inet6:PORT[@HOST], or an absolute PATH.
std::string check_socket(const std::string& v) {
    auto port_ok = [](std::string_view s) {
        auto at = s.find('@');
        std::string_view port = s.substr(0, at);
        if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos)
            return false;
        long p = std::stol(std::string(port));
        return p >= 1 && p <= 65535 && (at == std::string_view::npos || at + 1 < s.size());
    };
    std::string_view s = v;
    if (s.rfind("unix:", 0) == 0 || s.rfind("local:", 0) == 0) {
        auto path = s.substr(s.find(':') + 1);
        if (!path.empty() && path[0] == '/') return {};
        return quoted(v) + " needs an absolute path after \"" + std::string(s.substr(0, s.find(':') + 1)) +
               "\"";
    }
    if (s.rfind("inet:", 0) == 0 || s.rfind("inet6:", 0) == 0) {
        if (port_ok(s.substr(s.find(':') + 1))) return {};
        return quoted(v) + " needs PORT[@HOST] with PORT 1..65535 (e.g. inet:8891@127.0.0.1)";
    }
    if (!s.empty() && s[0] == '/') return {};
    return quoted(v) + " is not a milter socket";
}

const std::vector<Def>& defs() {
    static const std::vector<Def> table = [] {
        std::vector<Def> d;
        auto add = [&](Option o, Setter s, bool list = false) { d.push_back(Def{o, std::move(s), list}); };
        const char* actions = "accept|tag|tempfail|reject";

        // [milter]
        add({"milter", "socket", Type::string, "unix:/var/spool/postfix/regmilter/regmilter.sock",
             "unix:PATH|local:PATH|inet:PORT@HOST|inet6:PORT@HOST",
             "Where the milter listens; regmilter -p overrides it."},
            scalar([](Target& t, const std::string& v) {
                auto e = check_socket(v);
                if (e.empty()) t.cfg.milter.socket = v;
                return e;
            }));
        add({"milter", "socket_mode", Type::octal, "0660", "0000..0777",
             "File mode of a unix socket; put the MTA's user in the socket's group."},
            scalar([](Target& t, const std::string& v) -> std::string {
                if (v.empty() || v.size() > 4 || v.find_first_not_of("01234567") != std::string::npos)
                    return quoted(v) + " is not an octal mode";
                t.cfg.milter.socket_mode = unsigned(std::stoul(v, nullptr, 8));
                return {};
            }));
        add({"milter", "user", Type::string, "regmilter", "a user name",
             "User to run as after opening the socket, when started as root; owns the unix socket."},
            scalar([](Target& t, const std::string& v) -> std::string {
                if (v.empty() || v.size() > 32 || v.find_first_of(" \t:/") != std::string::npos)
                    return quoted(v) + " is not a user name";
                t.cfg.milter.user = v;
                return {};
            }));
        add({"milter", "pid_file", Type::path, "/run/regmilter/regmilter.pid",
             "an absolute path, or empty for none", "Process id file written after start."},
            scalar([](Target& t, const std::string& v) -> std::string {
                if (!v.empty() && v[0] != '/') return quoted(v) + " is not an absolute path";
                t.cfg.milter.pid_file = v;
                return {};
            }));
        add({"milter", "mode", Type::choice, "enforce", "enforce|observe",
             "observe computes and logs every verdict, adds X-Regmilter: would ... headers, refuses "
             "nothing."},
            scalar([](Target& t, const std::string& v) {
                return parse_choice<Mode>(v, {{"enforce", Mode::enforce}, {"observe", Mode::observe}},
                                          t.cfg.milter.mode);
            }));
        add({"milter", "authserv_id", Type::string, "", "a host name; empty: this host's name",
             "The authserv-id of Authentication-Results (RFC 8601 §2.5); headers already claiming it are "
             "removed."},
            scalar([](Target& t, const std::string& v) -> std::string {
                if (!v.empty() && !valid_domain(v)) return quoted(v) + " is not a host name";
                t.cfg.milter.authserv_id = lower(v);
                return {};
            }));
        add({"milter", "on_internal_error", Type::choice, "tempfail", "tempfail|accept",
             "Answer when regmilter itself fails: tempfail is 451 4.3.0."},
            scalar([](Target& t, const std::string& v) {
                return parse_choice<OnInternalError>(
                    v, {{"tempfail", OnInternalError::tempfail}, {"accept", OnInternalError::accept}},
                    t.cfg.milter.on_internal_error);
            }));

        // [resolver]
        add(
            {"resolver", "nameservers", Type::string_list, "",
             "HOST[:PORT] ... (IP addresses); empty: /etc/resolv.conf", "Recursive nameservers to ask."},
            [](Target& t, const std::vector<std::string>& lines) -> std::string {
                std::vector<std::string> out;
                std::string errs;
                for (const auto& w : split_words(lines)) {
                    std::string err;
                    if (!dns::parse_nameserver(w, err)) {
                        if (!errs.empty()) errs += "; ";
                        errs += err;
                    }
                    out.push_back(w);
                }
                if (!errs.empty()) return errs;
                t.cfg.resolver.nameservers = std::move(out);
                return {};
            },
            true);
        add({"resolver", "timeout_ms", Type::integer, "2000", "100..30000",
             "Milliseconds to wait for one answer."},
            scalar([](Target& t, const std::string& v) {
                return parse_int(v, 100, 30000, t.cfg.resolver.timeout_ms);
            }));
        add({"resolver", "retries", Type::integer, "2", "0..10", "Further tries after a timeout."},
            scalar(
                [](Target& t, const std::string& v) { return parse_int(v, 0, 10, t.cfg.resolver.retries); }));
        add({"resolver", "cache_size", Type::integer, "10000", "0..10000000",
             "Answers kept in the shared cache (positive and negative); 0 disables it."},
            scalar([](Target& t, const std::string& v) {
                return parse_int(v, 0, 10000000, t.cfg.resolver.cache_size);
            }));
        add({"resolver", "stage_timeout_ms", Type::integer, "10000", "1000..25000",
             "Bound for all DNS of one SMTP stage, below the MTA's milter timeouts (Postfix: 30 s)."},
            scalar([](Target& t, const std::string& v) {
                return parse_int(v, 1000, 25000, t.cfg.resolver.stage_timeout_ms);
            }));

        // [trust]
        add({"trust", "networks", Type::cidr_list, "127.0.0.0/8 ::1/128", "CIDR ...; empty trusts no network",
             "Clients in these networks skip the registry and SPF checks."},
            cidrs_into([](Target& t) -> net::CidrSet& { return t.cfg.trust.networks; }), true);
        add({"trust", "authenticated", Type::boolean, "yes", "yes|no",
             "SMTP-authenticated sessions ({auth_authen} set) skip the registry and SPF checks."},
            scalar([](Target& t, const std::string& v) { return parse_bool(v, t.cfg.trust.authenticated); }));
        add(
            {"trust", "tls_issuers", Type::string_list, "",
             "one issuer per line, exactly as {cert_issuer} shows it",
             "Verified TLS client certificates ({verify} = OK) from these issuers skip the checks."},
            [](Target& t, const std::vector<std::string>& lines) -> std::string {
                std::vector<std::string> out;
                for (const auto& l : lines)
                    if (!l.empty()) out.push_back(l);
                t.cfg.trust.tls_issuers = std::move(out);
                return {};
            },
            true);
        add({"trust", "unknown_client", Type::choice, "trust", "trust|accept",
             "A client without an IP address (unix socket, unknown): trust skips registry and SPF; "
             "accept passes the whole connection unexamined."},
            scalar([](Target& t, const std::string& v) {
                return parse_choice<UnknownClient>(
                    v, {{"trust", UnknownClient::trust}, {"accept", UnknownClient::accept}},
                    t.cfg.trust.unknown_client);
            }));

        // [registry NAME]
        add({"registry", "zone", Type::string, "", "a DNS zone (required)", "The registry's zone."},
            scalar([](Target& t, const std::string& v) -> std::string {
                if (!valid_domain(v)) return quoted(v) + " is not a DNS zone name";
                std::string z = lower(v);
                if (z.back() == '.') z.pop_back();
                t.reg->zone = z;
                return {};
            }));
        add({"registry", "format", Type::choice, "dashed", "dashed|reversed",
             "dashed: 192-0-2-36.ZONE; reversed: 36.2.0.192.ZONE (RFC 5782)."},
            scalar([](Target& t, const std::string& v) {
                return parse_choice<Format>(v, {{"dashed", Format::dashed}, {"reversed", Format::reversed}},
                                            t.reg->format);
            }));
        add({"registry", "meaning", Type::choice, "registered", "registered|blocked",
             "registered: an allow-list (unlisted = unregistered); blocked: a block-list."},
            scalar([](Target& t, const std::string& v) {
                return parse_choice<Meaning>(
                    v, {{"registered", Meaning::registered}, {"blocked", Meaning::blocked}}, t.reg->meaning);
            }));
        add({"registry", "unregistered", Type::choice, "tag", actions,
             "Action for a server not in a meaning = registered zone."},
            scalar([](Target& t, const std::string& v) {
                return parse_choice<Action>(v, ACTIONS, t.reg->unregistered);
            }));
        add({"registry", "listed", Type::choice, "reject", actions,
             "Action for a server in a meaning = blocked zone."},
            scalar([](Target& t, const std::string& v) {
                return parse_choice<Action>(v, ACTIONS, t.reg->listed);
            }));
        add({"registry", "enforce_after", Type::date, "", "YYYY-MM-DD; empty: always",
             "Before 00:00 UTC of this date, reject and tempfail of this zone become tag."},
            scalar([](Target& t, const std::string& v) -> std::string {
                if (v.empty()) {
                    t.reg->enforce_after.reset();
                    return {};
                }
                auto d = parse_date(v);
                if (!d) return quoted(v) + " is not a date";
                t.reg->enforce_after = *d;
                return {};
            }));
        add({"registry", "on_error", Type::choice, "accept", "accept|tempfail",
             "When the zone cannot be asked (timeout, SERVFAIL, error answers): tempfail is 451 4.4.3."},
            scalar([](Target& t, const std::string& v) {
                return parse_choice<OnError>(
                    v, {{"accept", OnError::accept}, {"tempfail", OnError::tempfail}}, t.reg->on_error);
            }));
        add({"registry", "reject_text", Type::string, "", "text with %{ip} %{zone} %{info}; empty: default",
             "Reply text of this zone's refusals, also appended to its X-Regmilter tag."},
            scalar([](Target& t, const std::string& v) -> std::string {
                for (char c : v)
                    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
                        return "control characters in text";
                t.reg->reject_text = v;
                return {};
            }));
        add(
            {"registry", "bulk_codes", Type::address_list, "127.0.0.3", "addresses in 127.0.0.0/8 ...",
             "Answers that mean \"registered, declared bulk sender\"."},
            [](Target& t, const std::vector<std::string>& lines) -> std::string {
                std::vector<net::Address> out;
                std::string errs;
                auto add_err = [&](const std::string& e) { errs += (errs.empty() ? "" : "; ") + e; };
                for (const auto& w : split_words(lines)) {
                    auto a = net::Address::parse(w);
                    if (!a || !a->is_v4())
                        add_err(quoted(w) + " is not an IPv4 address");
                    else if (!a->in(*net::Address::parse("127.0.0.0"), 8))
                        add_err(w + " is outside 127.0.0.0/8");
                    else if (w == "127.0.0.1" || a->in(*net::Address::parse("127.255.255.0"), 24))
                        add_err(w + " is an error answer (RFC 5782 §2.3), never a listing");
                    else
                        out.push_back(*a);
                }
                if (!errs.empty()) return errs;
                t.reg->bulk_codes = std::move(out);
                return {};
            },
            true);
        add({"registry", "require_fcrdns", Type::boolean, "no", "yes|no",
             "A listed server also needs forward-confirmed reverse DNS to count as registered."},
            scalar([](Target& t, const std::string& v) { return parse_bool(v, t.reg->require_fcrdns); }));

        // [spf]
        add({"spf", "pass", Type::choice, "accept", actions, "Action for SPF pass."}, action_of(&Spf::pass));
        add({"spf", "fail", Type::choice, "reject", actions, "Action for SPF fail (550 5.7.23)."},
            action_of(&Spf::fail));
        add({"spf", "softfail", Type::choice, "tag", actions, "Action for SPF softfail."},
            action_of(&Spf::softfail));
        add({"spf", "neutral", Type::choice, "accept", actions, "Action for SPF neutral."},
            action_of(&Spf::neutral));
        add({"spf", "none", Type::choice, "accept", actions, "Action when there is no SPF record."},
            action_of(&Spf::none));
        add({"spf", "permerror", Type::choice, "tag", actions, "Action for SPF permerror (550 5.7.24)."},
            action_of(&Spf::permerror));
        add({"spf", "temperror", Type::choice, "tempfail", actions,
             "Action for SPF temperror (451 4.7.24); reject is served as a tempfail."},
            action_of(&Spf::temperror));
        add({"spf", "check_helo", Type::boolean, "yes", "yes|no",
             "Also check the HELO identity; a HELO fail acts like a MAIL FROM fail (RFC 7208 §2.3)."},
            scalar([](Target& t, const std::string& v) { return parse_bool(v, t.cfg.spf.check_helo); }));
        add({"spf", "headers", Type::choice, "authentication-results",
             "authentication-results|received-spf|both|none", "Which SPF result headers to add."},
            scalar([](Target& t, const std::string& v) {
                return parse_choice<SpfHeaders>(
                    v,
                    {{"authentication-results", SpfHeaders::authentication_results},
                     {"received-spf", SpfHeaders::received_spf},
                     {"both", SpfHeaders::both},
                     {"none", SpfHeaders::none}},
                    t.cfg.spf.headers);
            }));
        add({"spf", "void_lookups", Type::integer, "2", "0..20",
             "Void DNS lookups allowed before permerror (RFC 7208 §4.6.4)."},
            scalar(
                [](Target& t, const std::string& v) { return parse_int(v, 0, 20, t.cfg.spf.void_lookups); }));
        add({"spf", "trusted_forwarders", Type::cidr_list, "", "CIDR ...",
             "Forwarders and list servers whose mail skips SPF (registry checks still apply)."},
            cidrs_into([](Target& t) -> net::CidrSet& { return t.cfg.spf.trusted_forwarders; }), true);
        add(
            {"spf", "trusted_forwarder_helos", Type::string_list, "", "host names ...",
             "Forwarders known by HELO name: SPF is skipped when the HELO is one of these and "
             "its A/AAAA records include the client address."},
            [](Target& t, const std::vector<std::string>& lines) -> std::string {
                std::vector<std::string> out;
                std::string errs;
                for (const auto& w : split_words(lines)) {
                    if (!valid_domain(w)) {
                        errs += (errs.empty() ? "" : "; ") + quoted(w) + " is not a host name";
                        continue;
                    }
                    std::string d = lower(w);
                    if (d.back() == '.') d.pop_back();
                    out.push_back(d);
                }
                if (!errs.empty()) return errs;
                t.cfg.spf.trusted_forwarder_helos = std::move(out);
                return {};
            },
            true);

        // [bulk]
        add({"bulk", "table", Type::path, "", "an absolute path; empty: no table",
             "The opt-out table; reloaded when the file changes."},
            scalar([](Target& t, const std::string& v) -> std::string {
                if (!v.empty() && v[0] != '/') return quoted(v) + " is not an absolute path";
                if (!v.empty() && access(v.c_str(), R_OK) != 0)
                    return "cannot read " + quoted(v) + ": " + std::strerror(errno);
                t.cfg.bulk.table = v;
                return {};
            }));
        add({"bulk", "default", Type::choice, "accept", "accept|reject",
             "Choice of a recipient the table does not name: accept = receives bulk."},
            scalar([](Target& t, const std::string& v) {
                return parse_choice<BulkChoice>(
                    v, {{"accept", BulkChoice::accept}, {"reject", BulkChoice::reject}},
                    t.cfg.bulk.default_choice);
            }));
        add(
            {"bulk", "senders", Type::domain_or_cidr_list, "", "DOMAIN|CIDR ...",
             "Known bulk senders: MAIL FROM domains (and their subdomains) and client networks."},
            [](Target& t, const std::vector<std::string>& lines) -> std::string {
                std::vector<std::string> domains;
                net::CidrSet nets;
                std::string errs;
                auto add_err = [&](const std::string& e) { errs += (errs.empty() ? "" : "; ") + e; };
                for (const auto& w : split_words(lines)) {
                    bool ipish = w.find(':') != std::string::npos || w.find('/') != std::string::npos ||
                                 w.find_first_not_of("0123456789.") == std::string::npos;
                    if (ipish) {
                        auto p = net::Cidr::parse(w);
                        if (p.cidr)
                            nets.add(*p.cidr);
                        else
                            add_err(p.error);
                    } else if (valid_domain(w)) {
                        std::string dom = lower(w);
                        if (dom.back() == '.') dom.pop_back();
                        domains.push_back(dom);
                    } else {
                        add_err(quoted(w) + " is neither a domain nor a network");
                    }
                }
                if (!errs.empty()) return errs;
                t.cfg.bulk.sender_domains = std::move(domains);
                t.cfg.bulk.sender_networks = std::move(nets);
                return {};
            },
            true);
        add({"bulk", "header_signals", Type::boolean, "yes", "yes|no",
             "Treat Precedence: bulk|list|junk, List-Id and List-Unsubscribe as bulk."},
            scalar([](Target& t, const std::string& v) { return parse_bool(v, t.cfg.bulk.header_signals); }));
        add({"bulk", "action", Type::choice, "reject", "reject|discard|tag",
             "What an opted-out recipient of bulk mail gets."},
            scalar([](Target& t, const std::string& v) {
                return parse_choice<BulkAction>(v,
                                                {{"reject", BulkAction::reject},
                                                 {"discard", BulkAction::discard},
                                                 {"tag", BulkAction::tag}},
                                                t.cfg.bulk.action);
            }));
        add({"bulk", "recipient_delimiter", Type::string, "+",
             "punctuation characters, each a delimiter; empty: none",
             "Separates user from detail (user+detail), as Postfix's recipient_delimiter."},
            scalar([](Target& t, const std::string& v) -> std::string {
                if (v.size() > 8) return quoted(v) + " is longer than 8 characters";
                for (char c : v)
                    if (!std::ispunct(static_cast<unsigned char>(c)) || c == '@' || c == '"')
                        return quoted(v) + " may hold only punctuation other than @ and \"";
                t.cfg.bulk.recipient_delimiter = v;
                return {};
            }));
        return d;
    }();
    return table;
}

const Def* find_def(std::string_view section, std::string_view key) {
    for (const auto& d : defs())
        if (section == d.opt.section && key == d.opt.key) return &d;
    return nullptr;
}

std::string keys_of(std::string_view section) {
    std::string s;
    for (const auto& d : defs())
        if (section == d.opt.section) s += (s.empty() ? "" : ", ") + std::string(d.opt.key);
    return s;
}

void apply_defaults(Config& cfg, Registry* reg, const char* section) {
    Target t{cfg, reg};
    for (const auto& d : defs()) {
        if (std::strcmp(d.opt.section, section) != 0) continue;
        if (reg && std::strcmp(d.opt.key, "zone") == 0) continue;  // required: no default
        std::string err = d.set(t, {d.opt.default_value});
        (void)err;  // every default is valid: config_test checks each one
    }
}

Config make_defaults() {
    Config c;
    for (const char* s : {"milter", "resolver", "trust", "spf", "bulk"}) apply_defaults(c, nullptr, s);
    return c;
}

// ---- parsing ----

struct Line {
    int no;
    std::string text;
};

struct Entry {
    std::string section;  // as inih gives it
    std::string key;
    std::vector<std::string> values;  // first line + continuation lines
    int line = 0;
};

struct SectionHead {
    std::string name;
    int line;
};

struct ParseState {
    std::vector<Line> lines;
    size_t next = 0;
    int current = 0;            // line number last handed to inih
    bool continuation = false;  // that line continues the previous key
    bool have_key = false;      // a key was seen (continuations are possible)
    std::vector<Entry> entries;
    std::vector<SectionHead> sections;
    std::vector<Error> errors;
    std::string file;
};

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r';
}

std::string trim(std::string_view s) {
    size_t b = 0, e = s.size();
    while (b < e && is_space(s[b])) ++b;
    while (e > b && is_space(s[e - 1])) --e;
    return std::string(s.substr(b, e - b));
}

// Section text as compared: trimmed, inner blanks collapsed to one space.
std::string norm_section(std::string_view s) {
    std::string out;
    bool space = false;
    for (char c : trim(s)) {
        if (is_space(c)) {
            space = true;
            continue;
        }
        if (space) out += ' ';
        space = false;
        out += c;
    }
    return out;
}

// fgets-style reader for ini_parse_stream: hands inih one line at a time so
// the handler knows the line number, and classifies lines inih would only
// count as "an error somewhere".
char* reader(char* str, int num, void* stream) {
    auto* st = static_cast<ParseState*>(stream);
    if (st->next >= st->lines.size()) return nullptr;
    const Line& l = st->lines[st->next++];
    st->current = l.no;
    st->continuation = false;
    std::string text = l.text;
    std::string t = trim(text);
    bool blank = t.empty() || t[0] == '#' || t[0] == ';';
    if (blank && size_t(num) < text.size() + 2) {
        text.clear();
    } else if (!blank && size_t(num) < text.size() + 2) {
        st->errors.push_back({st->file, l.no, "", "",
                              "line is longer than " + std::to_string(num - 2) +
                                  " characters; continue a long list on indented lines"});
        text.clear();
        blank = true;
    } else if (!blank && !text.empty() && is_space(text[0]) && st->have_key) {
        st->continuation = true;
    } else if (!blank && t[0] == '[') {
        auto close = t.find(']');
        if (close == std::string::npos) {
            st->errors.push_back({st->file, l.no, "", "", "section header without ']'"});
            text.clear();
        } else {
            st->sections.push_back({norm_section(std::string_view(t).substr(1, close - 1)), l.no});
            st->have_key = false;
        }
    } else if (!blank && t.find('=') == std::string::npos && t.find(':') == std::string::npos) {
        st->errors.push_back({st->file, l.no, st->sections.empty() ? "" : st->sections.back().name, "",
                              quoted(t) + " is not a `key = value` line"});
        text.clear();
    }
    std::memcpy(str, text.data(), text.size());
    str[text.size()] = '\n';
    str[text.size() + 1] = '\0';
    return str;
}

int handler(void* user, const char* section, const char* name, const char* value) {
    auto* st = static_cast<ParseState*>(user);
    if (st->continuation && !st->entries.empty()) {
        st->entries.back().values.push_back(value);
    } else {
        st->entries.push_back(Entry{norm_section(section), name, {value}, st->current});
        st->have_key = true;
    }
    return 1;
}

bool allowed_registry_name(std::string_view n) {
    if (n.empty() || n.size() > 64) return false;
    for (char c : n)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
    return true;
}

LoadResult parse(std::string_view text, std::string_view name) {
    ParseState st;
    st.file = std::string(name);
    int no = 0;
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t nl = text.find('\n', pos);
        std::string_view l =
            text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        ++no;
        if (l.find('\0') != std::string_view::npos) {
            st.errors.push_back({st.file, no, "", "", "NUL byte in line"});
            l = {};
        }
        if (!(nl == std::string_view::npos && l.empty())) st.lines.push_back({no, std::string(l)});
        if (nl == std::string_view::npos) break;
        pos = nl + 1;
    }
    ini_parse_stream(reader, &st, handler, &st);

    Config cfg = make_defaults();
    cfg.source = st.file;
    std::vector<Error> errs = std::move(st.errors);
    auto err = [&](int line, const std::string& sec, const std::string& key, const std::string& msg) {
        errs.push_back({st.file, line, sec, key, msg});
    };

    // Sections: known kinds, one [registry NAME] per name.
    std::map<std::string, size_t> reg_index;  // NAME -> index in cfg.registries
    std::map<std::string, int> seen_section;
    std::set<std::string> bad_sections;
    for (const auto& s : st.sections) {
        std::string kind = s.name.substr(0, s.name.find_first_of(" \t"));
        std::string rest =
            trim(s.name.size() > kind.size() ? std::string_view(s.name).substr(kind.size()) : "");
        if (kind == "registry") {
            if (!allowed_registry_name(rest)) {
                err(s.line, s.name, "",
                    rest.empty() ? "a registry section needs a name: [registry NAME]"
                                 : quoted(rest) + " is not a registry name (letters, digits, - _ .)");
                bad_sections.insert(s.name);
                continue;
            }
            if (reg_index.count(rest)) {
                err(s.line, s.name, "",
                    "duplicate section, first at line " +
                        std::to_string(cfg.registries[reg_index[rest]].line));
                continue;
            }
            Registry r;
            r.name = rest;
            r.line = s.line;
            apply_defaults(cfg, &r, "registry");
            reg_index[rest] = cfg.registries.size();
            cfg.registries.push_back(std::move(r));
        } else if (kind == "milter" || kind == "resolver" || kind == "trust" || kind == "spf" ||
                   kind == "bulk") {
            if (!rest.empty()) {
                err(s.line, s.name, "",
                    "unknown section, allowed: milter, resolver, trust, registry NAME, spf, bulk");
                bad_sections.insert(s.name);
            } else if (seen_section.count(kind)) {
                err(s.line, s.name, "",
                    "duplicate section, first at line " + std::to_string(seen_section[kind]));
            } else {
                seen_section[kind] = s.line;
            }
        } else {
            err(s.line, s.name, "",
                "unknown section, allowed: milter, resolver, trust, registry NAME, spf, bulk");
            bad_sections.insert(s.name);
        }
    }

    // Keys.
    std::map<std::string, int> seen_key;                    // "section\0key" -> line
    std::map<std::string, std::set<std::string>> reg_keys;  // NAME -> keys set explicitly
    for (const auto& e : st.entries) {
        if (e.section.empty()) {
            err(e.line, "", e.key, "key outside any section");
            continue;
        }
        if (bad_sections.count(e.section)) continue;
        std::string kind = e.section.substr(0, e.section.find_first_of(" \t"));
        Registry* reg = nullptr;
        if (kind == "registry") {
            reg = &cfg.registries[reg_index.at(trim(std::string_view(e.section).substr(kind.size())))];
        }
        const Def* d = find_def(kind, e.key);
        if (!d) {
            err(e.line, e.section, e.key, "unknown key, allowed: " + keys_of(kind));
            continue;
        }
        std::string id = e.section + '\0' + e.key;
        if (auto it = seen_key.find(id); it != seen_key.end()) {
            err(e.line, e.section, e.key, "set twice, first at line " + std::to_string(it->second));
            continue;
        }
        seen_key[id] = e.line;
        if (!d->list && e.values.size() > 1) {
            err(e.line, e.section, e.key, "takes one value; continuation lines are only for lists");
            continue;
        }
        Target t{cfg, reg};
        std::string msg = d->set(t, e.values);
        if (!msg.empty()) {
            err(e.line, e.section, e.key, msg + ", allowed: " + d->opt.allowed);
            continue;
        }
        if (reg) reg_keys[reg->name].insert(e.key);
    }

    // Cross-field checks (after every key is known).
    std::map<std::string, std::string> zone_owner;
    for (const auto& r : cfg.registries) {
        std::string sec = "registry " + r.name;
        auto line_of = [&](const char* key) {
            auto it = seen_key.find(sec + '\0' + key);
            return it == seen_key.end() ? r.line : it->second;
        };
        const auto& keys = reg_keys[r.name];
        if (r.zone.empty() && !seen_key.count(sec + '\0' + "zone")) err(r.line, sec, "zone", "is required");
        if (r.meaning == Meaning::registered) {
            if (keys.count("listed"))
                err(line_of("listed"), sec, "listed",
                    "applies to meaning = blocked; this zone has meaning = registered (use unregistered)");
        } else {
            for (const char* k : {"unregistered", "bulk_codes", "require_fcrdns"})
                if (keys.count(k))
                    err(line_of(k), sec, k,
                        "applies to meaning = registered; this zone has meaning = blocked");
        }
        if (!r.zone.empty()) {
            std::string id = r.zone + " " + to_string(r.format);
            if (auto it = zone_owner.find(id); it != zone_owner.end())
                err(line_of("zone"), sec, "zone",
                    "zone " + r.zone + " is already asked by [registry " + it->second + "]");
            else
                zone_owner[id] = r.name;
        }
    }

    std::stable_sort(errs.begin(), errs.end(),
                     [](const Error& a, const Error& b) { return a.line < b.line; });
    LoadResult res;
    if (errs.empty()) res.config = std::make_shared<const Config>(std::move(cfg));
    res.errors = std::move(errs);
    return res;
}

}  // namespace

std::shared_ptr<const Config> defaults() {
    static const std::shared_ptr<const Config> d = std::make_shared<const Config>(make_defaults());
    return d;
}

LoadResult load_string(std::string_view text, std::string_view name) {
    return parse(text, name);
}

LoadResult load_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        LoadResult r;
        r.errors.push_back({path, 0, "", "", std::string("cannot read: ") + std::strerror(errno)});
        return r;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    return parse(ss.str(), path);
}

const std::vector<Option>& options() {
    static const std::vector<Option> o = [] {
        std::vector<Option> v;
        for (const auto& d : defs()) v.push_back(d.opt);
        return v;
    }();
    return o;
}

}  // namespace regmilter::config
