// syslog-sink: stands in for the syslog daemon. Binds a unix datagram socket
// at PATH (what /dev/log is) and prints each message it receives, one per
// line, as it arrives: "<PRI>... text" with PRI = facility * 8 + severity
// (RFC 3164). Stops after SECONDS, or at SIGTERM.
//
// usage: syslog-sink PATH SECONDS
// Exit status 0, or 2 on bad arguments or when PATH cannot be bound.
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: syslog-sink PATH SECONDS\n");
        return 2;
    }
    std::string path = argv[1];
    int seconds = std::atoi(argv[2]);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof sa.sun_path || seconds <= 0) {
        std::fprintf(stderr, "syslog-sink: bad PATH or SECONDS\n");
        return 2;
    }
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    unlink(path.c_str());
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        std::fprintf(stderr, "syslog-sink: %s: %s\n", path.c_str(), std::strerror(errno));
        return 2;
    }
    chmod(path.c_str(), 0666);  // a process that left root still logs
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    setvbuf(stdout, nullptr, _IOLBF, 0);
    for (;;) {
        auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        char buf[8192];
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        if (n <= 0) continue;
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\0')) --n;
        buf[n] = '\0';
        std::printf("%s\n", buf);
    }
    unlink(path.c_str());
    return 0;
}
