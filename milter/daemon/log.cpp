#include "log.hpp"

#include <unistd.h>
#include <cstdio>
#include <ctime>
#include <string>

namespace regmilter::daemon {

namespace {
bool g_stderr = false;

std::string clean(std::string_view line) {
    std::string out;
    out.reserve(line.size());
    char buf[8];
    for (unsigned char c : line) {
        if (c < 0x20 || c == 0x7f) {
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}
}  // namespace

void log_open(bool to_stderr) {
    g_stderr = to_stderr;
    openlog("regmilter", LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void log_line(int priority, std::string_view line) {
    std::string text = clean(line);
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

}  // namespace regmilter::daemon
