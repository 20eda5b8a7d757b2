#include "util/date.hpp"

#include <cstdio>

namespace regmilter::util {

namespace {

// Howard Hinnant's days_from_civil and civil_from_days (public-domain
// algorithms, "chrono-Compatible Low-Level Date Algorithms").
Day days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = unsigned(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + int64_t(doe) - 719468;
}

}  // namespace

std::optional<Day> parse_date(std::string_view t) {
    if (t.size() != 10 || t[4] != '-' || t[7] != '-') return std::nullopt;
    for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9})
        if (t[i] < '0' || t[i] > '9') return std::nullopt;
    auto num = [&](size_t pos, size_t n) {
        int v = 0;
        for (size_t i = pos; i < pos + n; ++i) v = v * 10 + (t[i] - '0');
        return v;
    };
    int y = num(0, 4), m = num(5, 2), d = num(8, 2);
    if (y < 1970 || m < 1 || m > 12 || d < 1) return std::nullopt;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    int max = mdays[m - 1] + (m == 2 && leap ? 1 : 0);
    if (d > max) return std::nullopt;
    return days_from_civil(y, unsigned(m), unsigned(d));
}

std::string format_date(Day z) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = unsigned(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = int64_t(yoe) + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u", static_cast<long long>(y), m, d);
    return buf;
}

Day day_of(std::chrono::system_clock::time_point t) {
    auto s = std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
    return s >= 0 ? s / 86400 : (s - 86399) / 86400;
}

std::chrono::system_clock::time_point start_of(Day d) {
    return std::chrono::system_clock::time_point(std::chrono::seconds(d * 86400));
}

}  // namespace regmilter::util
