// regmilter-zone: builds what a registry operator publishes over DNS, from
// the library (lib/registry, lib/bulk). Thin: parse arguments, read the input,
// call the library, print its problems, write the outputs atomically.
//   regmilter-zone registry --zone NAME [...] REGISTRATIONS
//   regmilter-zone optout --zone NAME [...] BULK-TABLE
// Exit status: 0 built; 1 an entry failed (or a file could not be read or
// written); 2 bad arguments.
#include <getopt.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "bulk/optout.hpp"
#include "config/config.hpp"
#include "dns/ldns_resolver.hpp"
#include "dns/zone_file.hpp"
#include "registry/checks.hpp"
#include "registry/zone_writer.hpp"
#include "util/atomic_file.hpp"
#include "util/file.hpp"
#include "util/version.hpp"

namespace {

using namespace regmilter;

const char usage_text[] =
    "usage: regmilter-zone registry --zone NAME [--format dashed|reversed|both] [--no-dns]\n"
    "                      [--allow-special] [--allow-generic-ptr] [--skip-failing]\n"
    "                      [--previous ZONEFILE] [--nameserver HOST[:PORT]]... [-o ZONEFILE]\n"
    "                      [--rbldnsd FILE] [--jobs N] [--timeout-ms MS] [--retries N]\n"
    "                      [--budget SECONDS] [ZONE OPTIONS] REGISTRATIONS\n"
    "       regmilter-zone optout --zone NAME [--previous ZONEFILE] [-o ZONEFILE] [--rbldnsd FILE]\n"
    "                      [ZONE OPTIONS] BULK-TABLE\n"
    "       regmilter-zone --help | --version\n"
    "zone options: [--ns NAME]... [--hostmaster ADDR] [--ttl SECONDS] [--date YYYY-MM-DD]\n"
    "Without -o and --rbldnsd the zone file goes to standard output. See regmilter-zone(1).\n";

[[noreturn]] void usage(const std::string& why) {
    std::fprintf(stderr, "regmilter-zone: %s\n(regmilter-zone --help shows the usage)\n", why.c_str());
    std::exit(2);
}

struct Args {
    std::string command;
    std::string input;
    std::string zone;
    registry::Forms forms;
    registry::CheckSettings checks;
    bool skip_failing = false;
    std::string previous;
    std::vector<dns::Nameserver> nameservers;
    int timeout_ms = 2000, retries = 1;
    std::string output, rbldnsd;
    std::vector<std::string> ns;
    std::string hostmaster;
    uint32_t ttl = 3600;
    util::Day today = 0;
};

long parse_number(const std::string& opt, const char* s, long lo, long hi) {
    char* end = nullptr;
    errno = 0;
    long v = std::strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        usage(opt + ": \"" + s + "\" is not a number from " + std::to_string(lo) + " to " +
              std::to_string(hi));
    return v;
}

enum Opt {
    opt_zone = 256,
    opt_format,
    opt_no_dns,
    opt_allow_special,
    opt_allow_generic_ptr,
    opt_skip_failing,
    opt_previous,
    opt_nameserver,
    opt_rbldnsd,
    opt_jobs,
    opt_timeout_ms,
    opt_retries,
    opt_budget,
    opt_ns,
    opt_hostmaster,
    opt_ttl,
    opt_date,
    opt_help,
    opt_version,
};

// The options of `command` (registry takes the DNS-check ones too).
std::vector<option> long_options(bool reg) {
    std::vector<option> longs = {
        {"zone", required_argument, nullptr, opt_zone},
        {"output", required_argument, nullptr, 'o'},
        {"rbldnsd", required_argument, nullptr, opt_rbldnsd},
        {"previous", required_argument, nullptr, opt_previous},
        {"ns", required_argument, nullptr, opt_ns},
        {"hostmaster", required_argument, nullptr, opt_hostmaster},
        {"ttl", required_argument, nullptr, opt_ttl},
        {"date", required_argument, nullptr, opt_date},
        {"help", no_argument, nullptr, opt_help},
        {"version", no_argument, nullptr, opt_version},
    };
    if (reg) {
        longs.insert(longs.end(), {
                                      {"format", required_argument, nullptr, opt_format},
                                      {"no-dns", no_argument, nullptr, opt_no_dns},
                                      {"allow-special", no_argument, nullptr, opt_allow_special},
                                      {"allow-generic-ptr", no_argument, nullptr, opt_allow_generic_ptr},
                                      {"skip-failing", no_argument, nullptr, opt_skip_failing},
                                      {"nameserver", required_argument, nullptr, opt_nameserver},
                                      {"jobs", required_argument, nullptr, opt_jobs},
                                      {"timeout-ms", required_argument, nullptr, opt_timeout_ms},
                                      {"retries", required_argument, nullptr, opt_retries},
                                      {"budget", required_argument, nullptr, opt_budget},
                                  });
    }

    longs.push_back({nullptr, 0, nullptr, 0});
    return longs;
}

// One option (getopt_long's `c`, as written `name`, its value `v`) into `a`;
// a bad value, --help and --version exit here.
void apply_option(Args& a, int c, const std::string& name, const std::string& v) {
    switch (c) {
        case opt_zone: {
            a.zone = dns::canonical_name(v);
            break;
        }
        case 'o':
            a.output = v;
            break;
        case opt_rbldnsd:
            a.rbldnsd = v;
            break;
        case opt_previous:
            a.previous = v;
            break;
        case opt_ns: {
            std::string n = dns::canonical_name(v);
            std::string why = dns::check_domain(n);
            if (!why.empty()) usage("--ns: " + why);
            a.ns.push_back(n);
            break;
        }
        case opt_hostmaster:
            if (dns::soa_mailbox(v).empty())
                usage("--hostmaster: \"" + v + "\" is not a mailbox (user@domain)");
            a.hostmaster = v;
            break;
        case opt_ttl:
            a.ttl = uint32_t(parse_number("--ttl", v.c_str(), 1, 604800));
            break;
        case opt_date: {
            auto d = util::parse_date(v);
            if (!d) usage("--date: \"" + v + "\" is not a YYYY-MM-DD date");
            a.today = *d;
            break;
        }
        case opt_format:
            if (v == "dashed") {
                a.forms = {true, false};
            } else if (v == "reversed") {
                a.forms = {false, true};
            } else if (v == "both") {
                a.forms = {true, true};
            } else {
                usage("--format: \"" + v + "\" is not dashed, reversed or both");
            }
            break;
        case opt_no_dns:
            a.checks.dns = false;
            break;
        case opt_allow_special:
            a.checks.allow_special = true;
            break;
        case opt_allow_generic_ptr:
            a.checks.allow_generic_ptr = true;
            break;
        case opt_skip_failing:
            a.skip_failing = true;
            break;
        case opt_nameserver: {
            std::string err;
            auto ns = dns::parse_nameserver(v, err);
            if (!ns) usage("--nameserver: " + err);
            a.nameservers.push_back(*ns);
            break;
        }
        case opt_jobs:
            a.checks.jobs = int(parse_number("--jobs", v.c_str(), 1, 1000));
            break;
        case opt_timeout_ms:
            a.timeout_ms = int(parse_number("--timeout-ms", v.c_str(), 100, 30000));
            break;
        case opt_retries:
            a.retries = int(parse_number("--retries", v.c_str(), 0, 10));
            break;
        case opt_budget:
            a.checks.budget = std::chrono::seconds(parse_number("--budget", v.c_str(), 1, 86400));
            break;
        case 'h':
        case opt_help:
            std::fputs(usage_text, stdout);
            std::exit(0);
        case opt_version:
            std::printf("regmilter-zone %s\n", util::version);
            std::exit(0);
        case ':':
            usage(name + " needs a value");
        default:
            usage("unknown option \"" + (optopt && optopt < 256 ? std::string("-") + char(optopt) : name) +
                  "\" for " + a.command);
    }
}

Args parse_args(int argc, char** argv) {
    Args a;
    a.today = util::Day(std::time(nullptr) / 86400);
    if (argc < 2) usage("no command (registry or optout)");
    const std::string first = argv[1];
    if (first == "--help" || first == "-h") {
        std::fputs(usage_text, stdout);
        std::exit(0);
    }
    if (first == "--version") {
        std::printf("regmilter-zone %s\n", util::version);
        std::exit(0);
    }
    if (first != "registry" && first != "optout")
        usage("unknown command \"" + first + "\" (want registry or optout)");
    a.command = first;
    const bool reg = a.command == "registry";

    std::vector<option> longs = long_options(reg);

    char** sub = argv + 1;
    const int subc = argc - 1;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(subc, sub, ":ho:", longs.data(), nullptr)) != -1) {
        const std::string name = optind - 1 < subc ? sub[optind - 1] : "";
        const std::string v = optarg ? optarg : "";
        apply_option(a, c, name, v);
    }
    if (optind >= subc) usage(std::string("no input file (") + (reg ? "REGISTRATIONS" : "BULK-TABLE") + ")");
    if (optind + 1 < subc) usage("more than one input file (\"" + std::string(sub[optind + 1]) + "\")");
    a.input = sub[optind];
    if (a.zone.empty()) usage("--zone is required");
    std::string why = reg ? registry::check_zone_name(a.zone, a.forms) : bulk::check_optout_zone_name(a.zone);
    if (!why.empty()) usage("--zone: " + why);
    // One entry: a PTR and an A/AAAA lookup, each up to timeout_ms * (retries + 1).
    a.checks.entry_timeout = std::chrono::milliseconds(2 * a.timeout_ms * (a.retries + 1) + 500);
    return a;
}

