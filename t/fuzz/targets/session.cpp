// Fuzz target: SMTP sessions driven through policy::Session (lib/policy), as
// the milter drives it, over a zone in the in-memory resolver. Input lines
// (the command lines of t/fixtures/milter transcripts are valid input):
//   config N                  the configuration, 0..2 (below); before the first connect
//   > macro X NAME=VALUE...   macros for the next stage (braces optional)
//   > connect HOST ADDRESS|unknown
//   > helo NAME | > mail ARG | > rcpt ARG | > header NAME VALUE
//   > eoh | > eom | > abort | > quit | > quit-nc
//   zone lines (t/fuzz/fuzz.hpp add_zone_line), e.g. 7-0-51-198.reg.example A 127.0.0.2
// Values take the transcripts' escapes (\xHH \t \n \r \\); a NUL ends a
// value, as libmilter's C strings do. Commands reach the session in the
// order libmilter lets them through (Driver below); a stage before any
// connect first connects from 192.0.2.1, as an MTA does.
// Properties of every Reply: no internal error (nothing the session throws
// or catches for valid calls); a refusal has a code and an enhanced code of
// its class (4 for tempfail, 5 for reject); reply text is printable ASCII;
// added headers hold no control byte but tab, under a plain name; only
// recipients the MTA gave are removed; only headers the MTA sent are
// removed; the log is one line; observe mode refuses nothing.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>

#include "bulk/bulk.hpp"
#include "config/config.hpp"
#include "policy/session.hpp"
#include "t/fuzz/fuzz.hpp"
#include "t/support/session_fixture.hpp"

using namespace regmilter;
using namespace regmilter::policy;

namespace {

// 0: enforce, every refusal on; 1: observe with on_internal_error = accept;
// 2: tags and a future enforce_after.
const char* const configs[] = {
    R"([milter]
mode = enforce
[trust]
networks = 192.0.2.0/24 ::ffff:203.0.113.0/120
authenticated = yes
tls_issuers = Example CA
[registry reg]
zone = reg.example
format = dashed
meaning = registered
unregistered = reject
enforce_after = 2026-01-01
on_error = tempfail
reject_text = %{ip} is not registered in %{zone} (%{info})
bulk_codes = 127.0.0.3 127.0.0.4
[registry block]
zone = bl.example
format = reversed
meaning = blocked
listed = reject
on_error = tempfail
[spf]
pass = accept
fail = reject
softfail = reject
neutral = tempfail
none = accept
permerror = reject
temperror = tempfail
check_helo = yes
headers = both
trusted_forwarders = 198.51.100.0/28
trusted_forwarder_helos = fwd.example.net
[bulk]
default = accept
senders = news.example 203.0.113.128/25
header_signals = yes
action = reject
recipient_delimiter = +
)",
    R"([milter]
mode = observe
on_internal_error = accept
authserv_id = mx.example.org
[trust]
networks =
authenticated = no
unknown_client = accept
[registry reg]
zone = reg.example
format = reversed
meaning = registered
unregistered = tempfail
require_fcrdns = yes
on_error = tempfail
[spf]
fail = reject
softfail = tag
permerror = tempfail
check_helo = no
headers = received-spf
void_lookups = 0
[bulk]
default = reject
senders = 198.51.100.0/24
action = discard
recipient_delimiter = +-
)",
    R"([trust]
networks = 127.0.0.0/8
[registry reg]
zone = reg.example
meaning = registered
unregistered = reject
enforce_after = 2099-01-01
[registry block]
zone = bl.example
format = dashed
meaning = blocked
listed = tag
[spf]
fail = tag
softfail = tag
permerror = tag
temperror = tag
headers = none
[bulk]
default = reject
action = tag
recipient_delimiter =
)",
};
constexpr size_t config_count = sizeof configs / sizeof configs[0];

const char bulk_table[] =
    "optout@dest.example reject\n"
    "optin@dest.example accept\n"
    "@optout.example reject\n"
    "Bob@Dest.example reject\n";

struct Shared {
    std::shared_ptr<const config::Config> cfg[config_count];
    std::shared_ptr<const bulk::Table> table;
};

const Shared& shared() {
    static const Shared s = [] {
        Shared s;
        for (size_t i = 0; i < config_count; ++i) {
            auto r = config::load_string(configs[i], "session-fuzz.ini");
            if (!r.value) {
                std::fprintf(stderr, "session fuzz: config %zu: %s\n", i, r.problems.at(0).str().c_str());
                std::abort();
            }
            s.cfg[i] = r.value;
        }
        s.table = bulk::Table::parse(bulk_table, "session-fuzz.table").value;
        return s;
    }();
    return s;
}

