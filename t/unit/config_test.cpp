// config: defaults, every kind of error with its exact message, the option
// table against the man page and the sample file.
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "config/config.hpp"
#include "config/options.hpp"

using namespace regmilter;

namespace {

std::string errors_of(const std::string& text) {
    auto r = config::load_string(text, "t.ini");
    std::string out;
    for (const auto& e : r.problems) out += e.str() + "\n";
    return out;
}

std::string read_top_file(const std::string& rel) {
    // Tests run from the top of the tree (t/run-tests cds there); fall back
    // to the source file's location.
    for (std::string base :
         {std::string("."), std::string(__FILE__).substr(0, std::string(__FILE__).rfind("/t/unit/"))}) {
        std::ifstream in(base + "/" + rel);
        if (in) {
            std::ostringstream ss;
            ss << in.rdbuf();
            return ss.str();
        }
    }
    return {};
}

}  // namespace

TEST_CASE("no file at all gives the embedded defaults", "[config]") {
    auto d = config::defaults();
    REQUIRE(d);
    CHECK(d->milter.socket == "unix:/var/spool/postfix/regmilter/regmilter.sock");
    CHECK(d->milter.socket_mode == 0660);
    CHECK(d->milter.mode == policy::Mode::enforce);
    CHECK(d->resolver.timeout_ms == 2000);
    CHECK(d->resolver.nameservers.empty());
    CHECK(d->trust.networks.contains(*net::Address::parse("127.0.0.1")));
    CHECK(d->trust.networks.contains(*net::Address::parse("::1")));
    CHECK_FALSE(d->trust.networks.contains(*net::Address::parse("192.0.2.1")));
    CHECK(d->spf.fail == policy::CheckAction::reject);
    CHECK(d->spf.temperror == policy::CheckAction::tempfail);
    CHECK(d->spf.void_lookups == 2);
    CHECK(d->bulk.recipient_delimiter == "+");
    CHECK(d->registries.empty());

    auto empty = config::load_string("", "empty.ini");
    REQUIRE(empty.problems.empty());
    CHECK(empty.value->milter.socket == d->milter.socket);
    CHECK(empty.value->source == "empty.ini");
}

TEST_CASE("the option table: one row per key, defaults inside their bounds, a new zone gets them",
          "[config]") {
    std::set<std::string> seen;
    for (const auto& o : config::options()) {
        std::string id = std::string(o.section) + " " + o.key;
        INFO(id);
        CHECK(seen.insert(id).second);
        CHECK(std::string(o.help).size() > 10);
        CHECK_FALSE(o.allowed().empty());
        if (o.type == config::Type::integer) {
            long d = std::stol(o.default_value);
            CHECK(d >= o.min);
            CHECK(d <= o.max);
        }
        if (o.type == config::Type::choice) CHECK(o.names.find(o.default_value) < o.names.count);
    }
    // A [registry NAME] section starts with the table's registry defaults.
    auto r = config::load_string("[registry r]\nzone = reg.example\n", "t.ini");
    REQUIRE(r.problems.empty());
    const auto& reg = r.value->registries.at(0);
    CHECK(reg.format == registry::Format::dashed);
    CHECK(reg.meaning == registry::Meaning::registered);
    CHECK(reg.unregistered == policy::CheckAction::tag);
    CHECK(reg.listed == policy::CheckAction::reject);
    CHECK(reg.on_error == policy::OnError::accept);
    REQUIRE(reg.bulk_codes.size() == 1);
    CHECK(reg.bulk_codes[0].str() == "127.0.0.3");
    CHECK_FALSE(reg.enforce_after);
}

TEST_CASE("every option's default is accepted when written in a file", "[config]") {
    std::string text;
    std::string section;
    for (const auto& o : config::options()) {
        std::string s = o.section;
        if (s != section) {
            text += s == "registry" ? "[registry r]\n" : "[" + s + "]\n";
            section = s;
        }
        std::string v = o.default_value;
        if (s == "registry" && std::string(o.key) == "zone") v = "reg.example";
        if (s == "registry" && std::string(o.key) == "listed") continue;  // meaning = blocked only
        text += std::string(o.key) + " = " + v + "\n";
    }
    INFO(text);
    CHECK(errors_of(text) == "");
}

