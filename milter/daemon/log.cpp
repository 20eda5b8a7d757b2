#include "log.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

#include "util/text.hpp"

namespace regmilter::daemon {

namespace {
bool g_stderr = false;
std::function<void(int, std::string_view)> g_sink;  // set by tests before any thread starts
}  // namespace

bool stderr_is_journal() {
    // systemd sets JOURNAL_STREAM=DEVICE:INODE for the stream it gives as
    // stdout/stderr (systemd.exec(5)); a redirected stderr no longer matches.
    const char* js = std::getenv("JOURNAL_STREAM");
    struct stat st {};
    if (!js || fstat(STDERR_FILENO, &st) != 0) return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2) return false;
    return dev == static_cast<unsigned long long>(st.st_dev) &&
           ino == static_cast<unsigned long long>(st.st_ino);
}

void log_open(bool foreground) {
    g_stderr = foreground && !stderr_is_journal();
    openlog("regmilter", LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void log_facility(config::SyslogFacility facility) {
    static constexpr int codes[] = {LOG_MAIL,   LOG_DAEMON, LOG_USER,   LOG_LOCAL0, LOG_LOCAL1, LOG_LOCAL2,
                                    LOG_LOCAL3, LOG_LOCAL4, LOG_LOCAL5, LOG_LOCAL6, LOG_LOCAL7};
    static_assert(sizeof codes / sizeof codes[0] ==
                  sizeof config::syslog_facility_names / sizeof(const char*));
    closelog();
    openlog("regmilter", LOG_PID | LOG_NDELAY, codes[static_cast<int>(facility)]);
}

bool log_to_stderr() {
    return g_stderr;
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
