// daemon channel: one message per SOCK_SEQPACKET packet, the form of the
// master-worker channels (worker.hpp lists the messages). Shared by the
// supervisor and the relay in the master and by the worker. Decides
// nothing; never throws; any thread, one reader per descriptor.
#pragma once

#include <string>

namespace regmilter::daemon {

// Sends `m` as one packet (retried on EINTR; no SIGPIPE). `wait`: blocks
// while the channel is full. False when the channel is gone, or full and
// not `wait`.
bool send_message(int fd, const std::string& m, bool wait = true);

enum class Received {
    message,  // `out` holds the packet (at most 8192 bytes)
    nothing,  // none waiting (only without `wait`)
    ended,    // the other end closed, or the descriptor failed
};
// Receives one packet into `out`; `wait`: blocks until one comes.
Received receive_message(int fd, std::string& out, bool wait);

}  // namespace regmilter::daemon
