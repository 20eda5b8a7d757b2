// milter-bench: drives a milter over the milter protocol (version 6) the way
// an MTA does, from several threads at once, and prints transactions/s,
// p50/p99 latency, and the milter process's CPU per transaction and RSS.
// A transaction is one connection: connect, helo, mail, rcpt, headers, eoh,
// end of message, quit. Bounded in count and time.
//
// usage: milter-bench --socket unix:PATH|inet:PORT@127.0.0.1|inet6:PORT@::1 --pid PID
//                     [--count N] [--concurrency C] [--max-seconds S]
//                     [--ip-base A.B.C.] [--ip-span K] [--from ADDR] [--rcpt ADDR] [--helo NAME]
//                     [--label TEXT]
// Exit status 0 when every transaction got a final answer, 1 otherwise, 2 on bad arguments.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
    std::string socket;
    long pid = 0;
    int count = 2000;
    int concurrency = 8;
    int max_seconds = 60;
    std::string ip_base = "198.51.100.";
    int ip_span = 1;
    int ip_first = 7;
    std::string from = "<user@pass.spf.e2e.test>";
    std::string rcpt = "<someone@mx.e2e.test>";
    std::string helo = "mx.spf.e2e.test";
    std::string label = "milter";
};

int connect_socket(const std::string& spec) {
    if (spec.rfind("unix:", 0) == 0 || spec.rfind("local:", 0) == 0) {
        std::string path = spec.substr(spec.find(':') + 1);
        int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        if (path.size() >= sizeof sa.sun_path) return -1;
        std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
            ::close(fd);
            return -1;
        }
        return fd;
    }
    if (spec.rfind("inet6:", 0) == 0) {
        std::string rest = spec.substr(6);
        auto at = rest.find('@');
        std::string port = rest.substr(0, at), host = at == std::string::npos ? "::1" : rest.substr(at + 1);
        if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
        int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
        sockaddr_in6 sa{};
        sa.sin6_family = AF_INET6;
        sa.sin6_port = htons(uint16_t(std::atoi(port.c_str())));
        if (inet_pton(AF_INET6, host.c_str(), &sa.sin6_addr) != 1) return ::close(fd), -1;
        if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
            ::close(fd);
            return -1;
        }
        return fd;
    }
    if (spec.rfind("inet:", 0) == 0) {
        std::string rest = spec.substr(5);
        auto at = rest.find('@');
        std::string port = rest.substr(0, at), host = at == std::string::npos ? "127.0.0.1" : rest.substr(at + 1);
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(uint16_t(std::atoi(port.c_str())));
        if (inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) return -1;
        if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
            ::close(fd);
            return -1;
        }
        return fd;
    }
    return -1;
}

bool write_all(int fd, const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n <= 0) return false;
        off += size_t(n);
    }
    return true;
}

bool read_all(int fd, char* buf, size_t len) {
    size_t off = 0;
    while (off < len) {
        ssize_t n = ::read(fd, buf + off, len - off);
        if (n <= 0) return false;
        off += size_t(n);
    }
    return true;
}

void put32(std::string& s, uint32_t v) {
    uint32_t n = htonl(v);
    s.append(reinterpret_cast<const char*>(&n), 4);
}

std::string packet(char cmd, const std::string& body) {
    std::string p;
    put32(p, uint32_t(body.size() + 1));
    p += cmd;
    p += body;
    return p;
}

std::string z(const std::string& s) { return s + '\0'; }

struct Reply {
    char cmd = 0;
    std::string body;
};

bool read_reply(int fd, Reply& r) {
    char hdr[4];
    if (!read_all(fd, hdr, 4)) return false;
    uint32_t len;
    std::memcpy(&len, hdr, 4);
    len = ntohl(len);
    if (len == 0 || len > (1u << 20)) return false;
    std::string buf(len, '\0');
    if (!read_all(fd, buf.data(), len)) return false;
    r.cmd = buf[0];
    r.body = buf.substr(1);
    return true;
}

