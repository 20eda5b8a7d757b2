// stats: the little HTTP the statistics endpoint speaks (RFC 9112, HTTP/1.0
// and 1.1, one request per connection, closed after the answer): reading a
// request head as it arrives, the answer to it, and the client that
// regmilter-query --stats fetches /metrics with. Requests are parsed, never
// trusted: bounded in size, control bytes refused. parse_request and respond
// do no I/O; fetch opens one TCP connection, bounded by its timeout.
// Reentrant.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "net/endpoint.hpp"

namespace regmilter::stats::http {

// The most bytes a request head (request line and header lines) may have.
inline constexpr size_t max_request = 8192;

struct Request {
    enum class State { incomplete, complete, bad, too_large, bad_version };
    State state = State::incomplete;
    std::string method;   // "GET"
    std::string path;     // "/metrics", without a "?query"
    std::string version;  // "HTTP/1.1"
    std::string error;    // bad: what is wrong
};

// The request head among the bytes received so far: incomplete until the
// empty line that ends it; bad as soon as the request line or a header line
// is malformed (a control byte, no method, no HTTP version, a folded header);
// too_large when `limit` bytes hold no end. A request line may end in CRLF or
// LF; empty lines before it are skipped (RFC 9112 §2.2). The target may be a
// path or an absolute URI (http://HOST/PATH).
Request parse_request(std::string_view received, size_t limit = max_request);

// The whole response to a request that is not incomplete, "Connection: close":
//   GET or HEAD /metrics   200, text/plain; version=0.0.4, body from `metrics`
//                          (HEAD: the same head, no body)
//   another path           404      another method   405, "Allow: GET, HEAD"
//   bad                    400      too_large        431
//   bad_version            505 (HTTP/2 and later; HTTP/1.0 and 1.1 are served)
std::string respond(const Request& r, const std::function<std::string()>& metrics);
// 408: the request head did not arrive in time.
std::string timeout_response();
// The status line and headers of a response with this body (no body added).
std::string response_head(int status, std::string_view reason, size_t content_length,
                          std::string_view content_type, std::string_view extra_headers = {});

// regmilter-query --stats: GET `path` from `where` over HTTP/1.0. On success
// `body`; otherwise `error` says what failed, naming the address ("cannot
// connect to 127.0.0.1:9100: Connection refused", "no answer from ... within
// 5000 ms", "... answered 404 Not Found", "... sent more than N bytes").
struct Fetched {
    bool ok = false;
    std::string body;
    std::string error;
};
Fetched fetch(const net::Endpoint& where, std::string_view path, std::chrono::milliseconds timeout,
              size_t max_bytes = 64 * 1024 * 1024);

}  // namespace regmilter::stats::http
