// daemon proxy: the master's relay between the MTA and the libmilter worker.
// It accepts every milter connection on the public socket, connects it to
// the current worker's private unix socket, and relays both ways: each MTA
// packet only after lib/milter's check_command() passed it (a bad one is
// logged with its reason and the session closed), the worker's replies as
// they are, tracking which MTA commands still await an answer. It adds the
// session macro (milter::session_macro) to the connect-stage macros. When a
// session's worker connection breaks, the master answers what is owed, and
// everything owed later, itself (the crash policy below); when no worker is
// up, the MTA's bytes are held for up to hold_limit. It decides nothing about
// mail and starts no process: the supervisor says where the worker is.
// Thread-safety: run() on one thread; stop(), worker_up(), worker_down(),
// begin_drain(), close_idle(), hold_channel() and counters() from any
// thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "policy/replies.hpp"
#include "policy/settings.hpp"

namespace regmilter::daemon {

// The master's id of one MTA connection (from 1), also the value of the
// session macro the worker reads.
using SessionId = std::uint64_t;

// What the hold hook is told: the packet, and what the session said before
// it (the views live for the call only).
struct HoldRequest {
    SessionId id = 0;
    char command = 0;                 // 'M' or 'R'
    std::string_view data;            // the packet's data: NUL-terminated arguments
    std::string_view client_address;  // the connect packet's address ("" for a unix or unknown client)
    std::string_view helo;            // the HELO argument, "" before one
    int channel = -1;                 // the hold channel (Proxy::hold_channel), -1 when none
};

struct ProxySettings {
    // What the master answers, in a broken session, each command owed an
    // answer: tempfail ("451 4.3.0 tempfail_text") or, with accept, a
    // "continue" ("this check lets it pass", as the worker's own internal
    // errors do) — except end of headers, body and end of message, which
    // are always tempfailed: only the worker removes forged
    // Authentication-Results headers.
    policy::OnInternalError on_internal_error = policy::OnInternalError::tempfail;
    std::string tempfail_text = policy::replies::internal_error_text;
    // How long the MTA's bytes wait for a worker (none up, or its socket
    // refusing), and how long a held MAIL or RCPT waits for its release.
    std::chrono::milliseconds hold_limit{5000};
    // Bytes queued toward one side (per session and direction) beyond which
    // the other side is no longer read until they drain (back-pressure).
    std::size_t buffer_limit = 256 * 1024;
    // Called on the relay's thread before a MAIL ('M') or RCPT ('R') packet
    // goes to the worker; true holds it, and everything after it in the
    // session, until a release message on the hold channel or hold_limit. May be empty. Must not block.
    std::function<bool(const HoldRequest&)> hold;
};

// For logs and tests; each a snapshot.
struct ProxyCounters {
    std::uint64_t open = 0;             // sessions now open
    std::uint64_t accepted = 0;         // MTA connections accepted
    std::uint64_t refused_packets = 0;  // packets refused by check_command() or the framing
    std::uint64_t orphaned = 0;         // sessions whose worker connection broke, or that never got one
    std::uint64_t master_answers = 0;   // answers the master gave in a worker's place
    std::uint64_t worker_connects = 0;  // connections made to a worker
    std::uint64_t early_rcpts = 0;      // RCPT TO answered at once on the worker's hint
};

class Proxy {
public:
    // `listen_fd`: the public socket, listening; set non-blocking here, never
    // closed (the caller owns it). Throws std::system_error when the epoll
    // set or the wakeup descriptor cannot be made.
    Proxy(int listen_fd, ProxySettings settings);
    ~Proxy();
    Proxy(const Proxy&) = delete;
    Proxy& operator=(const Proxy&) = delete;

    // Relays until stop(); every open session is then closed.
    void run();
    void stop();
    // New sessions (and those waiting for one) connect to the worker
    // listening at `unix_path`; sessions already relayed keep theirs.
    void worker_up(std::string unix_path);
    // No worker now: new sessions wait (hold_limit) for worker_up().
    void worker_down();
    // Stop accepting; open sessions run on. `take_backlog`: the connections
    // already waiting in the listen backlog are accepted first (the caller
    // is about to close the socket, which would reset them).
    void begin_drain(bool take_backlog = false);
    // Close every session that is between transactions (no answer owed, no
    // message under way), now and from then on as each one gets there.
    void close_idle();
    // The relay's thread reads releases from `fd` (SOCK_SEQPACKET, one
    // "ready\tID" per packet: the MAIL or RCPT the hold hook held for ID
    // goes on) and hints ("rcpt\tID\tN": every RCPT TO of session ID's N-th
    // MAIL, counting those libmilter took, is continue: the relay answers
    // them at once, relays them still, and drops the worker's answers), and
    // gives `fd` to the hold hook as HoldRequest::channel, to ask for
    // releases on. The proxy owns `fd`: it closes it at its end of file (then
    // every held session is released), at the next hold_channel(), and at
    // destruction.
    void hold_channel(int fd);
    // What the master answers in a broken session from now on (SIGHUP).
    void set_answers(policy::OnInternalError on_internal_error, std::string tempfail_text);
    // True once the relay's thread took begin_drain(): it no longer touches
    // the listening socket, which the caller may then shut down and close.
    bool drained_listen() const;

    ProxyCounters counters() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace regmilter::daemon
