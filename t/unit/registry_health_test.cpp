// registry health (RFC 5782 §5): the test points' answers to an outcome,
// Health's transitions, a broken zone's lookups under on_error in a
// Session, and the daemon's HealthMonitor (checks, one log line per change,
// recheck after a reload). Hermetic: MemoryResolver.
#include <catch2/catch.hpp>

#include "../support/config_fixture.hpp"
#include "../support/session_fixture.hpp"

#include "milter/daemon/health_monitor.hpp"
#include "milter/daemon/log.hpp"
#include "registry/health.hpp"
#include "registry/zone_writer.hpp"

#include <sstream>

using namespace regmilter;
using policy::Action;
using registry::Family;
using registry::Probe;
using regmilter::testing::cfg_of;
using regmilter::testing::environment_of;
using regmilter::testing::runtime_of;

namespace {

registry::Zone zone_of(const char* z, registry::Format f = registry::Format::dashed) {
    registry::Zone r;
    r.name = "r";
    r.zone = z;
    r.format = f;
    return r;
}

// The four test-point names of a dashed zone "reg.example".
const char* const v4_listed = "127-0-0-2.reg.example";
const char* const v4_unlisted = "127-0-0-1.reg.example";
const char* const v6_listed = "0000-0000-0000-0000-0000-ffff-7f00-0002.reg.example";
const char* const v6_unlisted = "0000-0000-0000-0000-0000-ffff-7f00-0001.reg.example";

void healthy_points(dns::MemoryResolver& dns) {
    dns.add(v4_listed, dns::RrType::a, "127.0.0.2");
    dns.add(v6_listed, dns::RrType::a, "127.0.0.2");
    dns.add_empty(v4_unlisted);  // NODATA: not listed
    dns.add_empty(v6_unlisted);
}

}  // namespace

TEST_CASE("health: test point names in both forms and families", "[health]") {
    struct Case {
        registry::Format f;
        Family fam;
        bool listed;
        const char* want;
    };
    const Case cases[] = {
        {registry::Format::dashed, Family::v4, true, "127-0-0-2.z.example"},
        {registry::Format::dashed, Family::v4, false, "127-0-0-1.z.example"},
        {registry::Format::reversed, Family::v4, true, "2.0.0.127.z.example"},
        {registry::Format::reversed, Family::v4, false, "1.0.0.127.z.example"},
        {registry::Format::dashed, Family::v6, true, "0000-0000-0000-0000-0000-ffff-7f00-0002.z.example"},
        {registry::Format::reversed, Family::v6, false,
         "1.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.z.example"},
    };
    for (const auto& c : cases) {
        std::string got = registry::test_point_name(zone_of("z.example", c.f), c.fam, c.listed);
        INFO("got " << got << ", want " << c.want);
        CHECK(got == c.want);
    }
}