std::string unescape(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '\\' && i + 1 < s.size()) {
            char n = s[++i];
            auto hex = [](char h) {
                return h >= '0' && h <= '9'   ? h - '0'
                       : h >= 'a' && h <= 'f' ? h - 'a' + 10
                       : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                              : -1;
            };
            if (n == 'x' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
                c = char(hex(s[i + 1]) * 16 + hex(s[i + 2]));
                i += 2;
            } else {
                c = n == 't' ? '\t' : n == 'n' ? '\n' : n == 'r' ? '\r' : n == '0' ? '\0' : n;
            }
        }
        if (c == '\0') break;  // libmilter hands over C strings
        out += c;
    }
    return out;
}

// No control byte but tab: nothing can end the header early or inject
// another. (8-bit bytes from the envelope pass through ar_value as they came.)
bool header_text(std::string_view s) {
    for (unsigned char c : s)
        if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
    return true;
}

// libmilter's order of commands (libmilter/engine.c, as its state table
// allows them): a command that may not follow the current one makes
// libmilter call the abort callback when a transaction is open, and restart
// from HELO; a command not allowed after HELO either is dropped.
enum State {
    st_conn,
    st_helo,
    st_mail,
    st_rcpt,
    st_data,
    st_hdrs,
    st_eohs,
    st_body,
    st_endm,
    st_quit,
    st_abrt,
    st_unkn,
    st_q_nc,
    st_opts
};
constexpr unsigned bit(State s) {
    return 1u << s;
}
constexpr unsigned next_states[] = {
    /* conn */ bit(st_helo) | bit(st_mail) | bit(st_unkn),
    /* helo */ bit(st_helo) | bit(st_mail) | bit(st_unkn),
    /* mail */ bit(st_rcpt) | bit(st_abrt) | bit(st_unkn),
    /* rcpt */ bit(st_hdrs) | bit(st_eohs) | bit(st_data) | bit(st_body) | bit(st_endm) | bit(st_rcpt) |
        bit(st_abrt) | bit(st_unkn),
    /* data */ bit(st_eohs) | bit(st_hdrs) | bit(st_body) | bit(st_endm) | bit(st_abrt),
    /* hdrs */ bit(st_eohs) | bit(st_hdrs) | bit(st_body) | bit(st_endm) | bit(st_abrt),
    /* eohs */ bit(st_body) | bit(st_endm) | bit(st_abrt),
    /* body */ bit(st_endm) | bit(st_body) | bit(st_abrt),
    /* endm */ bit(st_quit) | bit(st_mail) | bit(st_unkn) | bit(st_q_nc),
    /* quit */ 0,
    /* abrt */ 0,
    /* unkn */ bit(st_helo) | bit(st_mail) | bit(st_rcpt) | bit(st_abrt) | bit(st_quit) | bit(st_q_nc),
    /* q_nc */ bit(st_conn) | bit(st_unkn),
    /* opts */ bit(st_conn) | bit(st_unkn),
};
bool in_mail(State s) {
    return s >= st_mail && s < st_endm;
}

class Driver {
public:
    Driver(const config::Config& cfg, std::shared_ptr<const Runtime> rt)
        : observe_(cfg.milter.mode == Mode::observe), rt_(std::move(rt)), session_(make()) {}

