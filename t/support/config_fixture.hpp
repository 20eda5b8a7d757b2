// Unit-test helper: a validated Config from ini text, failing the test (with
// the first error as context) when the text does not load. Include after
// <catch2/catch.hpp>. Header-only; no state.
#pragma once

#include <memory>
#include <string>

#include "config/config.hpp"

namespace regmilter::testing {

inline std::shared_ptr<const config::Config> cfg_of(const std::string& text) {
    auto r = config::load_string(text, "t.ini");
    INFO((r.problems.empty() ? std::string() : r.problems[0].str()));
    REQUIRE(r.value);
    return r.value;
}

}  // namespace regmilter::testing