// Protocol flags (libmilter mfdef.h values): steps that get no reply.
constexpr uint32_t NR_CONN = 0x1000, NR_HELO = 0x2000, NR_MAIL = 0x4000, NR_RCPT = 0x8000,
                   NR_DATA = 0x10000, NR_EOH = 0x40000, NR_HDR = 0x80, NO_HELO = 0x2, NO_HDRS = 0x20,
                   NO_EOH = 0x40, NO_DATA = 0x200;

struct Session {
    int fd = -1;
    uint32_t proto = 0;
    std::string final_answer;  // e.g. "c", "y:550 5.7.1 ..."
};

// Sends one command; when a reply is expected, reads replies until a final one
// (skipping progress 'p'). Returns false on a protocol/connection error.
bool step(Session& s, char cmd, const std::string& body, bool expect_reply, char& answer, std::string& text) {
    if (!write_all(s.fd, packet(cmd, body))) return false;
    answer = 'c';
    if (!expect_reply) return true;
    for (;;) {
        Reply r;
        if (!read_reply(s.fd, r)) return false;
        if (r.cmd == 'p') continue;
        // Modification actions at end of message: headers, recipients...
        if (std::strchr("hi-+mqeb", r.cmd)) continue;
        answer = r.cmd;
        text = r.body;
        return true;
    }
}

struct Result {
    bool ok = false;
    double ms = 0;
    std::string answer;
};

Result transaction(const Options& o, int n) {
    Result res;
    auto t0 = Clock::now();
    Session s;
    s.fd = connect_socket(o.socket);
    if (s.fd < 0) return res;
    std::string neg;
    put32(neg, 6);
    put32(neg, 0x1ff);        // every action
    put32(neg, 0x1fffff);     // every protocol step/flag we understand
    char answer;
    std::string text;
    if (!write_all(s.fd, packet('O', neg))) return ::close(s.fd), res;
    Reply r;
    if (!read_reply(s.fd, r) || r.cmd != 'O' || r.body.size() < 12) return ::close(s.fd), res;
    uint32_t p;
    std::memcpy(&p, r.body.data() + 8, 4);
    s.proto = ntohl(p);

    std::string ip = o.ip_base + std::to_string(o.ip_first + n % std::max(1, o.ip_span));
    std::string conn = z("client.example") + '4';
    uint16_t port = htons(25000);
    conn.append(reinterpret_cast<const char*>(&port), 2);
    conn += z(ip);
    bool ok = write_all(s.fd, packet('D', std::string("C") + z("j") + z("mx.bench.test") +
                                              z("{daemon_name}") + z("bench")));
    ok = ok && step(s, 'C', conn, !(s.proto & NR_CONN), answer, text);
    auto final_now = [&](char a) { return a != 'c'; };
    if (ok && !final_now(answer) && !(s.proto & NO_HELO))
        ok = step(s, 'H', z(o.helo), !(s.proto & NR_HELO), answer, text);
    if (ok && !final_now(answer)) {
        ok = write_all(s.fd, packet('D', std::string("M") + z("i") + z("BENCH" + std::to_string(n))));
        ok = ok && step(s, 'M', z(o.from), !(s.proto & NR_MAIL), answer, text);
    }
    if (ok && !final_now(answer)) ok = step(s, 'R', z(o.rcpt), !(s.proto & NR_RCPT), answer, text);
    if (ok && answer == 'c' && !(s.proto & NO_DATA)) ok = step(s, 'T', "", !(s.proto & NR_DATA), answer, text);
    if (ok && answer == 'c' && !(s.proto & NO_HDRS)) {
        ok = step(s, 'L', z("From") + z("user@pass.spf.e2e.test"), !(s.proto & NR_HDR), answer, text);
        ok = ok && step(s, 'L', z("Subject") + z("bench " + std::to_string(n)), !(s.proto & NR_HDR), answer,
                        text);
    }
    if (ok && answer == 'c' && !(s.proto & NO_EOH)) ok = step(s, 'N', "", !(s.proto & NR_EOH), answer, text);
    if (ok && answer == 'c') ok = step(s, 'E', "", true, answer, text);
    if (ok) write_all(s.fd, packet('Q', ""));
    ::close(s.fd);
    res.ok = ok;
    // 'y' carries "550 5.7.23 text": keep the code and the enhanced code.
    res.answer = answer == 'y' ? text.substr(0, text.find(' ', 4)) : std::string(1, answer);
    res.ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    return res;
}

