// regmilter-query: the policy library from the command line, for
// administrators, tests and benchmarks. Thin: parse arguments, drive one
// policy::Session through the SMTP stages as an MTA would (policy::simulate),
// print. It reads the daemon's configuration file unless told otherwise, so
// that it answers what the daemon would answer.
// --stats prints the running milter's counters, fetched from its [stats]
// listen endpoint.
// Exit status 0 on an answer, 1 on a configuration or resolver error (or,
// with --stats, when the milter cannot be asked), 2 on bad arguments.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "dns/trace.hpp"
#include "policy/report.hpp"
#include "policy/throttle.hpp"
#include "registry/health.hpp"
#include "registry/info.hpp"
#include "stats/http.hpp"
#include "util/cli.hpp"
#include "util/file.hpp"

namespace {

using namespace regmilter;

const char usage_text[] =
    "usage: regmilter-query --ip ADDR [-c FILE] [--helo NAME] [--from ADDR] [--rcpt ADDR]...\n"
    "                       [--header 'Name: value']... [--macro NAME=VALUE]... [--hostname NAME]\n"
    "                       [--date YYYY-MM-DD] [--nameserver HOST[:PORT]]... [--timeout-ms MS]\n"
    "                       [--retries N] [--receiver NAME] [--json] [--trace] [--state-peek]\n"
    "       regmilter-query --ip ADDR [-c FILE] --registry-info [--nameserver HOST[:PORT]]... [--json]\n"
    "       regmilter-query [-c FILE] --check\n"
    "       regmilter-query [-c FILE] --stats\n"
    "       regmilter-query --help | --version\n"
    "  -c FILE   configuration (default " SYSCONFDIR
    "/regmilter/regmilter.ini when it exists, else the built-in defaults)\n"
    "  --state-peek  greylisting and rate limits read the configured [state] (Redis, or the\n"
    "            memory backend's snapshot file) without changing it; without it they use\n"
    "            an empty store of this process's own\n";

const char default_config[] = SYSCONFDIR "/regmilter/regmilter.ini";

enum Opt {
    o_config = 256,
    o_check,
    o_ip,
    o_helo,
    o_from,
    o_hostname,
    o_rcpt,
    o_header,
    o_macro,
    o_date,
    o_nameserver,
    o_timeout,
    o_retries,
    o_receiver,
    o_json,
    o_trace,
    o_state_peek,
    o_registry_info,
    o_stats,
};

struct Args {
    std::optional<std::string> config_file;
    bool check = false;
    bool stats = false;
    policy::Scenario scenario;
    bool have_ip = false;
    std::optional<util::Day> date;
    std::vector<dns::Nameserver> nameservers;
    std::optional<int> timeout_ms, retries;
    std::string receiver;
    bool json = false;
    bool trace = false;
    bool state_peek = false;
    bool registry_info = false;  // every [registry] zone's answer and metadata for --ip
};

// One option (`id`, its value `v` or null) into `a`; a bad value ends the
// program through cli.fail().
void apply_option(Args& a, const util::Cli& cli, int id, const char* v) {
    policy::Scenario& sc = a.scenario;
    std::string value = v ? v : "";
    switch (id) {
        case o_config:
            a.config_file = value;
            break;
        case o_check:
            a.check = true;
            break;
        case o_ip:
            sc.ip = net::Address::parse(value);
            if (!sc.ip) cli.fail("--ip: \"" + value + "\" is not an IPv4 or IPv6 address");
            a.have_ip = true;
            break;
        case o_helo:
            sc.helo = value;
            break;
        case o_from:
            sc.mail_from = value;
            break;
        case o_hostname:
            sc.hostname = value;
            break;
        case o_rcpt:
            sc.rcpts.push_back(value);
            break;
        case o_header: {
            auto colon = value.find(':');
            if (colon == std::string::npos)
                cli.fail("--header: \"" + value + "\" has no ':' (want 'Name: value')");
            if (colon == 0) cli.fail("--header: \"" + value + "\" has no name (want 'Name: value')");
            std::string text = value.substr(colon + 1);
            if (!text.empty() && text[0] == ' ') text.erase(0, 1);
            sc.headers.push_back({value.substr(0, colon), text});
            break;
        }
        case o_macro: {
            auto eq = value.find('=');
            if (eq == std::string::npos || eq == 0) cli.fail("--macro: \"" + value + "\" is not NAME=VALUE");
            std::string name = value.substr(0, eq);
            if (name.size() > 2 && name.front() == '{' && name.back() == '}')
                name = name.substr(1, name.size() - 2);
            sc.macros.emplace_back(name, value.substr(eq + 1));
            break;
        }
        case o_date:
            a.date = util::parse_date(value);
            if (!a.date) cli.fail("--date: \"" + value + "\" is not a YYYY-MM-DD date");
            break;
        case o_nameserver: {
            std::string err;
            auto ns = dns::parse_nameserver(value, err);
            if (!ns) cli.fail("--nameserver: " + err);
            a.nameservers.push_back(*ns);
            break;
        }
        case o_timeout:
            a.timeout_ms = int(cli.number("--timeout-ms", v, 100, 30000));
            break;
        case o_retries:
            a.retries = int(cli.number("--retries", v, 0, 10));
            break;
        case o_receiver:
            a.receiver = value;
            break;
        case o_json:
            a.json = true;
            break;
        case o_trace:
            a.trace = true;
            break;
        case o_state_peek:
            a.state_peek = true;
            break;
        case o_registry_info:
            a.registry_info = true;
            break;
        case o_stats:
            a.stats = true;
            break;
    }
}

Args parse_args(int argc, char** argv) {
    const util::Cli cli("regmilter-query", usage_text);
    Args a;
    const std::vector<util::CliOption> options = {
        {"config", 'c', true, o_config},
        {"check", 't', false, o_check},
        {"ip", 0, true, o_ip},
        {"helo", 0, true, o_helo},
        {"from", 0, true, o_from},
        {"hostname", 0, true, o_hostname},
        {"rcpt", 0, true, o_rcpt},
        {"header", 0, true, o_header},
        {"macro", 0, true, o_macro},
        {"date", 0, true, o_date},
        {"nameserver", 0, true, o_nameserver},
        {"timeout-ms", 0, true, o_timeout},
        {"retries", 0, true, o_retries},
        {"receiver", 0, true, o_receiver},
        {"json", 0, false, o_json},
        {"trace", 0, false, o_trace},
        {"state-peek", 0, false, o_state_peek},
        {"registry-info", 0, false, o_registry_info},
        {"stats", 0, false, o_stats},
    };
    auto rest = cli.parse(argc, argv, options, [&](int id, const char* v) { apply_option(a, cli, id, v); });
    if (!rest.empty()) cli.fail("unexpected argument \"" + rest.front() + "\"");
    if (a.stats && (a.check || a.have_ip)) cli.fail("--stats takes no other option than -c");
    if (!a.check && !a.stats && !a.have_ip) cli.fail("--ip is required");
    return a;
}

// The configuration file to read: -c, else the daemon's when it exists.
std::string config_path(const Args& a) {
    if (a.config_file) return *a.config_file;
    return util::stamp_of(default_config).exists ? default_config : "";
}

void print_text(const policy::Session& session, const policy::Transcript& t) {
    const policy::Facts& f = t.facts ? *t.facts : session.facts();
    std::cout << "config: " << session.runtime()->config->source << '\n';
    if (f.mail.spf_mail) {
        const spf::Outcome& o = *f.mail.spf_mail;
        std::cout << "spf: " << spf::to_string(o.result) << " (identity " << o.identity << ", domain "
                  << o.domain << ")";
        if (!o.mechanism.empty()) std::cout << " mechanism " << o.mechanism;
        if (!o.problem.empty()) std::cout << ": " << o.problem;
        std::cout << '\n';
        if (!o.explanation.empty()) std::cout << "explanation: " << o.explanation << '\n';
    } else {
        std::cout << "spf: not checked"
                  << (f.mail.trust != policy::TrustReason::none
                          ? std::string(" (trusted: ") + policy::to_string(f.mail.trust) + ")"
                          : std::string())
                  << '\n';
    }
    if (f.mail.spf_helo)
        std::cout << "spf helo: " << spf::to_string(f.mail.spf_helo->result) << " (domain "
                  << f.mail.spf_helo->domain << ")\n";
    for (const auto& e : f.connect.registry) {
        std::cout << "registry " << e.name << ": " << registry::to_string(e.status) << " (" << e.query << ")";
        if (!e.code.empty()) std::cout << " " << e.code << (e.bulk ? " bulk sender" : "");
        if (!e.info.empty()) std::cout << " \"" << e.info << "\"";
        if (!e.error.empty()) std::cout << ": " << e.error;
        std::cout << '\n';
    }
    std::vector<std::string> signals = f.mail.envelope_bulk.signals;
    for (auto& s : f.data.header_bulk.signals(session.runtime()->config->bulk).signals) signals.push_back(s);
    std::cout << "bulk:";
    for (const auto& s : signals) std::cout << ' ' << s;
    std::cout << (signals.empty() ? " no" : "") << '\n';
    for (const auto& r : t.asked)
        std::cout << "bulk recipient <" << r.rcpt << ">: " << util::name_of(r.bulk.choice) << " (" << r.source
                  << (r.source == "default" ? "" : ", " + r.bulk.key) << ")\n";
    auto rate = [](const ratelimit::Result& r) {
        std::cout << ratelimit::to_string(r.outcome) << " (" << r.count << " of " << r.limit << " per "
                  << r.window << " s for " << r.network.str() << ")";
        if (!r.store.ok()) std::cout << ": " << state::to_string(r.store.status) << ": " << r.store.reason;
        std::cout << '\n';
    };
    if (f.throttle.messages) {
        std::cout << "ratelimit messages: ";
        rate(*f.throttle.messages);
    }
    for (const auto& rt : f.throttle.rcpts) {
        if (rt.greylist) {
            const greylist::Result& g = *rt.greylist;
            std::cout << "greylist <" << rt.rcpt << ">: " << greylist::to_string(g.outcome);
            if (g.delays()) std::cout << ", retry in " << g.wait << " s";
            std::cout << " (network " << g.network.str() << ", " << g.client_passes << " passed triplet(s))";
            if (!g.store.ok())
                std::cout << ": " << state::to_string(g.store.status) << ": " << g.store.reason;
            std::cout << '\n';
        }
        if (rt.ratelimit) {
            std::cout << "ratelimit recipients <" << rt.rcpt << ">: ";
            rate(*rt.ratelimit);
        }
    }
    for (const auto& sr : t.replies) {
        const policy::Reply& r = sr.reply;
        std::cout << "verdict " << policy::to_string(sr.stage);
        if (!sr.rcpt.empty()) std::cout << " <" << sr.rcpt << ">";
        std::cout << ": " << policy::to_string(r.action);
        if (!r.code.empty()) std::cout << ' ' << r.code << ' ' << r.xcode;
        if (!r.text.empty()) std::cout << ' ' << r.text;
        if (!r.reason.empty()) std::cout << " [" << r.reason << "]";
        std::cout << '\n';
        for (const auto& arg : r.remove_rcpts)
            std::cout << "remove recipient: " << policy::envelope_address(arg) << '\n';
        for (const auto& h : r.remove_headers)
            std::cout << "remove header: " << h.name << "[" << h.index << "]\n";
        for (const auto& h : r.add_headers) std::cout << "header: " << h.name << ": " << h.value << '\n';
    }
}

// A store under another name, for the report: where the state was read from.
class Labelled : public state::Store {
public:
    Labelled(std::shared_ptr<state::Store> inner, std::string label)
        : inner_(std::move(inner)), label_(std::move(label)) {}
    state::GreylistAnswer greylist(const state::Key& t, const state::Key& c, const state::GreylistRules& r,
                                   state::UnixTime now, state::Mode m, state::Deadline d) override {
        return inner_->greylist(t, c, r, now, m, d);
    }
    state::GreylistAnswer client(const state::Key& c, const state::GreylistRules& r, state::UnixTime now,
                                 state::Mode m, state::Deadline d) override {
        return inner_->client(c, r, now, m, d);
    }
    state::CounterAnswer count(const state::Key& k, uint64_t n, uint64_t limit, state::UnixTime expires,
                               state::UnixTime now, state::Mode m, state::Deadline d) override {
        return inner_->count(k, n, limit, expires, now, m, d);
    }
    std::string describe() const override { return label_; }

private:
    std::shared_ptr<state::Store> inner_;
    std::string label_;
};

// The store greylisting and rate limits ask: with --state-peek the configured
// one (Redis; for memory, a copy read from the snapshot file), otherwise an
// empty one of this process. Null, with the problem printed, when the
// snapshot cannot be read.
std::shared_ptr<state::Store> state_store(const config::State& s, bool peek) {
    policy::MadeStore made = policy::make_store(s);
    if (!peek) {
        state::MemoryOptions o;
        return std::make_shared<Labelled>(std::make_shared<state::MemoryStore>(o),
                                          "memory, empty, of regmilter-query alone (--state-peek reads the "
                                          "configured state)");
    }
    if (!made.memory) return made.store;
    if (s.snapshot.empty())
        return std::make_shared<Labelled>(made.store,
                                          "memory: no [state] snapshot configured, nothing to read");
    state::SnapshotResult r = made.memory->load(s.snapshot, state::wall_now());
    using St = state::SnapshotResult::Status;
    if (r.status == St::missing)
        return std::make_shared<Labelled>(made.store,
                                          "memory: snapshot " + s.snapshot + " does not exist yet");
    if (r.status != St::ok) {
        std::fprintf(stderr, "regmilter-query: %s\n", r.str().c_str());
        return nullptr;
    }
    return std::make_shared<Labelled>(made.store, "memory, read from snapshot " + s.snapshot + " (" +
                                                      std::to_string(r.entries) + " entries)");
}

// --trace and --registry-info: each zone's RFC 5782 §5 test points, asked
// as the daemon asks them (at start, reload and every health_interval). With
// --trace each query and the outcome are traced, and a broken zone's lookups
// then get its on_error, as in the daemon; --registry-info says on standard
// error which zone is broken (its answers on standard output are the zone's own).
void check_health(policy::Runtime& rt, bool trace) {
    auto sink = [](std::string_view line) { std::cerr << "trace: " << line << '\n'; };
    std::unique_ptr<dns::Resolver> up = rt.upstream ? rt.upstream() : nullptr;
    if (!up) return;
    rt.health = std::make_shared<registry::Health>();
    dns::TracingResolver traced(*up, sink, "health: ");
    dns::Resolver& dns = trace ? static_cast<dns::Resolver&>(traced) : *up;
    // Cheap even when DNS is down: one bound for every check, as the daemon's per zone.
    const dns::Deadline deadline = dns::deadline_in(std::min<std::chrono::milliseconds>(
        std::chrono::milliseconds(2000), std::chrono::milliseconds(rt.config->resolver.stage_timeout_ms)));
    for (const auto& z : rt.config->registries) {
        if (z.health_interval <= 0) continue;
        for (registry::Family f : {registry::Family::v4, registry::Family::v6}) {
            registry::Probe p = registry::check(dns, z, f, deadline);
            rt.health->record(z, f, p);
            const std::string what = "registry " + z.name + " (zone " + z.zone + ") for " +
                                     registry::to_string(f) + " clients: " + registry::to_string(p.outcome) +
                                     (p.detail.empty() ? "" : ": " + p.detail);
            if (trace)
                sink("health: " + what);
            else if (p.outcome == registry::Probe::Outcome::broken)
                std::cerr << "regmilter-query: RFC 5782 health check: " << what << '\n';
        }
    }
}

// --registry-info: each configured zone asked for --ip, whatever the trust.
int registry_info(const policy::Runtime& rt, const Args& args) {
    const config::Config& cfg = *rt.config;
    if (cfg.registries.empty()) {
        std::fprintf(stderr, "regmilter-query: --registry-info: %s has no [registry NAME] section\n",
                     cfg.source.c_str());
        return 1;
    }
    std::unique_ptr<dns::Resolver> dns = rt.make_resolver();
    dns::Deadline deadline = policy::stage_deadline(cfg);
    std::vector<registry::Info> infos;
    for (const auto& zone : cfg.registries)
        infos.push_back(registry::lookup_info(*dns, *args.scenario.ip, zone, deadline));
    if (args.json)
        std::cout << registry::info_json(*args.scenario.ip, infos) << '\n';
    else
        registry::write_info_text(std::cout, *args.scenario.ip, infos);
    return 0;
}

// --stats: the running milter's counters, from [stats] listen of `path`.
int print_stats(const std::string& path) {
    const std::string name = path.empty() ? "(defaults)" : path;
    config::LoadResult cfg =
        path.empty() ? config::LoadResult{config::defaults(), {}} : config::load_file(path);
    if (!cfg.value) {
        for (const auto& p : cfg.problems) std::cout << p.str() << '\n';
        return 1;
    }
    const auto& listen = cfg.value->stats.listen;
    if (!listen) {
        std::fprintf(stderr,
                     "regmilter-query: [stats] listen is not set in %s: the milter serves no statistics\n",
                     name.c_str());
        return 1;
    }
    constexpr std::chrono::milliseconds timeout{5000};
    stats::http::Fetched f = stats::http::fetch(*listen, "/metrics", timeout);
    if (!f.ok) {
        std::fprintf(stderr,
                     "regmilter-query: cannot read the milter's statistics: %s (is regmilter running with "
                     "[stats] listen = %s of %s?)\n",
                     f.error.c_str(), listen->str().c_str(), name.c_str());
        return 1;
    }
    std::cout << f.body << std::flush;
    return std::cout ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    Args args = parse_args(argc, argv);
    std::string path = config_path(args);
    if (args.stats) return print_stats(path);

    policy::Loaded loaded = policy::load_runtime(path, nullptr);
    if (!loaded.runtime) {
        for (const auto& p : loaded.problems) std::cout << p.str() << '\n';
        return 1;
    }
    if (args.check) {
        std::cout << (path.empty() ? "(defaults)" : path) << ": ok\n";
        return 0;
    }

    // The command line's resolver and receiver, on a copy of the snapshot.
    auto rt = std::make_shared<policy::Runtime>(*loaded.runtime);
    if (!args.nameservers.empty()) rt->resolver.nameservers = args.nameservers;
    if (args.timeout_ms) rt->resolver.timeout_ms = *args.timeout_ms;
    if (args.retries) rt->resolver.retries = *args.retries;
    rt->upstream = [opt = rt->resolver]() -> std::unique_ptr<dns::Resolver> {
        std::string error;
        return dns::LdnsResolver::create(opt, error);
    };
    if (!args.receiver.empty()) rt->authserv_id = args.receiver;
    if (args.trace) rt->pool = nullptr;  // --trace: every lookup in order, in this thread
    if (!rt->upstream()) {
        std::fprintf(stderr, "regmilter-query: resolver: cannot be set up with these nameservers\n");
        return 1;
    }

    if (args.trace || args.registry_info) check_health(*rt, args.trace);
    if (args.registry_info) return registry_info(*rt, args);

    policy::Environment env;
    std::shared_ptr<const policy::Runtime> snapshot = rt;
    env.runtime = [snapshot] { return snapshot; };
    if (args.date) env.clock = [day = *args.date] { return util::start_of(day); };
    if (args.trace) env.trace = [](std::string_view line) { std::cerr << "trace: " << line << '\n'; };
    std::shared_ptr<state::Store> store = state_store(rt->config->state, args.state_peek);
    if (!store) return 1;
    env.store = [store] { return store; };
    env.state_peek = args.state_peek;
    env.notice = [](policy::LogLevel, const std::string& line) { std::cerr << "state: " << line << '\n'; };
    policy::Session session(env);
    policy::Transcript t = policy::simulate(session, args.scenario);
    if (args.json)
        std::cout << policy::to_json(session, t) << '\n';
    else
        print_text(session, t);
    return 0;
}
