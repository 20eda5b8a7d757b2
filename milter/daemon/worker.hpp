// daemon worker: the libmilter process. The master (master.hpp) starts it
// by executing its own binary again with REGMILTER_WORKER=FD:HOLD:DIR in
// the environment: it serves libmilter on DIR/worker.sock (a private
// directory of the master's, mode 0700) and talks to the master over two
// SOCK_SEQPACKET socket pairs, one message a packet. FD, the channel (the
// master's supervisor thread):
//
//   worker -> master   "up"             listening: the master may connect sessions
//   master -> worker   "reload"         SIGHUP reached the master: configuration and table again
//
// HOLD, the hold channel (the master's relay thread, Proxy::hold_channel):
//
//   master -> worker   "prefetch\tID\tADDRESS\tHELO\tMAIL"
//                                       the master holds session ID's MAIL FROM: look up
//                                       what its callback will ask, on a thread of the worker's
//                                       own, bounded by stage_timeout_ms
//   worker -> master   "ready\tID"      the prefetch of session ID is done (or ran out of time)
//   worker -> master   "rcpt\tID\tN"    every RCPT TO of session ID's N-th transaction is
//                                       answered continue (the MAIL FROM callback, before
//                                       its reply): the master answers them itself
//
// The end of the channel (the master exits or dies) ends the worker at once.
// Signals: every thread blocks all of them; the main thread takes SIGHUP,
// SIGTERM and SIGINT and only logs that they belong to the master (which
// sends none: it speaks over the channel), so libmilter's own signal
// thread, which stops the milter on any of them, is not the one that gets
// them. The worker never calls smfi_stop(): it ends with _exit() once the
// master is gone, sparing libmilter's shutdown path.
#pragma once

#include <string>

namespace regmilter::daemon {

// The environment variable that makes the program a worker. Internal: not a
// user interface.
constexpr const char* worker_env = "REGMILTER_WORKER";

// What a worker is told at start: its channels and private directory.
struct WorkerPlace {
    int channel = -1;
    int hold = -1;
    std::string dir;
};
// Parses REGMILTER_WORKER's value ("FD:HOLD:DIR"); false when malformed.
bool parse_worker_env(const std::string& value, WorkerPlace& out);

// The socket of the worker in `dir`.
std::string worker_socket(const std::string& dir);

// Runs the worker until the channel ends; returns the exit status (1 when
// it cannot start: configuration problems, the socket).
int run_worker(const std::string& config_path, bool foreground, const WorkerPlace& place);

}  // namespace regmilter::daemon