// utime + stime of a process, in seconds.
double cpu_seconds(long pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(f, line);
    auto close_paren = line.rfind(')');
    if (close_paren == std::string::npos) return 0;
    std::istringstream rest(line.substr(close_paren + 2));
    std::string field;
    double ut = 0, st = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) ut = std::atof(field.c_str());
        if (i == 15) st = std::atof(field.c_str());
    }
    return (ut + st) / double(sysconf(_SC_CLK_TCK));
}

long status_kib(long pid, const char* key) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + std::strlen(key));
    return 0;
}

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr, "milter-bench: %s\nusage: milter-bench --socket SPEC --pid PID [--count N] "
                         "[--concurrency C] [--max-seconds S] [--ip-base A.B.C.] [--ip-first N] "
                         "[--ip-span K] [--from <ADDR>] [--rcpt <ADDR>] [--helo NAME] [--label TEXT]\n",
                 why);
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (i + 1 >= argc) usage(("missing value for " + a).c_str());
        std::string v = argv[++i];
        if (a == "--socket") o.socket = v;
        else if (a == "--pid") o.pid = std::atol(v.c_str());
        else if (a == "--count") o.count = std::atoi(v.c_str());
        else if (a == "--concurrency") o.concurrency = std::atoi(v.c_str());
        else if (a == "--max-seconds") o.max_seconds = std::atoi(v.c_str());
        else if (a == "--ip-base") o.ip_base = v;
        else if (a == "--ip-first") o.ip_first = std::atoi(v.c_str());
        else if (a == "--ip-span") o.ip_span = std::atoi(v.c_str());
        else if (a == "--from") o.from = v;
        else if (a == "--rcpt") o.rcpt = v;
        else if (a == "--helo") o.helo = v;
        else if (a == "--label") o.label = v;
        else usage(("unknown option " + a).c_str());
    }
    if (o.socket.empty() || o.pid <= 0) usage("--socket and --pid are required");
    if (o.count < 1 || o.count > 1000000 || o.concurrency < 1 || o.concurrency > 256 || o.max_seconds < 1)
        usage("--count 1..1000000, --concurrency 1..256, --max-seconds >= 1");

    std::atomic<int> next{0};
    std::mutex mu;
    std::vector<double> lat;
    std::map<std::string, int> answers;
    int errors = 0;
    double cpu0 = cpu_seconds(o.pid);
    auto t0 = Clock::now();
    auto stop_at = t0 + std::chrono::seconds(o.max_seconds);
    std::vector<std::thread> threads;
    for (int t = 0; t < o.concurrency; ++t)
        threads.emplace_back([&] {
            for (;;) {
                int n = next++;
                if (n >= o.count || Clock::now() > stop_at) return;
                Result r = transaction(o, n);
                std::lock_guard<std::mutex> lock(mu);
                if (!r.ok) {
                    ++errors;
                    continue;
                }
                lat.push_back(r.ms);
                ++answers[r.answer];
            }
        });
    for (auto& t : threads) t.join();
    double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    double cpu = cpu_seconds(o.pid) - cpu0;
    std::sort(lat.begin(), lat.end());
    size_t done = lat.size();
    auto pct = [&](double q) { return done ? lat[std::min(done - 1, size_t(q * double(done)))] : 0.0; };
    std::printf("%s: transactions=%zu errors=%d concurrency=%d tx_per_s=%.0f p50_ms=%.2f p99_ms=%.2f "
                "cpu_us_per_tx=%.0f rss_kib=%ld hwm_kib=%ld answers=",
                o.label.c_str(), done, errors, o.concurrency, done / wall, pct(0.50), pct(0.99),
                done ? cpu * 1e6 / double(done) : 0.0, status_kib(o.pid, "VmRSS:"), status_kib(o.pid, "VmHWM:"));
    bool first = true;
    for (const auto& [a, n] : answers) {
        std::printf("%s%s:%d", first ? "" : ",", a.c_str(), n);
        first = false;
    }
    std::printf("\n");
    return errors == 0 && done == size_t(o.count) ? 0 : 1;
}
