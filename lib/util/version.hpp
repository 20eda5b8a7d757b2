// util: the program version, one definition for every front end (--version,
// the start-up log line, the package). Decides nothing; thread-safe (constant).
#pragma once

namespace regmilter::util {

// "MAJOR.MINOR.PATCH", as in debian/changelog.
constexpr const char* version = "0.4.0";

}  // namespace regmilter::util
