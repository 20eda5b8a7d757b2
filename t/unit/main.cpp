// The one Catch2 main for build/t/unit-tests; every t/unit/*.cpp adds TEST_CASEs.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