bool read_input(const std::string& path, std::string& text) {
    std::string error;
    if (util::read_file(path, text, error)) return true;
    std::fprintf(stderr, "regmilter-zone: cannot read %s: %s\n", path.c_str(), error.c_str());
    return false;
}

// The serial of this build: rising over --previous (a missing file is a first
// build) or, without it, over the -o file when that holds a zone already.
bool choose_serial(const Args& a, uint32_t& serial) {
    std::string d = util::format_date(a.today);  // "YYYY-MM-DD"
    const uint32_t ymd = uint32_t(std::stoul(d.substr(0, 4) + d.substr(5, 2) + d.substr(8, 2)));
    std::optional<uint32_t> previous;
    const std::string& path = a.previous.empty() ? a.output : a.previous;
    if (!path.empty()) {
        std::string text, error;
        if (util::read_file(path, text, error)) {
            previous = dns::read_soa_serial(text, error);
            if (!previous && !a.previous.empty()) {
                std::fprintf(stderr, "regmilter-zone: %s: %s (the new serial must rise above it)\n",
                             path.c_str(), error.c_str());
                return false;
            }
        } else if (!a.previous.empty() && error != std::strerror(ENOENT)) {
            std::fprintf(stderr, "regmilter-zone: cannot read %s: %s\n", path.c_str(), error.c_str());
            return false;
        }
    }
    serial = dns::next_serial(previous, ymd);
    return true;
}

