// Hostile input for config, bulk and registry parsing: fixed-seed random and
// mutated inputs must give a defined result (a config or errors, a table or
// errors), never a crash or a hang. Run under SANITIZE=address,undefined too.
#include <catch2/catch.hpp>

#include <random>
#include <string>

#include "bulk/bulk.hpp"
#include "config/config.hpp"
#include "registry/registry.hpp"

using namespace regmilter;

namespace {

std::string mutate(std::string s, std::mt19937& rng) {
    static const std::string alphabet = "[]=;#:\n\t \\\"'%{}@+,/.-0123456789abcdefxyz\r\x01\x7f\xff";
    int edits = 1 + int(rng() % 8);
    for (int i = 0; i < edits; ++i) {
        size_t pos = s.empty() ? 0 : rng() % s.size();
        switch (rng() % 4) {
            case 0:
                if (!s.empty()) s.erase(pos, 1 + rng() % 4);
                break;
            case 1:
                s.insert(pos, 1, alphabet[rng() % alphabet.size()]);
                break;
            case 2:
                if (!s.empty()) s[pos] = alphabet[rng() % alphabet.size()];
                break;
            case 3:
                s.insert(pos, s.substr(pos, rng() % 40));
                break;
        }
    }
    return s;
}

const char sample_config[] =
    "[milter]\nsocket = inet:8891@127.0.0.1\nmode = observe\n[resolver]\nnameservers = 127.0.0.1\n  "
    "[::1]:53\n"
    "[trust]\nnetworks = 10.0.0.0/8 ::1\n[registry r]\nzone = r.example\nenforce_after = 2026-03-01\n"
    "bulk_codes = 127.0.0.3\nreject_text = %{ip} %{zone}\n[spf]\nfail = tag\n[bulk]\nsenders = a.example "
    "192.0.2.0/24\n";

}  // namespace

TEST_CASE("config: mutated files give a config or errors, never a crash", "[config]") {
    std::mt19937 rng(20261201);
    size_t ok = 0, failed = 0;
    for (int i = 0; i < 3000; ++i) {
        std::string text = mutate(sample_config, rng);
        auto r = config::load_string(text, "fuzz.ini");
        // Exactly one of the two, and every error names a line inside the file.
        CHECK(bool(r.value) == r.problems.empty());
        for (const auto& e : r.problems) CHECK(e.line >= 1);
        (r.value ? ok : failed)++;
    }
    CHECK(ok > 0);
    CHECK(failed > 0);
    // Random bytes, long lines, deep repetition.
    for (int i = 0; i < 200; ++i) {
        std::string junk(size_t(rng() % 3000), '\0');
        for (auto& c : junk) c = char(rng());
        auto r = config::load_string(junk, "junk.ini");
        CHECK(bool(r.value) == r.problems.empty());
    }
    auto big = config::load_string(std::string(100000, '['), "big.ini");
    CHECK_FALSE(big.value);
}

TEST_CASE("bulk table and addresses: mutated input is parsed or refused", "[bulk]") {
    std::mt19937 rng(7);
    const std::string sample = "a@example.org accept\n@example.net reject # c\n\"q x\"@example.com reject\n";
    bulk::Settings cfg;
    for (int i = 0; i < 3000; ++i) {
        std::string text = mutate(sample, rng);
        auto l = bulk::Table::parse(text, "fuzz");
        CHECK(bool(l.value) == l.problems.empty());
        std::string addr = mutate("<@r1,@r2:\"us er\"+x@Example.ORG>", rng);
        std::string n = bulk::normalize(addr);
        CHECK(n.size() <= addr.size());
        CHECK(n.find_first_of("\r\n") == std::string::npos);
        bulk::lookup(l.value.get(), addr, cfg);
    }
}

TEST_CASE("registry: garbage answers are errors or listings, never a crash", "[registry]") {
    std::mt19937 rng(99);
    config::Registry z;
    z.zone = "r.example";
    z.bulk_codes = {*net::Address::parse("127.0.0.3")};
    for (int i = 0; i < 2000; ++i) {
        dns::DnsAnswer a;
        a.status = dns::DnsStatus::ok;
        int n = int(rng() % 4);
        for (int j = 0; j < n; ++j) a.rdata.push_back(mutate("127.0.0.2", rng));
        auto c = registry::classify(a, z);
        if (c.status == registry::Status::listed) {
            auto addr = net::Address::parse(c.code);
            REQUIRE(addr);
            CHECK(addr->in(*net::Address::parse("127.0.0.0"), 8));
            CHECK(c.code != "127.0.0.1");
        }
    }
}
