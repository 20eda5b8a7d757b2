// dns-garbage: a hostile DNS server for robustness tests. Binds UDP on
// 127.0.0.1, prints the port, and answers every query with a broken reply
// chosen by the first label of the name asked:
//   short.*      5 bytes
//   junk.*       the query's header with QR set and 5 answers claimed, then random bytes
//   wrongid.*    a well-formed NOERROR reply with another message id (RFC 5452 §9.1: ignore it)
//   wrongq.*     the right id, a different question
//   loop.*       an answer whose owner name is a compression pointer to itself
//   overrun.*    a TXT answer whose RDLENGTH runs past the end of the message
//   badtxt.*     a TXT answer whose character-string length runs past its RDATA
//   anything else: no answer
// Exits after --max-seconds (default 120) or on SIGTERM. Deterministic (fixed seed).
//
//   dns-garbage [--max-seconds S]
// Exit: 0 after a signal or the time limit, 2 on bad usage, 1 when it cannot bind.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

namespace {

volatile sig_atomic_t g_stop = 0;
void on_signal(int) {
    g_stop = 1;
}

using Bytes = std::string;

void put16(Bytes& b, size_t at, uint16_t v) {
    b[at] = char(v >> 8);
    b[at + 1] = char(v & 0xff);
}
void add16(Bytes& b, uint16_t v) {
    b += char(v >> 8);
    b += char(v & 0xff);
}
void add32(Bytes& b, uint32_t v) {
    add16(b, uint16_t(v >> 16));
    add16(b, uint16_t(v & 0xffff));
}

// The end of the question section (name + type + class), or 0 when the query is broken.
size_t question_end(const Bytes& q) {
    size_t i = 12;
    while (i < q.size() && q[i] != 0) {
        unsigned len = static_cast<unsigned char>(q[i]);
        if (len > 63) return 0;
        i += len + 1;
    }
    return i + 5 <= q.size() ? i + 5 : 0;
}

std::string first_label(const Bytes& q) {
    if (q.size() < 13) return {};
    unsigned len = static_cast<unsigned char>(q[12]);
    if (len > 63 || 13 + len > q.size()) return {};
    return q.substr(13, len);
}

// A reply header + the query's question; `ancount` answers claimed.
Bytes reply_head(const Bytes& q, size_t qend, uint16_t ancount) {
    Bytes r = q.substr(0, qend);
    r[2] = char(0x84 | (q[2] & 0x01));  // QR, AA, RD copied
    r[3] = 0;                           // NOERROR
    put16(r, 4, 1);
    put16(r, 6, ancount);
    put16(r, 8, 0);
    put16(r, 10, 0);
    return r;
}

Bytes answer_for(const Bytes& q, std::mt19937& rng) {
    size_t qend = question_end(q);
    if (qend == 0) return {};
    std::string label = first_label(q);
    for (char& c : label) c = char(std::tolower(static_cast<unsigned char>(c)));
    if (label == "short") return Bytes(q.substr(0, 2)) + "\x81\x80\x00";
    if (label == "junk") {
        Bytes r = reply_head(q, qend, 5);
        for (int i = 0; i < 40; ++i) r += char(rng() & 0xff);
        return r;
    }
    if (label == "wrongid") {
        Bytes r = reply_head(q, qend, 0);
        put16(r, 0,
              uint16_t(((static_cast<unsigned char>(q[0]) << 8) | static_cast<unsigned char>(q[1])) + 1));
        return r;
    }
    if (label == "wrongq") {
        Bytes r = reply_head(q, qend, 0);
        r[13] = r[13] == 'x' ? 'y' : 'x';  // another name than the one asked
        return r;
    }
    if (label == "loop") {
        Bytes r = reply_head(q, qend, 1);
        uint16_t here = uint16_t(r.size());
        add16(r, uint16_t(0xc000 | here));  // owner: a pointer to itself
        add16(r, 16);                       // TXT
        add16(r, 1);
        add32(r, 300);
        add16(r, 2);
        r += "\x01x";
        return r;
    }
    if (label == "overrun") {
        Bytes r = reply_head(q, qend, 1);
        add16(r, 0xc00c);  // owner: the question's name
        add16(r, 16);
        add16(r, 1);
        add32(r, 300);
        add16(r, 4000);  // RDLENGTH far beyond the message
        r += "\x05v=spf";
        return r;
    }
    if (label == "badtxt") {
        Bytes r = reply_head(q, qend, 1);
        add16(r, 0xc00c);
        add16(r, 16);
        add16(r, 1);
        add32(r, 300);
        add16(r, 4);
        r += "\xffv=s";  // a 255-byte string in 4 bytes of RDATA
        return r;
    }
    return {};
}

}  // namespace

int main(int argc, char** argv) {
    long max_seconds = 120;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--max-seconds" && i + 1 < argc) {
            max_seconds = std::atol(argv[++i]);
            if (max_seconds < 1 || max_seconds > 3600) max_seconds = 0;
        } else {
            max_seconds = 0;
        }
        if (max_seconds == 0) {
            std::fprintf(stderr, "usage: dns-garbage [--max-seconds 1..3600]\n");
            return 2;
        }
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        std::perror("dns-garbage: bind 127.0.0.1");
        return 1;
    }
    socklen_t len = sizeof sa;
    getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    std::printf("%u\n", ntohs(sa.sin_port));
    std::fflush(stdout);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    std::mt19937 rng(7208);
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(max_seconds);
    while (!g_stop && std::chrono::steady_clock::now() < end) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 200) <= 0) continue;
        char buf[4096];
        sockaddr_in from{};
        socklen_t flen = sizeof from;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen);
        if (n < 12) continue;
        Bytes reply = answer_for(Bytes(buf, size_t(n)), rng);
        if (!reply.empty())
            sendto(fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
    }
    close(fd);
    return 0;
}