TEST_CASE("a full file sets every kind of value", "[config]") {
    auto r = config::load_string(R"([milter]
socket = inet:8891@127.0.0.1
socket_mode = 0600
mode = observe
authserv_id = MX.Example.org
[resolver]
nameservers = 127.0.0.1:5353
  [::1]:53
timeout_ms = 500
[trust]
networks =
tls_issuers = Example CA
  Other CA, Inc.
[registry reg]
zone = Reg.Example.
format = reversed
enforce_after = 2026-03-01
bulk_codes = 127.0.0.3 127.0.0.5
reject_text = %{ip} is not registered; see https://reg.example/
[registry bl]
zone = bl.example
meaning = blocked
listed = tempfail
[bulk]
senders = News.Example 198.51.100.0/24
recipient_delimiter = +-
)",
                                 "full.ini");
    INFO((r.problems.empty() ? std::string() : r.problems[0].str()));
    REQUIRE(r.problems.empty());
    const auto& c = *r.value;
    CHECK(c.milter.socket == "inet:8891@127.0.0.1");
    CHECK(c.milter.socket_mode == 0600);
    CHECK(c.milter.mode == policy::Mode::observe);
    CHECK(c.milter.authserv_id == "mx.example.org");
    REQUIRE(c.resolver.nameservers.size() == 2);
    CHECK(c.resolver.nameservers[0].str() == "127.0.0.1:5353");
    CHECK(c.resolver.nameservers[1].str() == "::1");
    CHECK(c.resolver.timeout_ms == 500);
    CHECK(c.trust.networks.empty());  // an empty value trusts nothing
    CHECK(c.trust.tls_issuers == std::vector<std::string>{"Example CA", "Other CA, Inc."});
    REQUIRE(c.registries.size() == 2);
    CHECK(c.registries[0].zone == "reg.example");
    CHECK(c.registries[0].format == registry::Format::reversed);
    CHECK(util::format_date(*c.registries[0].enforce_after) == "2026-03-01");
    CHECK(c.registries[0].bulk_codes.size() == 2);
    CHECK(c.registries[1].meaning == registry::Meaning::blocked);
    CHECK(c.registries[1].listed == policy::CheckAction::tempfail);
    CHECK(c.bulk.senders.domains == std::vector<std::string>{"news.example"});
    CHECK(c.bulk.senders.networks.contains(*net::Address::parse("198.51.100.9")));
    CHECK(c.bulk.recipient_delimiter == "+-");
}

TEST_CASE("greylisting, rate limits and state map onto their modules' settings", "[config]") {
    auto r = config::load_string(R"([registry reg]
zone = reg.example
unregistered = greylist
[registry bl]
zone = bl.example
meaning = blocked
listed = greylist
[greylist]
delay = 2
retry_window = 60
pass_lifetime = 3600
network_v4 = 32
network_v6 = 48
auto_allow = 0
[ratelimit]
window = 60
registered_messages = 1000000000
unregistered_recipients = 7
[state]
backend = redis
redis = unix:/run/redis/redis.sock
prefix = mx:
timeout_ms = 50
password = s3cret
on_error = tempfail
snapshot = /var/lib/regmilter/state
snapshot_interval = 10
max_entries = 1000
)",
                                 "grey.ini");
    INFO((r.problems.empty() ? std::string() : r.problems[0].str()));
    REQUIRE(r.problems.empty());
    const auto& c = *r.value;
    CHECK(c.registries[0].unregistered == policy::CheckAction::greylist);
    CHECK(c.registries[1].listed == policy::CheckAction::greylist);
    CHECK(c.greylist.delay == 2);
    CHECK(c.greylist.retry_window == 60);
    CHECK(c.greylist.pass_lifetime == 3600);
    CHECK(c.greylist.auto_allow == 0);
    CHECK(greylist::check_settings(c.greylist).empty());
    CHECK(c.ratelimit.window == 60);
    CHECK(c.ratelimit.registered_messages == 1000000000u);
    CHECK(c.ratelimit.unregistered_recipients == 7u);
    CHECK(c.ratelimit.registered_recipients == 0u);
    // Rate limits group clients as [greylist] says.
    CHECK(c.ratelimit.network_v4 == 32);
    CHECK(c.ratelimit.network_v6 == 48);
    CHECK(ratelimit::check_settings(c.ratelimit).empty());
    CHECK(c.state.backend == policy::StateBackend::redis);
    CHECK(c.state.redis == "unix:/run/redis/redis.sock");
    CHECK(c.state.prefix == "mx:");
    CHECK(c.state.timeout_ms == 50);
    CHECK(c.state.password == "s3cret");
    CHECK(c.state.on_error == policy::OnError::tempfail);
    CHECK(c.state.snapshot == "/var/lib/regmilter/state");
    CHECK(c.state.snapshot_interval == 10);
    CHECK(c.state.max_entries == 1000);

    auto d = config::defaults();
    CHECK(d->greylist.delay == 300);
    CHECK(d->greylist.retry_window == 14400);
    CHECK(d->greylist.pass_lifetime == 3110400);
    CHECK(d->greylist.network_v4 == 24);
    CHECK(d->greylist.network_v6 == 64);
    CHECK(d->greylist.auto_allow == 5);
    CHECK(d->ratelimit.window == 3600);
    CHECK(d->ratelimit.unregistered_messages == 0u);
    CHECK(d->state.backend == policy::StateBackend::memory);
    CHECK(d->state.redis == "127.0.0.1:6379");
    CHECK(d->state.prefix == "regmilter:");
    CHECK(d->state.timeout_ms == 200);
    CHECK(d->state.on_error == policy::OnError::accept);
    CHECK(d->state.snapshot.empty());
    CHECK(d->state.snapshot_interval == 300);
    CHECK(d->state.max_entries == 1000000);
}