TEST_CASE("health: the test points' answers to healthy, broken or unknown", "[health]") {
    struct Case {
        const char* name;
        std::function<void(dns::MemoryResolver&)> setup;
        Probe::Outcome want;
        const char* detail;  // part of the detail
    };
    const Case cases[] = {
        {"healthy: 127.0.0.2 listed, 127.0.0.1 NXDOMAIN",
         [](dns::MemoryResolver& d) { d.add(v4_listed, dns::RrType::a, "127.0.0.2"); },
         Probe::Outcome::healthy, ""},
        {"healthy: 127.0.0.2 listed with another 127/8 code",
         [](dns::MemoryResolver& d) { d.add(v4_listed, dns::RrType::a, "127.0.0.10"); },
         Probe::Outcome::healthy, ""},
        {"dark: 127.0.0.2 NXDOMAIN", [](dns::MemoryResolver&) {}, Probe::Outcome::broken,
         "test point 127.0.0.2 is not listed (nxdomain)"},
        {"dark: 127.0.0.2 NODATA", [](dns::MemoryResolver& d) { d.add_empty(v4_listed); },
         Probe::Outcome::broken, "test point 127.0.0.2 is not listed (nodata)"},
        {"lists the world: 127.0.0.1 answered",
         [](dns::MemoryResolver& d) {
             d.add(v4_listed, dns::RrType::a, "127.0.0.2");
             d.add(v4_unlisted, dns::RrType::a, "127.0.0.2");
         },
         Probe::Outcome::broken, "test point 127.0.0.1 is listed (127.0.0.2): the zone lists every address"},
        {"refused: 127.255.255.254 at 127.0.0.2",
         [](dns::MemoryResolver& d) { d.add(v4_listed, dns::RrType::a, "127.255.255.254"); },
         Probe::Outcome::broken, "the registry refused the query"},
        {"timeout: says nothing",
         [](dns::MemoryResolver& d) { d.add_failure(v4_listed, dns::DnsStatus::timeout); },
         Probe::Outcome::unknown, "test point 127.0.0.2: timeout"},
        {"SERVFAIL at 127.0.0.1: says nothing",
         [](dns::MemoryResolver& d) {
             d.add(v4_listed, dns::RrType::a, "127.0.0.2");
             d.add_failure(v4_unlisted, dns::DnsStatus::servfail);
         },
         Probe::Outcome::unknown, "test point 127.0.0.1: servfail"},
        {"broken beats unknown",
         [](dns::MemoryResolver& d) { d.add_failure(v4_unlisted, dns::DnsStatus::timeout); },
         Probe::Outcome::broken, "is not listed"},
    };
    for (const auto& c : cases) {
        dns::MemoryResolver dns;
        c.setup(dns);
        Probe p = registry::check(dns, zone_of("reg.example"), Family::v4, dns::no_deadline());
        INFO(c.name << ": got " << registry::to_string(p.outcome) << " \"" << p.detail << "\", want "
                    << registry::to_string(c.want) << " with \"" << c.detail << "\"");
        CHECK(p.outcome == c.want);
        CHECK(p.detail.find(c.detail) != std::string::npos);
        CHECK(dns.log() ==
              std::vector<std::string>{std::string(v4_listed) + "/A", std::string(v4_unlisted) + "/A"});
    }
}

TEST_CASE("health: IPv6 test points are asked as IPv6 names", "[health]") {
    dns::MemoryResolver dns;
    dns.add(v6_listed, dns::RrType::a, "127.0.0.2");
    dns.add(v6_unlisted, dns::RrType::a, "127.0.0.2");
    Probe p = registry::check(dns, zone_of("reg.example"), Family::v6, dns::no_deadline());
    CHECK(p.outcome == Probe::Outcome::broken);
    CHECK(p.detail == "test point ::FFFF:7F00:1 is listed (127.0.0.2): the zone lists every address");
}

TEST_CASE("health: transitions are reported once; unknown changes nothing", "[health]") {
    registry::Health h;
    registry::Zone z = zone_of("reg.example");
    using T = registry::Health::Transition;
    const Probe ok{Probe::Outcome::healthy, ""};
    const Probe dark{Probe::Outcome::broken, "test point 127.0.0.2 is not listed (nxdomain)"};
    const Probe world{Probe::Outcome::broken, "test point 127.0.0.1 is listed"};
    const Probe unknown{Probe::Outcome::unknown, "timeout"};
    CHECK(h.record(z, Family::v4, ok) == T::none);  // healthy from the start: nothing to say
    CHECK(h.broken(z, Family::v4).empty());
    CHECK(h.record(z, Family::v4, dark) == T::broke);
    CHECK(h.broken_count() == 1);
    CHECK(h.broken(z, Family::v4) == dark.detail);
    CHECK(h.broken(z, Family::v6).empty());            // each family on its own
    CHECK(h.record(z, Family::v4, world) == T::none);  // still broken: no second line
    CHECK(h.broken(z, Family::v4) == world.detail);
    CHECK(h.record(z, Family::v4, unknown) == T::none);  // a DNS outage says nothing about the zone
    CHECK(h.broken(z, Family::v4) == world.detail);
    CHECK(h.record(z, Family::v4, ok) == T::recovered);
    CHECK(h.broken(z, Family::v4).empty());
    CHECK(h.broken_count() == 0);

    CHECK(h.record(z, Family::v6, dark) == T::broke);
    h.retain({registry::health_key(z)});
    CHECK(h.broken_count() == 1);
    h.retain({});  // the zone left the configuration
    CHECK(h.broken_count() == 0);
    CHECK(h.broken(z, Family::v6).empty());
}

