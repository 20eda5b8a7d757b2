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
    INFO((r.errors.empty() ? std::string() : r.errors[0].str()));
    REQUIRE(r.config);
    return r.config;
}

}  // namespace regmilter::testing
