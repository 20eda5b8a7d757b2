// http-probe: one TCP connection to an HTTP server that sends exactly the
// bytes it is told (well-formed or not, whole or in part) and reports what
// came back, for integration tests of the statistics endpoint (bad requests,
// oversized heads, clients that stop half-way). Bounded: at most
// --timeout-ms from connect to the end.
//
//   http-probe --connect IP:PORT [--send TEXT]... [--pad N] [--hold-ms MS]
//              [--timeout-ms MS] [--body]
//
//   --send TEXT   bytes to send, in order (\r \n \t \0 \xHH \\ escapes)
//   --pad N       then N bytes of 'a' (an oversized request head)
//   --hold-ms MS  then wait MS before reading (a client that stops)
//   --body        print the response body after the summary
// Prints one line:
//   status=CODE elapsed_ms=MS bytes=N     the server answered (CODE from its status line)
//   status=closed elapsed_ms=MS           it closed the connection without a byte
//   status=reset elapsed_ms=MS            it reset the connection
//   status=timeout elapsed_ms=MS          nothing ended within --timeout-ms
//   status=refused                        the connection was refused
// Exit: 0 when a status line was printed, 2 on bad usage.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <thread>

#include "../support/unescape.hpp"
#include "net/endpoint.hpp"
#include "util/cli.hpp"

namespace {

using namespace regmilter;
using Clock = std::chrono::steady_clock;

const char usage_text[] =
    "usage: http-probe --connect IP:PORT [--send TEXT]... [--pad N] [--hold-ms MS] [--timeout-ms MS] "
    "[--body]\n";

using testing::unescape;

long ms_since(Clock::time_point t) {
    return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count());
}

}  // namespace

int main(int argc, char** argv) {
    enum { o_connect = 256, o_send, o_pad, o_hold, o_timeout, o_body };
    const util::Cli cli("http-probe", usage_text);
    std::optional<net::Endpoint> where;
    std::string payload;
    long hold_ms = 0, timeout_ms = 10000;
    bool body = false;
    auto rest = cli.parse(argc, argv,
                          {{"connect", 0, true, o_connect},
                           {"send", 0, true, o_send},
                           {"pad", 0, true, o_pad},
                           {"hold-ms", 0, true, o_hold},
                           {"timeout-ms", 0, true, o_timeout},
                           {"body", 0, false, o_body}},
                          [&](int id, const char* v) {
                              std::string error;
                              switch (id) {
                                  case o_connect:
                                      where = net::parse_endpoint(v, 0, "--connect", error);
                                      if (!where) cli.fail(error);
                                      break;
                                  case o_send:
                                      payload += unescape(v);
                                      break;
                                  case o_pad:
                                      payload +=
                                          std::string(size_t(cli.number("--pad", v, 0, 10000000)), 'a');
                                      break;
                                  case o_hold:
                                      hold_ms = cli.number("--hold-ms", v, 0, 600000);
                                      break;
                                  case o_timeout:
                                      timeout_ms = cli.number("--timeout-ms", v, 1, 600000);
                                      break;
                                  case o_body:
                                      body = true;
                                      break;
                              }
                          });
    if (!rest.empty()) cli.fail("unexpected argument \"" + rest.front() + "\"");
    if (!where) cli.fail("--connect is required");

    sockaddr_storage ss;
    socklen_t len = where->to_sockaddr(ss);
    const auto start = Clock::now();
    const auto until = start + std::chrono::milliseconds(timeout_ms);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        std::cout << "status=refused" << std::endl;
        return 0;
    }
    // Sent in pieces, so that a server that answers early is not fought.
    bool reset = false;
    for (size_t sent = 0; sent < payload.size() && !reset;) {
        ssize_t n =
            send(fd, payload.data() + sent, std::min<size_t>(4096, payload.size() - sent), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            reset = true;  // EPIPE, ECONNRESET: the server is done with us
            break;
        }
        sent += size_t(n);
    }
    if (hold_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
    std::string got;
    char buf[65536];
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
        if (left <= 0) {
            if (got.empty()) {
                std::cout << "status=timeout elapsed_ms=" << ms_since(start) << std::endl;
                close(fd);
                return 0;
            }
            break;
        }
        pollfd p{fd, POLLIN, 0};
        int r = poll(&p, 1, int(left));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
            got.append(buf, size_t(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && got.empty()) {
            std::cout << "status=reset elapsed_ms=" << ms_since(start) << std::endl;
            close(fd);
            return 0;
        }
        break;
    }
    close(fd);
    if (got.empty()) {
        std::cout << "status=closed elapsed_ms=" << ms_since(start) << std::endl;
        return 0;
    }
    std::string line = got.substr(0, got.find("\r\n"));
    size_t sp = line.find(' ');
    std::string code = sp == std::string::npos ? line : line.substr(sp + 1, 3);
    std::cout << "status=" << code << " elapsed_ms=" << ms_since(start) << " bytes=" << got.size()
              << std::endl;
    if (body) {
        size_t head = got.find("\r\n\r\n");
        std::cout << (head == std::string::npos ? got : got.substr(head + 4));
    }
    return 0;
}