TEST_CASE("each kind of error names file, line, key and what is allowed", "[config]") {
    struct Case {
        const char* name;
        const char* text;
        const char* want;
    };
    const Case cases[] = {
        {"unknown section", "[milter]\n[foo]\n",
         "t.ini:2: [foo]: unknown section, allowed: milter, resolver, trust, registry NAME, spf, bulk, ..."},
        {"unknown key", "[milter]\nsokcet = x\n",
         "t.ini:2: [milter] sokcet: unknown key, allowed: socket, socket_mode, user, pid_file, mode, "
         "authserv_id, on_internal_error, ..."},
        {"bad choice", "[milter]\nmode = strict\n",
         "t.ini:2: [milter] mode: \"strict\" is not a valid choice, allowed: enforce|observe\n"},
        {"bad number", "[resolver]\ntimeout_ms = fast\n",
         "t.ini:2: [resolver] timeout_ms: \"fast\" is not a whole number, allowed: 100..30000\n"},
        {"number out of range", "[resolver]\nretries = 50\n",
         "t.ini:2: [resolver] retries: 50 is out of range, allowed: 0..10\n"},
        {"bad boolean", "[trust]\nauthenticated = maybe\n",
         "t.ini:2: [trust] authenticated: \"maybe\" is not yes or no, allowed: yes|no\n"},
        {"bad CIDR", "[trust]\nnetworks = 10.1.2.3/24 ::1\n",
         "t.ini:2: [trust] networks: non-null host address bits in \"10.1.2.3/24\", perhaps you should use "
         "\"10.1.2.0/24\" instead, allowed: CIDR ...; empty trusts no network\n"},
        {"not an address", "[trust]\nnetworks = localhost\n",
         "t.ini:2: [trust] networks: \"localhost\" is not an IPv4 or IPv6 address, allowed: CIDR ...; empty "
         "trusts "
         "no network\n"},
        {"bad date", "[registry r]\nzone = r.example\nenforce_after = 2026-02-30\n",
         "t.ini:3: [registry r] enforce_after: \"2026-02-30\" is not a date, allowed: YYYY-MM-DD; empty: "
         "always\n"},
        {"date in another format", "[registry r]\nzone = r.example\nenforce_after = 01/03/2026\n",
         "t.ini:3: [registry r] enforce_after: \"01/03/2026\" is not a date, allowed: YYYY-MM-DD; empty: "
         "always\n"},
        {"listed in a registered zone", "[registry r]\nzone = r.example\nlisted = reject\n",
         "t.ini:3: [registry r] listed: applies to meaning = blocked; this zone has meaning = registered "
         "(use "
         "unregistered)\n"},
        {"unregistered in a blocked zone",
         "[registry r]\nunregistered = tag\nzone = r.example\nmeaning = blocked\n",
         "t.ini:2: [registry r] unregistered: applies to meaning = registered; this zone has meaning = "
         "blocked\n"},
        {"zone missing", "[registry r]\nformat = dashed\n", "t.ini:1: [registry r] zone: is required\n"},
        {"registry without a name", "[registry]\nzone = x.example\n",
         "t.ini:1: [registry]: a registry section needs a name: [registry NAME]\n"},
        {"same zone twice", "[registry a]\nzone = r.example\n[registry b]\nzone = r.example\n",
         "t.ini:4: [registry b] zone: zone r.example is already asked by [registry a]\n"},
        {"key set twice", "[spf]\nfail = reject\nfail = tag\n",
         "t.ini:3: [spf] fail: set twice, first at line 2\n"},
        {"duplicate section", "[spf]\n[bulk]\n[spf]\n",
         "t.ini:3: [spf]: duplicate section, first at line 1\n"},
        {"key outside a section", "mode = observe\n", "t.ini:1: mode: key outside any section\n"},
        {"line without =", "[spf]\nhello\n", "t.ini:2: [spf]: \"hello\" is not a `key = value` line\n"},
        {"continuation of a single value", "[bulk]\nrecipient_delimiter = +\n  -\n",
         "t.ini:2: [bulk] recipient_delimiter: takes one value; continuation lines are only for lists\n"},
        {"bad octal", "[milter]\nsocket_mode = 999\n",
         "t.ini:2: [milter] socket_mode: \"999\" is not an octal mode, allowed: 0000..0777\n"},
        {"bad socket", "[milter]\nsocket = inet:99999\n",
         "t.ini:2: [milter] socket: socket \"inet:99999\": the port must be a number from 1 to 65535 "
         "(inet:PORT@HOST), allowed: unix:PATH|local:PATH|inet:PORT@HOST|inet6:PORT@HOST\n"},
        {"bad nameserver", "[resolver]\nnameservers = ns.example\n",
         "t.ini:2: [resolver] nameservers: nameserver \"ns.example\": not an IP address (use 192.0.2.1, "
         "192.0.2.1:5353, 2001:db8::1 or [2001:db8::1]:5353), allowed: HOST[:PORT] ... (IP addresses); "
         "empty: "
         "/etc/resolv.conf\n"},
        {"error answer as bulk code", "[registry r]\nzone = r.example\nbulk_codes = 127.0.0.1\n",
         "t.ini:3: [registry r] bulk_codes: 127.0.0.1 is an error answer (RFC 5782 §2.3), never a listing, "
         "allowed: "
         "addresses in 127.0.0.0/8 ...\n"},
        {"bulk code outside 127/8", "[registry r]\nzone = r.example\nbulk_codes = 10.0.0.3\n",
         "t.ini:3: [registry r] bulk_codes: 10.0.0.3 is outside 127.0.0.0/8, allowed: addresses in "
         "127.0.0.0/8 ...\n"},
        {"bad sender", "[bulk]\nsenders = bad!domain\n",
         "t.ini:2: [bulk] senders: \"bad!domain\" is neither a domain nor a network, allowed: DOMAIN|CIDR "
         "...\n"},
        {"relative table path", "[bulk]\ntable = bulk.txt\n",
         "t.ini:2: [bulk] table: \"bulk.txt\" is not an absolute path, allowed: an absolute path; empty: no "
         "table\n"},
        {"unreadable table", "[bulk]\ntable = /nonexistent/bulk.txt\n",
         "t.ini:2: [bulk] table: cannot read \"/nonexistent/bulk.txt\": No such file or directory, allowed: "
         "an "
         "absolute path; empty: no table\n"},
        {"section without ]", "[milter\n", "t.ini:1: section header without ']'\n"},
        {"greylist for an SPF result", "[spf]\nfail = greylist\n",
         "t.ini:2: [spf] fail: \"greylist\" is not a valid choice, allowed: accept|tag|tempfail|reject\n"},
        {"retry window not longer than the delay", "[greylist]\ndelay = 600\nretry_window = 600\n",
         "t.ini:3: [greylist] retry_window: must be longer than delay (600), or no retry could ever pass\n"},
        {"delay out of range", "[greylist]\ndelay = 0\n",
         "t.ini:2: [greylist] delay: 0 is out of range, allowed: 1..86400\n"},
        {"limit out of range", "[ratelimit]\nregistered_messages = 2000000000\n",
         "t.ini:2: [ratelimit] registered_messages: 2000000000 is out of range, allowed: 0..1000000000\n"},
        {"a number of 19 digits", "[ratelimit]\nwindow = 9999999999999999999\n",
         "t.ini:2: [ratelimit] window: \"9999999999999999999\" is not a whole number, allowed: 1..604800\n"},
        {"bad backend", "[state]\nbackend = sql\n",
         "t.ini:2: [state] backend: \"sql\" is not a valid choice, allowed: memory|redis\n"},
        {"bad Redis port", "[state]\nbackend = redis\nredis = 127.0.0.1:99999\n",
         "t.ini:3: [state] redis: redis \"127.0.0.1:99999\": the port is not a number in 1..65535 (use "
         "HOST:PORT such as 127.0.0.1:6379 or [::1]:6379, or unix:/PATH)\n"},
        {"relative Redis socket", "[state]\nredis = unix:redis.sock\n",
         "t.ini:2: [state] redis: redis \"unix:redis.sock\": the unix socket path must be absolute (use "
         "HOST:PORT such as 127.0.0.1:6379 or [::1]:6379, or unix:/PATH)\n"},
        {"prefix with a blank", "[state]\nprefix = a b\n",
         "t.ini:2: [state] prefix: prefix may hold only printable ASCII without blanks\n"},
        {"relative snapshot path", "[state]\nsnapshot = state.txt\n",
         "t.ini:2: [state] snapshot: \"state.txt\" is not an absolute path, allowed: an absolute path, or "
         "empty for none\n"},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        // "..." at the end: the list goes on (sections and keys get added);
        // what is written must be its beginning.
        std::string want = c.want;
        if (util::ends_with(want, ", ...")) {
            want.resize(want.size() - 3);
            CHECK(errors_of(c.text).rfind(want, 0) == 0);
        } else {
            CHECK(errors_of(c.text) == want);
        }
    }
    // Lines longer than inih's buffer: an error naming the way out.
    std::string got = errors_of("[trust]\nnetworks = " + std::string(300, '1') + "\n");
    INFO(got);
    CHECK(got.rfind("t.ini:2: line is longer than ", 0) == 0);
    CHECK(got.find("continue a long list on indented lines") != std::string::npos);
}

