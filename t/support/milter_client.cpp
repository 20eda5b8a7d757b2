#include "milter_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace regmilter::testing {

namespace {

uint32_t get32(const std::string& s, size_t at) {
    uint32_t v;
    std::memcpy(&v, s.data() + at, 4);
    return ntohl(v);
}

// The NUL-terminated strings of a body, from `at`.
std::vector<std::string> strings_of(const std::string& body, size_t at) {
    std::vector<std::string> out;
    while (at < body.size()) {
        size_t nul = body.find('\0', at);
        if (nul == std::string::npos) nul = body.size();
        out.push_back(body.substr(at, nul - at));
        at = nul + 1;
    }
    return out;
}

}  // namespace

std::string nul_terminated(const std::string& s) {
    return s + '\0';
}

std::string be32(uint32_t v) {
    uint32_t n = htonl(v);
    return std::string(reinterpret_cast<const char*>(&n), 4);
}

std::string connect_body(const std::string& hostname, char family, uint16_t port,
                         const std::string& address) {
    std::string b = nul_terminated(hostname);
    b += family;
    if (family == '4' || family == '6') {
        uint16_t p = htons(port);
        b.append(reinterpret_cast<const char*>(&p), 2);
        b += nul_terminated(address);
    }
    return b;
}

std::string negotiate_body(uint32_t version, uint32_t actions, uint32_t protocol) {
    return be32(version) + be32(actions) + be32(protocol);
}

bool MilterResponse::final() const {
    return std::string_view("cartyds").find(code) != std::string_view::npos;
}

std::string MilterResponse::describe() const {
    switch (code) {
        case 'c':
            return "continue";
        case 'a':
            return "accept";
        case 'r':
            return "reject";
        case 't':
            return "tempfail";
        case 'd':
            return "discard";
        case 's':
            return "skip";
        case 'p':
            return "progress";
        case 'y': {
            std::string t = body;
            if (!t.empty() && t.back() == '\0') t.pop_back();
            return "replycode " + t;
        }
        case 'h':
        case 'i':
        case 'm': {
            if (body.size() < (code == 'h' ? 0u : 4u)) return std::string("malformed ") + code;
            size_t at = code == 'h' ? 0 : 4;
            auto s = strings_of(body, at);
            std::string name = s.size() > 0 ? s[0] : "", value = s.size() > 1 ? s[1] : "";
            std::string what = code == 'h' ? "addheader" : code == 'i' ? "insheader" : "chgheader";
            std::string index = code == 'h' ? "" : " " + std::to_string(get32(body, 0));
            if (code == 'm' && value.empty()) return what + index + " " + name + ": (removed)";
            return what + index + " " + name + ": " + value;
        }
        case '-':
        case '+': {
            auto s = strings_of(body, 0);
            return std::string(code == '-' ? "delrcpt " : "addrcpt ") + (s.empty() ? "" : s[0]);
        }
        case 'O':
            return "negotiate";
        default:
            return std::string("response '") + code + "' (" + std::to_string(body.size()) + " bytes)";
    }
}

MilterConnection::~MilterConnection() {
    close();
}

bool unix_socket_answers(const std::string& path) {
    net::SocketSpec spec;
    spec.path = path;
    MilterConnection c;
    std::string error;
    return c.open(spec, error);
}

void MilterConnection::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

bool MilterConnection::open(const net::SocketSpec& socket, std::string& error) {
    close();
    version = actions = protocol = 0;
    auto fail = [&](const std::string& what) {
        error = what + ": " + std::strerror(errno);
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
        return false;
    };
    if (socket.kind == net::SocketSpec::Kind::unix_path) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) return fail("socket");
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        if (socket.path.size() >= sizeof sa.sun_path) {
            errno = ENAMETOOLONG;
            return fail(socket.path);
        }
        std::memcpy(sa.sun_path, socket.path.c_str(), socket.path.size() + 1);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
            return fail("connect " + socket.path);
        return true;
    }
    bool v6 = socket.kind == net::SocketSpec::Kind::inet6;
    std::string host = socket.host.empty() ? (v6 ? "::1" : "127.0.0.1") : socket.host;
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return fail("socket");
    int rc;
    if (v6) {
        sockaddr_in6 sa{};
        sa.sin6_family = AF_INET6;
        sa.sin6_port = htons(socket.port);
        if (inet_pton(AF_INET6, host.c_str(), &sa.sin6_addr) != 1) {
            errno = EINVAL;
            return fail("address " + host);
        }
        rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    } else {
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(socket.port);
        if (inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) {
            errno = EINVAL;
            return fail("address " + host);
        }
        rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    }
    if (rc != 0) return fail("connect " + host + ":" + std::to_string(socket.port));
    return true;
}

bool MilterConnection::send_raw(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
        ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        off += size_t(n);
    }
    return true;
}

bool MilterConnection::send(char cmd, const std::string& body) {
    return send_raw(be32(uint32_t(body.size() + 1)) + cmd + body);
}

bool MilterConnection::receive(MilterResponse& r, std::chrono::milliseconds timeout, std::string& error) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    auto read_exactly = [&](char* buf, size_t len) {
        size_t off = 0;
        while (off < len) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                error = "timeout";
                return false;
            }
            pollfd p{fd_, POLLIN, 0};
            int rc = ::poll(&p, 1, int(left.count()));
            if (rc < 0 && errno == EINTR) continue;
            if (rc == 0) {
                error = "timeout";
                return false;
            }
            ssize_t n = ::recv(fd_, buf + off, len - off, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n == 0) {
                error = "eof";
                return false;
            }
            if (n < 0) {
                error = std::string("read: ") + std::strerror(errno);
                return false;
            }
            off += size_t(n);
        }
        return true;
    };
    char hdr[4];
    if (!read_exactly(hdr, 4)) return false;
    uint32_t len;
    std::memcpy(&len, hdr, 4);
    len = ntohl(len);
    if (len == 0 || len > (1u << 20)) {
        error = "malformed response length " + std::to_string(len);
        return false;
    }
    std::string buf(len, '\0');
    if (!read_exactly(buf.data(), len)) return false;
    r.code = buf[0];
    r.body = buf.substr(1);
    if (r.code == 'O' && r.body.size() >= 12) {
        version = get32(r.body, 0);
        actions = get32(r.body, 4);
        protocol = get32(r.body, 8);
    }
    return true;
}

}  // namespace regmilter::testing