namespace {

// reg.example an allow-list (unregistered = reject), bl.example a block-list (listed = reject).
std::string two_zones(const char* on_error) {
    return std::string("[milter]\nauthserv_id = mx.example.org\n[trust]\nnetworks =\n") +
           "[registry reg]\nzone = reg.example\nunregistered = reject\non_error = " + on_error +
           "\n[registry bl]\nzone = bl.example\nformat = reversed\nmeaning = blocked\nlisted = "
           "reject\non_error = " +
           on_error + "\n[spf]\nnone = accept\n";
}

policy::Reply mail_of(std::shared_ptr<policy::Runtime> rt, const char* ip, std::string* log = nullptr) {
    policy::Session s(environment_of(rt));
    policy::ConnectInfo c;
    c.ip = net::Address::parse(ip);
    s.connect(c);
    s.helo("mail.example.com", {});
    policy::Reply r = s.mail("<a@example.com>", {});
    if (log) *log = r.log;
    return r;
}

}  // namespace

TEST_CASE("health: a broken zone's lookups get its on_error, for its family only", "[health][session]") {
    dns::MemoryResolver dns;
    dns.set_strict(false);  // the zones answer NXDOMAIN for everything: unregistered, not listed
    dns.add("7.2.0.192.bl.example", dns::RrType::a, "127.0.0.2");  // 192.0.2.7 block-listed
    dns.add("example.com", dns::RrType::txt, "v=spf1 ?all");

    // Healthy (never checked): unregistered and listed clients are refused.
    auto rt = runtime_of(cfg_of(two_zones("accept")), dns);
    rt->health = std::make_shared<registry::Health>();
    CHECK(mail_of(rt, "192.0.2.66").code == "550");
    CHECK(mail_of(rt, "192.0.2.7").code == "550");

    const auto& cfg = *rt->config;
    const registry::Zone& reg = cfg.registries[0];
    const registry::Zone& bl = cfg.registries[1];
    // The allow-list went dark, the block-list lists the world: neither refuses anyone.
    rt->health->record(reg, Family::v4,
                       {Probe::Outcome::broken, "test point 127.0.0.2 is not listed (nxdomain)"});
    rt->health->record(bl, Family::v4,
                       {Probe::Outcome::broken, "test point 127.0.0.1 is listed (127.0.0.2)"});
    std::string log;
    policy::Reply r = mail_of(rt, "192.0.2.66", &log);
    INFO(log);
    CHECK(r.action == Action::continue_);
    CHECK(log.find("registry:error:reg.example") != std::string::npos);
    r = mail_of(rt, "192.0.2.7", &log);
    CHECK(r.action == Action::continue_);
    // IPv6 clients: the IPv6 test points passed (never failed), so the zone still refuses.
    CHECK(mail_of(rt, "2001:db8::66").code == "550");

    // on_error = tempfail: 451 4.4.3 for the broken zone, never a 5xx.
    auto rt2 = runtime_of(cfg_of(two_zones("tempfail")), dns);
    rt2->health = rt->health;
    r = mail_of(rt2, "192.0.2.66", &log);
    CHECK(r.code == "451");
    CHECK(r.xcode == "4.4.3");
    CHECK(r.text.find("zone failed its RFC 5782 health check: test point 127.0.0.2 is not listed") !=
          std::string::npos);

    // Passes again: refusals come back.
    rt->health->record(reg, Family::v4, {Probe::Outcome::healthy, ""});
    rt->health->record(bl, Family::v4, {Probe::Outcome::healthy, ""});
    CHECK(mail_of(rt, "192.0.2.66").code == "550");
    CHECK(mail_of(rt, "192.0.2.7").code == "550");
}

namespace {

struct LogCapture {
    std::vector<std::string> lines;
    LogCapture() {
        daemon::log_to([this](int, std::string_view l) { lines.emplace_back(l); });
    }
    ~LogCapture() { daemon::log_to(nullptr); }
    int count(const std::string& part) const {
        int n = 0;
        for (const auto& l : lines) n += l.find(part) != std::string::npos;
        return n;
    }
};

}  // namespace

