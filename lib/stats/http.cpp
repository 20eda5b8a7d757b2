#include "stats/http.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace regmilter::stats::http {

namespace {

using State = Request::State;

Request bad(std::string why) {
    Request r;
    r.state = State::bad;
    r.error = std::move(why);
    return r;
}

// RFC 9110 §5.6.2 tchar.
bool token_char(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

// A line without its end (CRLF or LF); npos when it has not ended yet.
size_t line_end(std::string_view s, size_t from, size_t& next) {
    size_t lf = s.find('\n', from);
    if (lf == std::string_view::npos) return lf;
    next = lf + 1;
    return lf > from && s[lf - 1] == '\r' ? lf - 1 : lf;
}

bool has_control(std::string_view s) {
    for (char c : s) {
        unsigned char u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t') || u == 0x7f) return true;
    }
    return false;
}

Request parse_request_line(std::string_view line) {
    if (has_control(line)) return bad("control characters in the request line");
    size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos || sp1 == 0) return bad("no method");
    size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return bad("no HTTP version");
    std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                     version = line.substr(sp2 + 1);
    for (char c : method)
        if (!token_char(c)) return bad("bad method");
    if (version.find(' ') != std::string_view::npos) return bad("spaces in the target");
    Request r;
    // RFC 9112 §2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[5] < '0' || version[5] > '9' ||
        version[6] != '.' || version[7] < '0' || version[7] > '9')
        return bad("bad HTTP version");
    if (version[5] != '1') r.state = State::bad_version;
    // RFC 9112 §3.2: origin-form, or absolute-form.
    constexpr std::string_view scheme = "http://";
    if (target.size() > scheme.size() && target.substr(0, scheme.size()) == scheme) {
        size_t slash = target.find('/', scheme.size());
        target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
    if (target.empty() || target[0] != '/') return bad("the target is not a path");
    r.method = std::string(method);
    r.path = std::string(target.substr(0, target.find('?')));
    r.version = std::string(version);
    return r;
}

}  // namespace

Request parse_request(std::string_view received, size_t limit) {
    size_t pos = 0, next = 0;
    // Empty lines before the request line are skipped (RFC 9112 §2.2).
    for (;;) {
        size_t end = line_end(received, pos, next);
        if (end == std::string_view::npos) {
            // A control byte is garbage at once (a last \r may be half a CRLF).
            std::string_view rest = received.substr(pos);
            if (!rest.empty() && rest.back() == '\r') rest.remove_suffix(1);
            if (has_control(rest)) return bad("control characters in the request line");
            Request r;
            if (received.size() > limit) r.state = State::too_large;
            return r;
        }
        if (end > pos) break;
        pos = next;
    }
    size_t end = line_end(received, pos, next);
    Request r = parse_request_line(received.substr(pos, end - pos));
    if (r.state == State::bad) return r;
    State parsed = r.state;
    // Header lines up to the empty line; only their shape is checked.
    for (pos = next;;) {
        end = line_end(received, pos, next);
        if (end == std::string_view::npos) {
            if (received.size() > limit)
                r.state = State::too_large;
            else
                r.state = State::incomplete;
            return r;
        }
        if (next > limit) {
            r.state = State::too_large;
            return r;
        }
        std::string_view line = received.substr(pos, end - pos);
        if (line.empty()) break;
        if (line[0] == ' ' || line[0] == '\t') return bad("folded header line");
        size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) return bad("header line without a name");
        for (char c : line.substr(0, colon))
            if (!token_char(c)) return bad("bad header name");
        if (has_control(line)) return bad("control characters in a header");
        pos = next;
    }
    r.state = parsed == State::bad_version ? State::bad_version : State::complete;
    return r;
}

std::string response_head(int status, std::string_view reason, size_t content_length,
                          std::string_view content_type, std::string_view extra_headers) {
    std::string h = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
    h += "Content-Type: " + std::string(content_type) + "\r\n";
    h += "Content-Length: " + std::to_string(content_length) + "\r\n";
    h += extra_headers;
    h += "Connection: close\r\n\r\n";
    return h;
}

namespace {

std::string plain(int status, std::string_view reason, std::string_view body, std::string_view extra = {}) {
    std::string text = std::string(body) + "\n";
    return response_head(status, reason, text.size(), "text/plain; charset=utf-8", extra) + text;
}

}  // namespace