TEST_CASE("limits are FILE:LINE errors, never aborts: long section names, mapped networks, directories",
          "[config]") {
    // inih cuts section names at 50 bytes: a longer [registry NAME] once
    // aborted every program (map::at). Now it is one error on its line.
    for (size_t n : {48, 49, 50, 60, 200}) {
        std::string name(n, 'r');
        std::string got =
            errors_of("[milter]\n[registry " + name + "]\nzone = r.example\n[spf]\nfail = reject\n");
        INFO(n << ": " << got);
        if (n + 9 <= 40) {
            CHECK(got.empty());
        } else if (n + 11 > 198) {
            CHECK(got.rfind("t.ini:2: line is longer than 198 characters", 0) == 0);
            CHECK(std::count(got.begin(), got.end(), '\n') == 1);
        } else {
            CHECK(got.rfind("t.ini:2: section name \"registry ", 0) == 0);
            CHECK(got.find("is longer than 40 characters") != std::string::npos);
            CHECK(std::count(got.begin(), got.end(), '\n') == 1);
        }
    }
    std::string ok_name(31, 'r');  // "registry " + 31 = 40: the longest accepted
    CHECK(errors_of("[registry " + ok_name + "]\nzone = r.example\n").empty());

    // IPv4-mapped networks are the IPv4 networks they map (clients are unmapped before matching).
    auto r = config::load_string(
        "[trust]\nnetworks = ::ffff:192.0.2.0/120\n[spf]\ntrusted_forwarders = ::ffff:198.51.100.7\n"
        "[bulk]\nsenders = ::ffff:203.0.113.0/124\n",
        "t.ini");
    REQUIRE(r.value);
    CHECK(r.value->trust.networks.networks().at(0).str() == "192.0.2.0/24");
    CHECK(r.value->trust.networks.contains(*net::Address::parse("192.0.2.9")));
    CHECK(r.value->trust.networks.contains(*net::Address::parse("::ffff:192.0.2.9")));
    CHECK(r.value->spf.trusted_forwarders.contains(*net::Address::parse("198.51.100.7")));
    CHECK(r.value->bulk.senders.networks.contains(*net::Address::parse("203.0.113.9")));
    auto all = config::load_string("[trust]\nnetworks = ::ffff:0:0/96\n", "t.ini");
    REQUIRE(all.value);
    CHECK(all.value->trust.networks.networks().at(0).str() == "0.0.0.0/0");

    auto dir = config::load_file("/tmp");
    CHECK_FALSE(dir.value);
    REQUIRE(dir.problems.size() == 1);
    CHECK(dir.problems[0].str() == "/tmp: is a directory, not a configuration file");
}

