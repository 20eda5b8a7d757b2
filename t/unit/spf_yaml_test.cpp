// t/support/yaml: the reader the openspf suite runner depends on, over the
// constructs the suite uses (documents, nested maps, sequences of one-key
// maps, flow sequences, every scalar style, escapes, comments).
#include <catch2/catch.hpp>

#include <string>

#include "../support/yaml.hpp"

using namespace regmilter;

TEST_CASE("spf: yaml reader: the openspf suite's constructs", "[spf][yaml]") {
    const std::string text = R"(# header comment
---
description: First
tests:
  plain:
    description: a plain scalar
      continued on the next line
    comment: >-
      folded
      text

        more indented
    literal: |
      one
      two
    helo: mail.example.net   # trailing comment
    host: CAFE:BABE::1
    mailfrom: ""
    result: [fail, permerror]
  quoted:
    helo: "%%%%"
    mailfrom: 'it''s'
    result: pass
    explanation: DEFAULT
zonedata:
  example.com:
    - TIMEOUT
    - SPF:  "v=spf1 a:\xEF\xBB\xBFx.example.net\0 -all"
    - TXT: [ "v=spf1 ip4:", '192.0.2.5 -all' ]
    - TXT: [ ]
    - MX: [0, ""]
  "macro%percent  space.example.com":
    - A: 1.2.3.4
---
description: Second
tests: {}
)";
    yaml::Documents d = yaml::parse(text);
    INFO("error: " << d.error);
    REQUIRE(d.ok());
    REQUIRE(d.docs.size() == 2);
    const yaml::Node& doc = d.docs[0];
    REQUIRE(doc.get("description"));
    CHECK(doc.get("description")->value == "First");
    const yaml::Node* tests = doc.get("tests");
    REQUIRE(tests);
    REQUIRE(tests->entries.size() == 2);
    CHECK(tests->entries[0].first == "plain");
    const yaml::Node& plain = tests->entries[0].second;
    CHECK(plain.get("description")->value == "a plain scalar continued on the next line");
    CHECK(plain.get("comment")->value == "folded text\n\n  more indented");
    CHECK(plain.get("literal")->value == "one\ntwo\n");
    CHECK(plain.get("helo")->value == "mail.example.net");
    CHECK(plain.get("host")->value == "CAFE:BABE::1");
    CHECK(plain.get("mailfrom")->is_scalar());
    CHECK(plain.get("mailfrom")->value.empty());
    REQUIRE(plain.get("result")->is_seq());
    REQUIRE(plain.get("result")->items.size() == 2);
    CHECK(plain.get("result")->items[1].value == "permerror");
    const yaml::Node& quoted = tests->entries[1].second;
    CHECK(quoted.get("helo")->value == "%%%%");
    CHECK(quoted.get("mailfrom")->value == "it's");
    CHECK(quoted.get("explanation")->value == "DEFAULT");

    const yaml::Node* zone = doc.get("zonedata");
    REQUIRE(zone);
    REQUIRE(zone->entries.size() == 2);
    const yaml::Node& ex = zone->entries[0].second;
    REQUIRE(ex.is_seq());
    REQUIRE(ex.items.size() == 5);
    CHECK(ex.items[0].value == "TIMEOUT");
    REQUIRE(ex.items[1].get("SPF"));
    CHECK(ex.items[1].get("SPF")->value == std::string("v=spf1 a:\xEF\xBB\xBFx.example.net\0 -all", 31));
    REQUIRE(ex.items[2].get("TXT")->items.size() == 2);
    CHECK(ex.items[2].get("TXT")->items[1].value == "192.0.2.5 -all");
    CHECK(ex.items[3].get("TXT")->is_seq());
    CHECK(ex.items[3].get("TXT")->items.empty());
    CHECK(ex.items[4].get("MX")->items[1].value.empty());
    CHECK(zone->entries[1].first == "macro%percent  space.example.com");
}

TEST_CASE("spf: yaml reader: malformed input is an error with a line number", "[spf][yaml]") {
    const char* bad[] = {
        "a: \"unterminated\n", "a: [1, 2\n", "a: \"\\q\"\n", "a:\n  - x\n  y: z\n", "just text\n",
    };
    for (const char* t : bad) {
        yaml::Documents d = yaml::parse(t);
        INFO("input \"" << t << "\": error \"" << d.error << "\"");
        CHECK_FALSE(d.ok());
        CHECK(d.error.rfind("line ", 0) == 0);
    }
}