std::string respond(const Request& r, const std::function<std::string()>& metrics) {
    switch (r.state) {
        case State::incomplete:
        case State::bad:
            return plain(400, "Bad Request", "bad request" + (r.error.empty() ? "" : ": " + r.error));
        case State::too_large:
            return plain(431, "Request Header Fields Too Large",
                         "request head longer than " + std::to_string(max_request) + " bytes");
        case State::bad_version:
            return plain(505, "HTTP Version Not Supported", "HTTP/1.0 and HTTP/1.1 only");
        case State::complete:
            break;
    }
    bool head = r.method == "HEAD";
    if (r.method != "GET" && !head)
        return plain(405, "Method Not Allowed", "only GET and HEAD", "Allow: GET, HEAD\r\n");
    if (r.path != "/metrics") return plain(404, "Not Found", "not found: the counters are at /metrics");
    std::string body = metrics();
    std::string out = response_head(200, "OK", body.size(), "text/plain; version=0.0.4; charset=utf-8");
    if (!head) out += body;
    return out;
}

std::string timeout_response() {
    return plain(408, "Request Timeout", "the request did not arrive in time");
}

// ---- the client ----

namespace {

struct Fd {
    int fd = -1;
    ~Fd() {
        if (fd >= 0) close(fd);
    }
};

std::string errno_text() {
    return std::strerror(errno);
}

// Milliseconds left until `until` (at least 0).
int left_ms(std::chrono::steady_clock::time_point until) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Waits for `events` on fd until `until`; false on a timeout.
bool wait_for(int fd, short events, std::chrono::steady_clock::time_point until) {
    for (;;) {
        pollfd p{fd, events, 0};
        int n = poll(&p, 1, left_ms(until));
        if (n > 0) return true;
        if (n == 0) return false;
        if (errno != EINTR) return false;
    }
}

}  // namespace

Fetched fetch(const net::Endpoint& where, std::string_view path, std::chrono::milliseconds timeout,
              size_t max_bytes) {
    Fetched out;
    const std::string addr = where.str();
    const auto until = std::chrono::steady_clock::now() + timeout;
    auto fail = [&](std::string why) {
        out.ok = false;
        out.error = std::move(why);
        return out;
    };
    sockaddr_storage ss;
    socklen_t len = where.to_sockaddr(ss);
    Fd s;
    s.fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s.fd < 0) return fail("cannot make a socket: " + errno_text());
    if (connect(s.fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        if (errno != EINPROGRESS) return fail("cannot connect to " + addr + ": " + errno_text());
        if (!wait_for(s.fd, POLLOUT, until))
            return fail("cannot connect to " + addr + " within " + std::to_string(timeout.count()) + " ms");
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err != 0) return fail("cannot connect to " + addr + ": " + std::strerror(err));
    }
    std::string request = "GET " + std::string(path) + " HTTP/1.0\r\nHost: " + addr +
                          "\r\nUser-Agent: regmilter-query\r\nAccept: text/plain\r\n\r\n";
    for (size_t sent = 0; sent < request.size();) {
        if (!wait_for(s.fd, POLLOUT, until))
            return fail("no answer from " + addr + " within " + std::to_string(timeout.count()) + " ms");
        ssize_t n = send(s.fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n < 0) return fail("cannot send to " + addr + ": " + errno_text());
        sent += static_cast<size_t>(n);
    }
    std::string got;
    char buf[16384];
    for (;;) {
        if (!wait_for(s.fd, POLLIN, until))
            return fail("no answer from " + addr + " within " + std::to_string(timeout.count()) + " ms");
        ssize_t n = recv(s.fd, buf, sizeof buf, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n < 0) return fail("cannot read from " + addr + ": " + errno_text());
        if (n == 0) break;
        got.append(buf, static_cast<size_t>(n));
        if (got.size() > max_bytes)
            return fail(addr + " sent more than " + std::to_string(max_bytes) + " bytes");
    }
    size_t head_end = got.find("\r\n\r\n");
    size_t line_end = got.find("\r\n");
    if (got.substr(0, 5) != "HTTP/" || head_end == std::string::npos || line_end == std::string::npos)
        return fail(addr + " did not answer in HTTP" + (got.empty() ? " (it closed the connection)" : ""));
    std::string status_line = got.substr(0, line_end);
    size_t sp = status_line.find(' ');
    std::string status = sp == std::string::npos ? "" : status_line.substr(sp + 1);
    if (status.substr(0, 4) != "200 " && status != "200")
        return fail(addr + " answered " + (status.empty() ? status_line : status));
    out.ok = true;
    out.body = got.substr(head_end + 4);
    return out;
}

}  // namespace regmilter::stats::http