TEST_CASE("health monitor: checks at start, logs each change once, rechecks after a reload",
          "[health][daemon]") {
    LogCapture log;
    dns::MemoryResolver good, dark;
    healthy_points(good);
    dark.add_empty(v6_listed);  // every test point unanswered but 127.0.0.1: dark for both families
    dns::MemoryResolver* serving = &good;
    auto cfg = cfg_of(
        "[milter]\nauthserv_id = mx.example.org\n[registry reg]\nzone = reg.example\n"
        "health_interval = 60\n[registry off]\nzone = off.example\nhealth_interval = 0\n");
    auto rt = runtime_of(cfg, good);
    rt->health = std::make_shared<registry::Health>();
    auto mu = std::make_shared<std::mutex>();
    rt->upstream = [&serving, mu]() -> std::unique_ptr<dns::Resolver> {
        return std::make_unique<testing::LockedResolver>(*serving, mu);
    };
    daemon::Service service("");
    service.install(rt);
    daemon::HealthMonitor monitor(service, false, rt->upstream);
    using namespace std::chrono;
    auto t0 = steady_clock::now();

    monitor.check_due(t0);          // start: every zone with health_interval > 0
    CHECK(good.log().size() == 4);  // two families, two test points; "off" never asked
    CHECK(good.unexpected().empty());
    CHECK(log.lines.empty());  // healthy: nothing to say

    serving = &dark;
    monitor.check_due(t0 + seconds(30));  // not due yet
    CHECK(dark.log().empty());
    monitor.check_due(t0 + seconds(61));
    CHECK(dark.log().size() == 4);
    CHECK(log.count(
              "registry reg (zone reg.example): broken for IPv4 clients: test point 127.0.0.2 is not listed "
              "(nxdomain); on_error = accept applies to its lookups") == 1);
    CHECK(log.count("broken for IPv6 clients: test point ::FFFF:7F00:2 is not listed (nodata)") == 1);
    CHECK(!rt->health->broken(rt->config->registries[0], Family::v4).empty());
    monitor.check_due(t0 + seconds(122));
    CHECK(dark.log().size() == 8);
    CHECK(log.count("broken for") == 2);  // still broken: no new lines

    // A reload (a new configuration) is checked at once, whatever the interval.
    serving = &good;
    auto rt2 = std::make_shared<policy::Runtime>(*rt);
    rt2->config = cfg_of("[milter]\nauthserv_id = mx.example.org\n[registry reg]\nzone = reg.example\n");
    service.install(rt2);
    monitor.check_due(t0 + seconds(123));
    CHECK(good.log().size() == 8);
    CHECK(log.count("registry reg (zone reg.example): healthy again for IPv4 clients") == 1);
    CHECK(log.count("healthy again for IPv6 clients") == 1);
    CHECK(rt->health->broken_count() == 0);
}

TEST_CASE("health: the zones regmilter-zone writes pass their own health check", "[health]") {
    registry::Registration r;
    r.ip = *net::Address::parse("192.0.2.10");
    r.hostname = "mail.example.org";
    r.contact = "H1";
    registry::PublishSettings s;
    s.head.zone = "reg.example";
    s.forms.dashed = s.forms.reversed = true;
    std::ostringstream out;
    registry::write_zone(out, {r}, s);
    // The A records ("OWNER\tIN\tA\tCODE", owners relative to the zone) into a resolver.
    dns::MemoryResolver dns;
    dns.set_strict(false);
    std::istringstream in(out.str());
    int records = 0;
    for (std::string line; std::getline(in, line);) {
        auto a = line.find("\tIN\tA\t");
        if (a == std::string::npos || a == 0) continue;
        dns.add(line.substr(0, a) + ".reg.example", dns::RrType::a, line.substr(a + 6));
        ++records;
    }
    CHECK(records == 6);  // two forms of the two test points and the server
    for (auto f : {registry::Format::dashed, registry::Format::reversed})
        for (auto fam : {Family::v4, Family::v6}) {
            Probe p = registry::check(dns, zone_of("reg.example", f), fam, dns::no_deadline());
            INFO(util::name_of(f) << " " << registry::to_string(fam) << ": " << p.detail);
            CHECK(p.outcome == Probe::Outcome::healthy);
        }
}
