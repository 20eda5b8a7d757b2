// registry: --registry-info's lookup of every zone (listed or not, code,
// class, TXT metadata parsed) and its text and JSON, over an in-memory resolver.
#include <catch2/catch.hpp>

#include <sstream>

#include "dns/memory_resolver.hpp"
#include "registry/info.hpp"

using namespace regmilter;
using dns::RrType;
using registry::Info;

namespace {

registry::Zone zone_of(const char* name, const char* zone, registry::Meaning meaning,
                       registry::Format format) {
    registry::Zone z;
    z.name = name;
    z.zone = zone;
    z.meaning = meaning;
    z.format = format;
    z.bulk_codes = {*net::Address::parse("127.0.0.3")};
    return z;
}

}  // namespace

TEST_CASE("registry info: every zone's answer, class and metadata", "[registry][info]") {
    dns::MemoryResolver dns;
    dns.add("192-0-2-10.reg.test", RrType::a, "127.0.0.2");
    dns.add("192-0-2-10.reg.test", RrType::txt, "registered=2024-01-15 updated=2024-06-01 contact=REG-1");
    dns.add("10.2.0.192.rev.test", RrType::a, "127.0.0.3");
    dns.add("10.2.0.192.rev.test", RrType::txt, "registered=2024-02-01 contact=bad/handle junk");
    dns.add_empty("10.2.0.192.bl.test");
    dns.add_failure("192-0-2-10.broken.test", dns::DnsStatus::servfail);
    const std::vector<registry::Zone> zones = {
        zone_of("reg", "reg.test", registry::Meaning::registered, registry::Format::dashed),
        zone_of("rev", "rev.test", registry::Meaning::registered, registry::Format::reversed),
        zone_of("bl", "bl.test", registry::Meaning::blocked, registry::Format::reversed),
        zone_of("broken", "broken.test", registry::Meaning::registered, registry::Format::dashed),
    };
    const net::Address ip = *net::Address::parse("::ffff:192.0.2.10");  // mapped: asked as IPv4
    std::vector<Info> infos;
    for (const auto& z : zones) infos.push_back(registry::lookup_info(dns, ip, z, dns::no_deadline()));
    CHECK(dns.unexpected().empty());
    REQUIRE(infos.size() == 4);
    struct Want {
        registry::Status status;
        const char* code;
        const char* klass;
        const char* registered;
        const char* updated;
        const char* contact;
    };
    const Want want[] = {
        {registry::Status::listed, "127.0.0.2", "regular", "2024-01-15", "2024-06-01", "REG-1"},
        {registry::Status::listed, "127.0.0.3", "bulk", "2024-02-01", "", ""},  // a bad handle stays empty
        {registry::Status::unlisted, "", "", "", "", ""},
        {registry::Status::error, "", "", "", "", ""},
    };
    for (size_t i = 0; i < infos.size(); ++i) {
        INFO(infos[i].entry.zone);
        CHECK(infos[i].entry.status == want[i].status);
        CHECK(infos[i].entry.code == want[i].code);
        CHECK(infos[i].klass == want[i].klass);
        CHECK(infos[i].metadata.registered == want[i].registered);
        CHECK(infos[i].metadata.updated == want[i].updated);
        CHECK(infos[i].metadata.contact == want[i].contact);
    }

    std::string j = registry::info_json(ip, infos);
    CHECK(
        j.rfind(
            "{\"ip\":\"192.0.2.10\",\"registry\":[{\"name\":\"reg\",\"zone\":\"reg.test\",\"query\":"
            "\"192-0-2-10.reg.test\",\"status\":\"listed\",\"code\":\"127.0.0.2\",\"meaning\":\"registered\","
            "\"info\":\"registered=2024-01-15 updated=2024-06-01 contact=REG-1\",\"error\":\"\","
            "\"class\":\"regular\",\"registered\":\"2024-01-15\",\"updated\":\"2024-06-01\",\"contact\":"
            "\"REG-1\",\"metadata\":{\"registered\":\"2024-01-15\",\"updated\":\"2024-06-01\",\"contact\":"
            "\"REG-1\"}}",
            0) == 0);
    CHECK(
        j.find(
            "\"name\":\"rev\",\"zone\":\"rev.test\",\"query\":\"10.2.0.192.rev.test\",\"status\":\"listed\","
            "\"code\":\"127.0.0.3\",\"meaning\":\"bulk\",\"info\":\"registered=2024-02-01 contact=bad/handle "
            "junk\",\"error\":\"\",\"class\":\"bulk\"") != std::string::npos);
    CHECK(j.find(
              "\"name\":\"bl\",\"zone\":\"bl.test\",\"query\":\"10.2.0.192.bl.test\",\"status\":\"unlisted\","
              "\"code\":\"\",\"meaning\":\"blocked\",\"info\":\"\",\"error\":\"\",\"class\":\"\"") !=
          std::string::npos);
    CHECK(
        j.find("\"name\":\"broken\",\"zone\":\"broken.test\",\"query\":\"192-0-2-10.broken.test\",\"status\":"
               "\"error\"") != std::string::npos);

    std::ostringstream text;
    registry::write_info_text(text, ip, infos);
    CHECK(text.str().rfind("ip: 192.0.2.10\n"
                           "registry reg (reg.test): listed 127.0.0.2 regular\n"
                           "  query: 192-0-2-10.reg.test\n"
                           "  registered: 2024-01-15\n"
                           "  updated: 2024-06-01\n"
                           "  contact: REG-1\n"
                           "  txt: \"registered=2024-01-15 updated=2024-06-01 contact=REG-1\"\n"
                           "registry rev (rev.test): listed 127.0.0.3 bulk\n",
                           0) == 0);
    CHECK(text.str().find("registry bl (bl.test): not listed\n  query: 10.2.0.192.bl.test\n") !=
          std::string::npos);
    CHECK(text.str().find("registry broken (broken.test): error: ") != std::string::npos);
}

TEST_CASE("registry info: a listing in a block-list is class blocked", "[registry][info]") {
    dns::MemoryResolver dns;
    dns.add("7.100.51.198.bl.test", RrType::a, "127.0.0.2");
    auto z = zone_of("bl", "bl.test", registry::Meaning::blocked, registry::Format::reversed);
    Info i = registry::lookup_info(dns, *net::Address::parse("198.51.100.7"), z, dns::no_deadline());
    CHECK(i.klass == "blocked");
    CHECK(i.entry.code == "127.0.0.2");
    CHECK(registry::class_of(registry::Entry{}) == "");
}
