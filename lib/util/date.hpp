// util: calendar days (UTC) for dates in files (enforce_after, registration
// dates): parse and print YYYY-MM-DD, and the day of a time point. Pure
// functions; thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace regmilter::util {

// Days since 1970-01-01 (UTC).
using Day = int64_t;

// "2026-03-01" -> days since the epoch; nullopt unless a real calendar date
// written as exactly YYYY-MM-DD, year 1970 or later.
std::optional<Day> parse_date(std::string_view text);
// YYYY-MM-DD.
std::string format_date(Day d);
// The UTC day a time point falls in (rounding toward the past).
Day day_of(std::chrono::system_clock::time_point t);
// 00:00 UTC of a day.
std::chrono::system_clock::time_point start_of(Day d);

}  // namespace regmilter::util
