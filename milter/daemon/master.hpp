// daemon master: the process that owns the public milter socket. It never
// calls libmilter: a Proxy (proxy.hpp) relays every MTA connection to the
// worker (worker.hpp), the libmilter process it starts by executing its own
// binary again, and restarts when it dies (the model of Postfix's master).
// While no worker is up the MTA's connections wait (no connection is
// refused); sessions whose worker died are answered by the Proxy per
// [milter] on_internal_error. A MAIL FROM is held while the worker looks up
// its answers ahead on threads of its own, so that libmilter's threads never
// wait for DNS (libmilter runs a ready session only when one of its threads
// is idle).
//
// Signals, on the calling thread only (every other thread blocks them all):
// SIGHUP re-reads what the master uses (on_internal_error, drain_timeout)
// and tells the worker to reload; SIGTERM or SIGINT stops accepting (a unix
// socket file is removed first, the connections already in the backlog are
// taken, then the socket is closed), waits for the open sessions at most
// [milter] drain_timeout, then closes those between transactions, gives
// the others `stop_grace`, and exits; the worker ends with it.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "process.hpp"

namespace regmilter::daemon {

// After the drain deadline: how long sessions in the middle of a
// transaction may still run before the master closes them.
constexpr std::chrono::seconds stop_grace{3};

struct MasterPlace {
    int listen_fd = -1;     // the public socket, listening (owned: closed at drain)
    std::string unix_path;  // its file, removed at drain when still ours; "" for inet
    FileId socket_file;
    std::string private_dir;  // made by the caller, mode 0700: the worker's socket goes here
    std::string config_path;  // absolute: the worker reads it
    bool foreground = false;
};

// The private directory of the worker's socket: in $RUNTIME_DIRECTORY
// (systemd), else beside the public unix socket, else beside the pid file,
// else in /tmp; made 0700 and, when `owner` is set (started as root),
// given to it. Returns the path, or "" and `error`.
std::string make_private_dir(const std::string& socket_path, const std::string& pid_file, const User* owner,
                             std::string& error);
// Removes the worker's socket and the directory.
void remove_private_dir(const std::string& dir);

// Runs until SIGTERM or SIGINT has been carried out; returns the exit status.
// The caller has blocked every signal in every thread.
int run_master(const MasterPlace& place, const config::Config& cfg);

}  // namespace regmilter::daemon