// Writes one output atomically; false (message printed) on failure.
bool write_output(const std::string& path, const std::function<void(std::ostream&)>& fill) {
    if (path == "-") {
        fill(std::cout);
        std::cout.flush();
        return bool(std::cout);
    }
    util::AtomicFile f(path);
    if (f.ok()) fill(f.stream());
    if (!f.commit()) {
        std::fprintf(stderr, "regmilter-zone: %s\n", f.error().c_str());
        return false;
    }
    return true;
}

dns::ZoneHead head_of(const Args& a, uint32_t serial) {
    dns::ZoneHead h;
    h.zone = a.zone;
    h.nameservers = a.ns;
    h.hostmaster = a.hostmaster;
    h.serial = serial;
    h.ttl = a.ttl;
    h.minimum = std::min<uint32_t>(300, a.ttl);
    return h;
}

// Writes the zone file (-o, or standard output when neither output is given)
// and the rbldnsd dataset; false when one could not be written.
bool write_outputs(const Args& a, const std::function<void(std::ostream&)>& zone,
                   const std::function<void(std::ostream&)>& rbl) {
    bool ok = true;
    if (!a.output.empty() || a.rbldnsd.empty())
        ok = write_output(a.output.empty() ? "-" : a.output, zone) && ok;
    if (!a.rbldnsd.empty()) ok = write_output(a.rbldnsd, rbl) && ok;
    return ok;
}

