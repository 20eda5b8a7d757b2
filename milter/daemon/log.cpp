#include "log.hpp"

#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <string>

#include "util/text.hpp"

namespace regmilter::daemon {

namespace {
bool g_stderr = false;
std::function<void(int, std::string_view)> g_sink;  // set by tests before any thread starts
}  // namespace

void log_open(bool to_stderr) {
    g_stderr = to_stderr;
    openlog("regmilter", LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void log_to(std::function<void(int, std::string_view)> sink) {
    g_sink = std::move(sink);
}

void log_line(int priority, std::string_view line) {
    std::string text = util::sanitize(line, util::TextUse::log_line);
    if (g_sink) {
        g_sink(priority, text);
        return;
    }
    syslog(priority, "%s", text.c_str());
    if (!g_stderr) return;
    char stamp[32];
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    std::string out = std::string(stamp) + " regmilter[" + std::to_string(getpid()) + "]: " + text + "\n";
    // One write(2) per line so that lines from several threads never interleave.
    ssize_t ignored = write(STDERR_FILENO, out.data(), out.size());
    (void)ignored;
}

void log_reply(const policy::Reply& r) {
    if (r.log.empty()) return;
    int priority = r.log_level == policy::LogLevel::error     ? LOG_ERR
                   : r.log_level == policy::LogLevel::warning ? LOG_WARNING
                                                              : LOG_INFO;
    log_line(priority, r.log);
}

}  // namespace regmilter::daemon