TEST_CASE("every error at once, in line order, and no config", "[config]") {
    auto r = config::load_string(
        "[milter]\nmode = x\n[foo]\nbar = 1\n[resolver]\nretries = -1\ntimeout_ms = 1\n", "t.ini");
    CHECK_FALSE(r.value);
    REQUIRE(r.problems.size() == 4);
    CHECK(r.problems[0].line == 2);
    CHECK(r.problems[1].line == 3);
    CHECK(r.problems[2].line == 6);
    CHECK(r.problems[3].line == 7);
    CHECK(r.problems[1].str().rfind(
              "t.ini:3: [foo]: unknown section, allowed: milter, resolver, trust, registry NAME, spf, bulk",
              0) == 0);
}

TEST_CASE("a missing file is one error naming it", "[config]") {
    auto r = config::load_file("/nonexistent/regmilter.ini");
    CHECK_FALSE(r.value);
    REQUIRE(r.problems.size() == 1);
    CHECK(r.problems[0].str() == "/nonexistent/regmilter.ini: cannot read: No such file or directory");
}

TEST_CASE("dates: YYYY-MM-DD only, real calendar days", "[config]") {
    struct Case {
        const char* text;
        bool ok;
        long long day;
    };
    const Case cases[] = {
        {"1970-01-01", true, 0},     {"2026-03-01", true, 20513},
        {"2024-02-29", true, 19782}, {"2023-02-29", false, 0},
        {"2026-13-01", false, 0},    {"2026-1-01", false, 0},
        {"2026-01-01x", false, 0},   {"", false, 0},
        {"1969-12-31", false, 0},
    };
    for (const auto& c : cases) {
        INFO(c.text);
        auto d = util::parse_date(c.text);
        CHECK(bool(d) == c.ok);
        if (d && c.ok) {
            CHECK(*d == c.day);
            CHECK(util::format_date(*d) == c.text);
        }
    }
}