    void step(std::string_view verb, std::string_view rest, Macros& macros) {
        static const std::pair<const char*, State> verbs[] = {
            {"connect", st_conn}, {"helo", st_helo},   {"mail", st_mail},  {"rcpt", st_rcpt},
            {"data", st_data},    {"header", st_hdrs}, {"eoh", st_eohs},   {"body", st_body},
            {"eom", st_endm},     {"quit", st_quit},   {"abort", st_abrt}, {"unknown", st_unkn},
            {"quit-nc", st_q_nc},
        };
        State next = st_opts;
        for (const auto& [name, st] : verbs)
            if (verb == name) next = st;
        if (next == st_opts) return;  // not a command: the macros wait for one
        if (!connected_ && next != st_conn && next != st_unkn) {
            // An MTA connects first: so does this driver, from 192.0.2.1.
            ConnectInfo info;
            info.ip = net::Address::parse("192.0.2.1");
            info.hostname = "mx.example.net";
            check("connect", session_->connect(info));
            connected_ = true;
            state_ = st_conn;
        }
        if (!(next_states[state_] & bit(next))) {
            if (in_mail(state_)) check("abort", session_->abort());
            reset();
            state_ = st_helo;
            if (!(next_states[state_] & bit(next))) {
                macros.clear();
                return;
            }
        }
        state_ = next;
        switch (next) {
            case st_conn: {
                ConnectInfo info;
                info.hostname = unescape(fuzz::take_word(rest));
                info.ip = net::Address::parse(fuzz::take_word(rest));
                info.macros = macros;
                check("connect", session_->connect(info));
                connected_ = true;
                break;
            }
            case st_helo:
                check("helo", session_->helo(unescape(rest), macros));
                break;
            case st_mail:
                reset();
                check("mail", session_->mail(unescape(fuzz::take_word(rest)), macros));
                break;
            case st_rcpt: {
                std::string arg = unescape(fuzz::take_word(rest));
                rcpts_.insert(arg);
                check("rcpt", session_->rcpt(arg, macros));
                break;
            }
            case st_hdrs: {
                std::string name = unescape(fuzz::take_word(rest));
                headers_[util::lower(name)] += 1;
                check("header", session_->header(name, unescape(rest)));
                break;
            }
            case st_eohs:
                check("eoh", session_->end_of_headers(macros));
                break;
            case st_endm:
                check("eom", session_->end_of_message(macros));
                reset();
                break;
            case st_abrt:
                check("abort", session_->abort());
                reset();
                break;
            case st_quit:
                // The connection ends; the next command comes on a new one.
                check("close", session_->close());
                session_ = make();
                state_ = st_opts;
                connected_ = false;
                reset();
                break;
            case st_q_nc:
                check("close", session_->close());
                connected_ = false;
                reset();
                break;
            default:
                break;  // DATA, body and unknown commands: regmilter negotiates them away
        }
        macros.clear();
    }
    void finish() {
        if (connected_) check("close", session_->close());
    }

private:
    std::unique_ptr<Session> make() { return std::make_unique<Session>(testing::environment_of(rt_)); }
    void reset() {
        rcpts_.clear();
        headers_.clear();
    }
    void check(const char* stage, const Reply& r) {
        std::string what = std::string(stage) + ": " + to_string(r.action) + " " + r.code + " " + r.xcode +
                           " " + r.text + " [" + r.reason + "] " + r.log;
        FUZZ_CHECK(r.reason != "internal-error" && r.reason != "internal-error:unexamined", what);
        FUZZ_CHECK(r.log.find("error=\"internal:") == std::string::npos, what);
        if (r.action == Action::tempfail || r.action == Action::reject) {
            char cls = r.action == Action::tempfail ? '4' : '5';
            FUZZ_CHECK(r.code.size() == 3 && r.code[0] == cls && !r.xcode.empty() && r.xcode[0] == cls, what);
        }
        if (observe_) FUZZ_CHECK(!refuses(r.action), what);
        FUZZ_CHECK(fuzz::printable_ascii(r.text) && r.text.size() <= 512, what);
        FUZZ_CHECK(r.log.find('\n') == std::string::npos && r.log.find('\r') == std::string::npos, what);
        for (const Header& h : r.add_headers) {
            FUZZ_CHECK(!h.name.empty() && fuzz::printable_ascii(h.name) &&
                           h.name.find(':') == std::string::npos && h.name.find(' ') == std::string::npos,
                       what + "; header " + h.name);
            FUZZ_CHECK(header_text(h.value), what + "; header " + h.name + ": " + h.value);
        }
        for (const std::string& rcpt : r.remove_rcpts)
            FUZZ_CHECK(rcpts_.count(rcpt), what + "; remove " + rcpt);
        for (const HeaderRef& h : r.remove_headers) {
            auto it = headers_.find(util::lower(h.name));
            FUZZ_CHECK(it != headers_.end() && h.index >= 1 && h.index <= it->second,
                       what + "; remove " + h.name + " " + std::to_string(h.index));
        }
    }

    bool observe_;
    std::shared_ptr<const Runtime> rt_;
    std::unique_ptr<Session> session_;  // one per milter connection
    State state_ = st_opts;
    bool connected_ = false;  // connect() called since the last close()
    std::set<std::string> rcpts_;
    std::map<std::string, int> headers_;  // lower-case name: how many the MTA sent
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const Shared& s = shared();
    std::vector<std::string_view> lines = fuzz::lines_of(fuzz::as_text(data, size));
    size_t which = 0;
    dns::MemoryResolver dns;
    dns.set_strict(false);
    for (std::string_view line : lines) {
        std::string_view rest = line;
        std::string_view key = fuzz::take_word(rest);
        if (key == "config" && rest.size() == 1 && rest[0] >= '0' && size_t(rest[0] - '0') < config_count)
            which = size_t(rest[0] - '0');
        else if (key != ">" && key != "<")
            fuzz::add_zone_line(dns, line);
    }
    auto rt = testing::runtime_of(s.cfg[which], dns, s.table);
    Driver d(*s.cfg[which], rt);
    Macros macros;
    size_t stages = 0;
    for (std::string_view line : lines) {
        std::string_view rest = line;
        if (fuzz::take_word(rest) != ">") continue;
        std::string_view verb = fuzz::take_word(rest);
        if (verb == "macro") {
            fuzz::take_word(rest);  // the stage letter: the next stage gets them
            while (!rest.empty()) {
                std::string w = unescape(fuzz::take_word(rest));
                size_t eq = w.find('=');
                std::string name = w.substr(0, eq);
                if (name.size() > 2 && name.front() == '{' && name.back() == '}')
                    name = name.substr(1, name.size() - 2);
                macros.emplace_back(name, eq == std::string::npos ? std::string() : w.substr(eq + 1));
            }
            continue;
        }
        if (++stages > 200) break;  // bounded work per input
        d.step(verb, rest, macros);
    }
    d.finish();
    return 0;
}
