// daemon log: syslog and, in the foreground, stderr too — but never both
// into the systemd journal. Decides only where a line goes; what a decision
// line says is policy::log_line's.
// Thread-safe (syslog(3) is; stderr lines are written whole with one write).
#pragma once

#include <syslog.h>

#include <functional>
#include <string_view>

#include "config/config.hpp"
#include "policy/policy.hpp"

namespace regmilter::daemon {

// Opens syslog as "regmilter" with LOG_PID, facility LOG_MAIL. `foreground`
// (regmilter -f) also copies every line to stderr, unless stderr is the
// systemd journal ($JOURNAL_STREAM names it), which gets syslog's copy.
void log_open(bool foreground);
// [milter] syslog_facility, for the lines from now on.
void log_facility(config::SyslogFacility facility);
// True when log_line also writes to stderr.
bool log_to_stderr();
// True when stderr is the systemd journal (JOURNAL_STREAM matches fd 2).
bool stderr_is_journal();

// One line at `priority` (LOG_ERR, LOG_WARNING, LOG_INFO, ...). Control
// bytes in `line` are written as \xHH so one call stays one line.
void log_line(int priority, std::string_view line);

// The decision line of a Reply, if it has one.
void log_reply(const policy::Reply& r);

// Tests: every line goes to `sink` instead (null: back to syslog/stderr).
void log_to(std::function<void(int priority, std::string_view line)> sink);

}  // namespace regmilter::daemon