namespace {

// The .TP entry of `key` in the man page section of `section`: from its
// "\fBkey\fR" line to the next .TP or .SH, with groff's "\-" as "-".
std::string man_entry(const std::string& man, const std::string& section, const std::string& key) {
    std::string head =
        section == "registry" ? ".SH \"[registry NAME] SECTIONS\"" : ".SH \"[" + section + "] SECTION\"";
    size_t sec = man.find(head);
    if (sec == std::string::npos) return {};
    size_t end_sec = man.find("\n.SH ", sec + 1);
    size_t at = man.find(".TP\n\\fB" + key + "\\fR", sec);
    if (at == std::string::npos || at > end_sec) return {};
    size_t end = std::min(man.find("\n.TP", at + 1), man.find("\n.SH", at + 1));
    std::string e = man.substr(at, end - at);
    for (size_t p; (p = e.find("\\-")) != std::string::npos;) e.replace(p, 2, "-");
    return e;
}

}  // namespace

TEST_CASE("regmilter.ini(5) and conf/regmilter.ini agree with the option table: names, defaults, ranges",
          "[config]") {
    std::string man = read_top_file("man/regmilter.ini.5");
    std::string conf = read_top_file("conf/regmilter.ini");
    REQUIRE_FALSE(man.empty());
    REQUIRE_FALSE(conf.empty());
    for (const auto& o : config::options()) {
        std::string key = o.key, def = o.default_value, section = o.section;
        INFO("[" << section << "] " << key << " (default \"" << def << "\", allowed " << o.allowed() << ")");
        std::string entry = man_entry(man, section, key);
        REQUIRE_FALSE(entry.empty());
        // The default, as written in a file.
        if (def.empty())
            CHECK((entry.find("efault empty") != std::string::npos ||
                   entry.find("no default") != std::string::npos));
        else if (def.find(' ') != std::string::npos)
            CHECK(entry.find("efault\n.BR \"" + def + "\"") != std::string::npos);
        else
            CHECK(entry.find("efault\n.BR " + def) != std::string::npos);
        if (o.type == config::Type::integer || o.type == config::Type::octal)
            CHECK(entry.find("range " + o.allowed() + ".") != std::string::npos);
        if (o.type == config::Type::choice) {
            bool actions =
                entry.find("= \\fIaction\\fR") != std::string::npos &&
                (o.names.items == policy::check_action_names || o.names.items == policy::spf_action_names);
            for (size_t i = 0; i < o.names.count && !actions; ++i)
                CHECK(entry.find("\\fB" + std::string(o.names.items[i]) + "\\fR") != std::string::npos);
        }
        // The sample: every key of a plain section with its default, active;
        // the registry keys as commented examples.
        if (section == "registry") {
            CHECK(conf.find("\n#" + key + " =") != std::string::npos);
        } else {
            std::string line = "\n" + key + " =" + (def.empty() ? "" : " " + def) + "\n";
            CHECK(conf.find(line) != std::string::npos);
        }
    }
}