int run_registry(const Args& a) {
    std::string text;
    if (!read_input(a.input, text)) return 1;
    dns::ResolverOptions ro;
    ro.nameservers = a.nameservers;
    ro.timeout_ms = a.timeout_ms;
    ro.retries = a.retries;
    auto factory = [&ro]() -> std::unique_ptr<dns::Resolver> {
        return std::make_unique<dns::LdnsResolver>(ro);
    };
    registry::CheckedFile checked = registry::check_registrations(text, a.input, a.today, a.checks, factory);
    for (const auto& p : checked.problems) std::fprintf(stderr, "%s\n", p.str().c_str());
    const size_t entries = checked.passed.size() + checked.lines_failed;
    const bool failed = checked.lines_failed > 0;
    if (failed && !a.skip_failing) {
        std::fprintf(stderr,
                     "regmilter-zone: %zu of %zu entries failed; nothing written (--skip-failing builds from "
                     "the rest)\n",
                     checked.lines_failed, entries);
        return 1;
    }
    uint32_t serial = 0;
    if (!choose_serial(a, serial)) return 1;
    registry::PublishSettings s;
    s.head = head_of(a, serial);
    s.forms = a.forms;
    s.comments = {
        "regmilter-zone registry " + std::string(util::version) + ", built " + util::format_date(a.today),
        std::to_string(checked.passed.size()) + " servers from " + a.input +
            (a.checks.dns ? "" : " (--no-dns: DNS checks skipped)")};
    const registry::Publication publication(checked.passed, a.forms);
    bool ok = write_outputs(
        a, [&](std::ostream& o) { publication.write_zone(o, s); },
        [&](std::ostream& o) { publication.write_rbldnsd(o, s); });
    if (!ok) return 1;
    std::fprintf(stderr, "regmilter-zone: %s: %zu servers published, %zu failed, serial %u\n", a.zone.c_str(),
                 checked.passed.size(), checked.lines_failed, serial);
    return failed ? 1 : 0;
}

int run_optout(const Args& a) {
    std::string text;
    if (!read_input(a.input, text)) return 1;
    bulk::Entries read = bulk::read_entries(text, a.input);
    for (const auto& e : read.problems) std::fprintf(stderr, "%s\n", e.str().c_str());
    if (!read.problems.empty()) {
        std::fprintf(stderr, "regmilter-zone: %s has errors; nothing written\n", a.input.c_str());
        return 1;
    }
    uint32_t serial = 0;
    if (!choose_serial(a, serial)) return 1;
    dns::ZoneHead head = head_of(a, serial);
    std::vector<std::string> comments = {
        "regmilter-zone optout " + std::string(util::version) + ", built " + util::format_date(a.today),
        "labels: base32(SHA-256(address)); 127.0.0.2 opted out, 127.0.0.3 opted in"};
    bool ok = write_outputs(
        a, [&](std::ostream& o) { bulk::write_optout_zone(o, read.entries, head, comments); },
        [&](std::ostream& o) { bulk::write_optout_rbldnsd(o, read.entries, head, comments); });
    if (!ok) return 1;
    std::fprintf(stderr, "regmilter-zone: %s: %zu entries published, serial %u\n", a.zone.c_str(),
                 read.entries.size(), serial);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Args a = parse_args(argc, argv);
    try {
        return a.command == "registry" ? run_registry(a) : run_optout(a);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "regmilter-zone: %s\n", e.what());
        return 1;
    }
}
