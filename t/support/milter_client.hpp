// Test support: the MTA side of the milter protocol (version 6, as
// libmilter's mfdef.h defines it) — connect to a milter socket, send
// commands, read its responses with a time bound. For the test tools
// (milter-client, milter-bench); loopback and unix sockets only.
// Not thread-safe: one MilterConnection per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "net/endpoint.hpp"

namespace regmilter::testing {

// Commands (MTA -> milter) and responses (milter -> MTA): mfdef.h letters.
namespace milter_cmd {
constexpr char abort = 'A', body = 'B', connect = 'C', macro = 'D', end_of_body = 'E', helo = 'H',
               quit_nc = 'K', header = 'L', mail = 'M', end_of_headers = 'N', negotiate = 'O', quit = 'Q',
               rcpt = 'R', data = 'T', unknown = 'U';
}
// Protocol flags: steps the milter asks not to be sent, or not to be answered.
namespace milter_proto {
constexpr uint32_t no_connect = 0x1, no_helo = 0x2, no_mail = 0x4, no_rcpt = 0x8, no_body = 0x10,
                   no_headers = 0x20, no_eoh = 0x40, nr_header = 0x80, no_unknown = 0x100, no_data = 0x200,
                   nr_connect = 0x1000, nr_helo = 0x2000, nr_mail = 0x4000, nr_rcpt = 0x8000,
                   nr_data = 0x10000, nr_unknown = 0x20000, nr_eoh = 0x40000, nr_body = 0x80000;
}

struct MilterResponse {
    char code = 0;     // 'c' continue, 'a' accept, 'r' reject, 't' tempfail, 'y' replycode, 'd' discard,
                       // 'h' addheader, 'i' insheader, 'm' chgheader, '-' delrcpt, ... ; 0: none
    std::string body;  // as sent, without the code byte
    // One line for transcripts: "continue", "replycode 550 5.7.1 text",
    // "insheader 0 Name: value", "chgheader 1 Name: (removed)", "delrcpt <a@b>".
    std::string describe() const;
    // True for the responses that end a command (not edits, not progress).
    bool final() const;
};

// True when a connection to the unix socket at `path` is taken (a server
// listens there); the connection is closed at once.
bool unix_socket_answers(const std::string& path);

class MilterConnection {
public:
    MilterConnection() = default;
    ~MilterConnection();
    MilterConnection(const MilterConnection&) = delete;
    MilterConnection& operator=(const MilterConnection&) = delete;

    // Connects to a libmilter socket spec (unix:/PATH, inet:PORT@HOST,
    // inet6:PORT@HOST with an address for HOST). False and `error` on failure.
    bool open(const net::SocketSpec& socket, std::string& error);
    void close();
    bool is_open() const { return fd_ >= 0; }

    // Sends one packet (length, command, body).
    bool send(char cmd, const std::string& body);
    // Sends bytes as they are (malformed traffic).
    bool send_raw(const std::string& bytes);
    // Reads one response, waiting at most `timeout`. False on EOF, error,
    // timeout or a malformed response; `error` says which.
    bool receive(MilterResponse& r, std::chrono::milliseconds timeout, std::string& error);

    // Negotiation: what the milter answered.
    uint32_t version = 0, actions = 0, protocol = 0;

private:
    int fd_ = -1;
};

// Packet bodies.
std::string nul_terminated(const std::string& s);
std::string be32(uint32_t v);
std::string connect_body(const std::string& hostname, char family, uint16_t port, const std::string& address);
std::string negotiate_body(uint32_t version, uint32_t actions, uint32_t protocol);

}  // namespace regmilter::testing
