#include "channel.hpp"

#include <sys/socket.h>

#include <cerrno>

namespace regmilter::daemon {

bool send_message(int fd, const std::string& m, bool wait) {
    for (;;) {
        ssize_t n = ::send(fd, m.data(), m.size(), MSG_NOSIGNAL | (wait ? 0 : MSG_DONTWAIT));
        if (n >= 0) return true;
        if (errno != EINTR) return false;
    }
}

Received receive_message(int fd, std::string& out, bool wait) {
    char buf[8192];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, wait ? 0 : MSG_DONTWAIT);
        if (n > 0) {
            out.assign(buf, size_t(n));
            return Received::message;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && !wait && (errno == EAGAIN || errno == EWOULDBLOCK)) return Received::nothing;
        return Received::ended;
    }
}

}  // namespace regmilter::daemon
