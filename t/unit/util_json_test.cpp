// util: the JSON writer escapes every byte into valid one-line JSON.
#include <catch2/catch.hpp>

#include "util/json.hpp"

using regmilter::util::json_quote;
using regmilter::util::JsonWriter;

TEST_CASE("json_quote escapes quotes, control and 8-bit bytes", "[util]") {
    CHECK(json_quote("plain") == "\"plain\"");
    CHECK(json_quote("a\"b\\c") == "\"a\\\"b\\\\c\"");
    CHECK(json_quote("l1\nl2\t\r") == "\"l1\\nl2\\t\\r\"");
    CHECK(json_quote(std::string_view("\0\x01\x7f\x96", 4)) == "\"\\u0000\\u0001\\u007f\\u0096\"");
}

TEST_CASE("JsonWriter nests objects and arrays with commas in the right places", "[util]") {
    JsonWriter w;
    w.begin_object().key("a").value(1).key("b").begin_array().value("x").value(true).null().end_array();
    w.key("c").begin_object().end_object().key("d").begin_array().begin_object().key("e").value("f");
    w.end_object().end_array().end_object();
    CHECK(w.str() == R"({"a":1,"b":["x",true,null],"c":{},"d":[{"e":"f"}]})");
}
