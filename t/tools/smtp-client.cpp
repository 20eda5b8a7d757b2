// smtp-client: plays a scripted SMTP session against HOST PORT and prints
// every command sent and every reply line received, for the end-to-end test.
// Test tool only: no TLS, no pipelining, one connection; single-threaded.
//
// Usage: smtp-client [-t TIMEOUT_MS] [-s SOURCE_ADDR] HOST PORT [SCRIPT]   (script from stdin without SCRIPT)
//   -s SOURCE_ADDR binds the connection to that local address first (e.g. one of
//   127.0.0.0/8, all of which are local on Linux): the server sees that client
//   address, for MTAs without XCLIENT (Sendmail).
//
// Script, one item a line (CRLF is added to each line sent):
//   COMMAND               sent, then the (multi-line) reply is read and printed
//   DATA                  when the reply is 354 the following lines up to a
//                         lone "." are the message (dot-stuffed on the wire);
//                         otherwise they are skipped
//   # comment, blank      ignored outside the message
//   !sleep MS             pause
//   !wait-file PATH [MS]  wait until PATH exists (default at most 30000 ms)
//   !touch PATH           create PATH (tells the test script where we are)
//   !close                drop the connection without QUIT, then stop; inside
//                         a message: send the lines before it, then drop
// In every line "\xHH" is the byte HH (NUL, 8-bit) and "\\" a backslash.
// Output: "> COMMAND" (non-printable bytes as \xHH), then each reply line as
// received; "! closed" when the server closed the connection; exit 0 when the
// script ran to its end, 1 on a connection or timeout error, 2 on bad usage.
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <thread>

namespace {

int timeout_ms = 60000;

std::string unescape(const std::string& in) {
    std::string out;
    for (size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '\\' && i + 1 < in.size() && in[i + 1] == '\\') {
            out += '\\';
            ++i;
        } else if (in[i] == '\\' && i + 3 < in.size() && in[i + 1] == 'x' &&
                   isxdigit(static_cast<unsigned char>(in[i + 2])) &&
                   isxdigit(static_cast<unsigned char>(in[i + 3]))) {
            out += static_cast<char>(std::stoi(in.substr(i + 2, 2), nullptr, 16));
            i += 3;
        } else {
            out += in[i];
        }
    }
    return out;
}

std::string printable(const std::string& in) {
    std::string out;
    char buf[8];
    for (unsigned char c : in) {
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        }
    }
    return out;
}

class Connection {
public:
    explicit Connection(int fd) : fd_(fd) {}
    ~Connection() { close(fd_); }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    bool send_all(const std::string& data) {
        size_t off = 0;
        while (off < data.size()) {
            ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) continue;
                return false;
            }
            off += static_cast<size_t>(n);
        }
        return true;
    }

    // One line without its CRLF; nullopt on EOF, timeout or error (closed_ says which).
    std::optional<std::string> read_line() {
        for (;;) {
            size_t nl = buf_.find('\n');
            if (nl != std::string::npos) {
                std::string line = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                if (!line.empty() && line.back() == '\r') line.pop_back();
                return line;
            }
            pollfd p{fd_, POLLIN, 0};
            int r = poll(&p, 1, timeout_ms);
            if (r == 0) {
                timed_out_ = true;
                return std::nullopt;
            }
            if (r < 0) {
                if (errno == EINTR) continue;
                return std::nullopt;
            }
            char chunk[4096];
            ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                closed_ = true;
                return std::nullopt;
            }
            buf_.append(chunk, static_cast<size_t>(n));
        }
    }

    // Reads and prints one complete reply; returns its code (0 when none came).
    int read_reply() {
        for (;;) {
            auto line = read_line();
            if (!line) {
                std::cout << (timed_out_ ? "! timeout" : "! closed") << std::endl;
                return 0;
            }
            std::cout << printable(*line) << std::endl;
            if (line->size() < 4 || (*line)[3] != '-') return std::atoi(line->substr(0, 3).c_str());
        }
    }

    bool timed_out() const { return timed_out_; }

private:
    int fd_;
    std::string buf_;
    bool closed_ = false;
    bool timed_out_ = false;
};