TEST_CASE("conf/regmilter.ini is accepted, and so is every commented example in it", "[config]") {
    std::string conf = read_top_file("conf/regmilter.ini");
    REQUIRE_FALSE(conf.empty());
    auto r = config::load_string(conf, "conf/regmilter.ini");
    for (const auto& e : r.problems) FAIL_CHECK(e.str());
    // Uncomment the examples ("#key = value", "#[registry NAME]"): still valid.
    std::set<std::string> keys;
    for (const auto& o : config::options()) keys.insert(o.key);
    std::istringstream in(conf);
    std::string line;
    std::vector<std::string> lines;
    std::map<std::string, size_t> active;  // key -> its line in this section
    while (std::getline(in, line)) {
        if (line.rfind("#[", 0) == 0 || line.rfind("[", 0) == 0) {
            if (line[0] == '#') line = line.substr(1);
            active.clear();
        } else if (line.size() > 1 && line[0] == '#' && line[1] != ' ') {
            auto eq = line.find(" =");
            std::string key = eq == std::string::npos ? "" : line.substr(1, eq - 1);
            // (table: the example path need not exist on the test machine.)
            if (keys.count(key) && key != "table") {
                line = line.substr(1);
                // The example replaces the active line it follows.
                if (auto it = active.find(key); it != active.end()) lines[it->second] = "";
            }
        }
        auto eq = line.find(" =");
        if (eq != std::string::npos && line[0] != '#' && line[0] != ' ')
            active[line.substr(0, eq)] = lines.size();
        lines.push_back(line);
    }
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    auto u = config::load_string(out, "uncommented");
    for (const auto& e : u.problems) FAIL_CHECK(e.str());
    CHECK(u.value);
}

TEST_CASE("[policy] exempt_recipients: addresses and local@, lower case; errors name the word", "[config]") {
    auto r = config::load_string("[policy]\nexempt_recipients = Postmaster@ abuse@Example.ORG\n", "t.ini");
    REQUIRE(r.value);
    CHECK(r.value->exemptions.recipients == std::vector<std::string>{"postmaster@", "abuse@example.org"});
    const std::pair<const char*, const char*> bad[] = {
        {"abuse", "t.ini:2: [policy] exempt_recipients: \"abuse\" is neither local@domain nor local@"},
        {"@example.org",
         "t.ini:2: [policy] exempt_recipients: \"@example.org\" is neither local@domain nor local@"},
        {"abuse@exa_mple..org",
         "t.ini:2: [policy] exempt_recipients: \"abuse@exa_mple..org\": \"exa_mple..org\" is not a domain"},
    };
    for (const auto& [word, want] : bad) {
        INFO(word);
        CHECK(errors_of(std::string("[policy]\nexempt_recipients = ") + word + "\n").rfind(want, 0) == 0);
    }
}

TEST_CASE("[milter] syslog_facility and drain_timeout", "[config]") {
    auto r = config::load_string("[milter]\nsyslog_facility = local3\ndrain_timeout = 5\n", "t.ini");
    REQUIRE(r.value);
    CHECK(r.value->milter.syslog_facility == config::SyslogFacility::local3);
    CHECK(r.value->milter.drain_timeout == 5);
    CHECK(config::defaults()->milter.syslog_facility == config::SyslogFacility::mail);
    CHECK(config::defaults()->milter.drain_timeout == 20);
    CHECK(errors_of("[milter]\nsyslog_facility = kern\n")
              .rfind("t.ini:2: [milter] syslog_facility: \"kern\"", 0) == 0);
}