// Binds fd to the numeric address SOURCE (any port); false with a message on failure.
bool bind_source(int fd, int family, const char* source) {
    addrinfo hints{};
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(source, "0", &hints, &res);
    if (rc != 0) {
        std::cerr << "smtp-client: source " << source << ": " << gai_strerror(rc) << "\n";
        return false;
    }
    bool ok = bind(fd, res->ai_addr, res->ai_addrlen) == 0;
    if (!ok) std::cerr << "smtp-client: bind " << source << ": " << strerror(errno) << "\n";
    freeaddrinfo(res);
    return ok;
}

int connect_to(const char* host, const char* port, const char* source) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        std::cerr << "smtp-client: " << host << ": " << gai_strerror(rc) << "\n";
        return -1;
    }
    int fd = -1;
    for (addrinfo* ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) continue;
        if (source && !bind_source(fd, ai->ai_family, source)) {
            close(fd);
            fd = -1;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        std::cerr << "smtp-client: connect " << host << ":" << port << ": " << strerror(errno) << "\n";
    return fd;
}

bool wait_file(const std::string& path, int ms) {
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    struct stat st;
    while (stat(path.c_str(), &st) != 0) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
}

int run(Connection& conn, std::istream& script) {
    if (conn.read_reply() == 0) return 1;
    std::string raw;
    while (std::getline(script, raw)) {
        if (!raw.empty() && raw.back() == '\r') raw.pop_back();
        if (raw.empty() || raw[0] == '#') continue;
        if (raw.rfind("!sleep ", 0) == 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(raw.c_str() + 7)));
            continue;
        }
        if (raw.rfind("!wait-file ", 0) == 0) {
            std::string rest = raw.substr(11);
            size_t sp = rest.find(' ');
            int ms = sp == std::string::npos ? 30000 : std::atoi(rest.c_str() + sp + 1);
            std::string path = rest.substr(0, sp);
            if (!wait_file(path, ms)) {
                std::cout << "! no file " << path << std::endl;
                return 1;
            }
            continue;
        }
        if (raw.rfind("!touch ", 0) == 0) {
            std::ofstream(raw.substr(7)).put('\n');
            continue;
        }
        if (raw == "!close") {
            std::cout << "! close" << std::endl;
            return 0;
        }
        std::string cmd = unescape(raw);
        std::cout << "> " << printable(cmd) << std::endl;
        if (!conn.send_all(cmd + "\r\n")) {
            std::cout << "! send failed" << std::endl;
            return 1;
        }
        int code = conn.read_reply();
        if (code == 0) return conn.timed_out() ? 1 : 0;
        bool is_data = raw.size() == 4 && strncasecmp(raw.c_str(), "DATA", 4) == 0;
        if (!is_data) continue;
        std::string message;
        std::string line;
        bool drop = false;
        while (std::getline(script, line)) {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line == ".") break;
            if (line == "!close") {
                drop = true;
                break;
            }
            std::string bytes = unescape(line);
            if (!bytes.empty() && bytes[0] == '.') bytes.insert(0, 1, '.');  // RFC 5321 §4.5.2
            message += bytes + "\r\n";
        }
        if (code != 354) continue;
        if (drop) {
            // Half a message, then the connection goes away (no end-of-data dot).
            conn.send_all(message);
            std::cout << "! close" << std::endl;
            return 0;
        }
        std::cout << "> ." << std::endl;
        if (!conn.send_all(message + ".\r\n")) {
            std::cout << "! send failed" << std::endl;
            return 1;
        }
        if (conn.read_reply() == 0) return conn.timed_out() ? 1 : 0;
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    int argi = 1;
    const char* source = nullptr;
    while (argi + 1 < argc && (std::strcmp(argv[argi], "-t") == 0 || std::strcmp(argv[argi], "-s") == 0)) {
        if (argv[argi][1] == 't')
            timeout_ms = std::atoi(argv[argi + 1]);
        else
            source = argv[argi + 1];
        argi += 2;
    }
    if (argc - argi < 2 || argc - argi > 3) {
        std::cerr << "usage: smtp-client [-t TIMEOUT_MS] [-s SOURCE_ADDR] HOST PORT [SCRIPT]\n";
        return 2;
    }
    std::ifstream file;
    if (argc - argi == 3) {
        file.open(argv[argi + 2]);
        if (!file) {
            std::cerr << "smtp-client: cannot read " << argv[argi + 2] << "\n";
            return 2;
        }
    }
    int fd = connect_to(argv[argi], argv[argi + 1], source);
    if (fd < 0) return 1;
    Connection conn(fd);
    return run(conn, argc - argi == 3 ? static_cast<std::istream&>(file) : std::cin);
}
