// milter-bench: drives a milter over the milter protocol (version 6) the way
// an MTA does, from several threads at once, and prints transactions/s,
// p50/p99 latency, the milter's CPU per transaction and its RSS.
// A transaction is one milter connection: connect, helo, mail, rcpt, data,
// headers, eoh, body, end of message, quit, each step sent only when the
// milter did not negotiate it away, and answered only when it did not ask
// for no reply (SMFIP_NO* / SMFIP_NR_*). Bounded in count and time; talks
// only to unix sockets and loopback addresses.
//
// usage: milter-bench --socket unix:PATH|inet:PORT@127.0.0.1|inet6:PORT@::1 --pid PID
//                     [--count N] [--concurrency C] [--max-seconds S]
//                     [--ip-base A.B.C.] [--ip-first N] [--ip-span K] [--from ADDR] [--rcpt ADDR]
//                     [--helo NAME] [--workload FILE] [--cpu NAME=PID]... [--label TEXT] [--hold yes]
//                     [--latencies FILE] [--rate R]
//
// --workload FILE: one transaction per line, "IP HOSTNAME HELO MAIL-FROM RCPT"
//   (addresses without <>; "-" for an empty MAIL FROM); transaction n uses
//   line n modulo the number of lines. Replaces --ip-*, --from, --rcpt, --helo.
// --pid PID: the milter; its CPU (PID and every descendant process, reaped
//   children included) and its peak RSS (summed over the same processes).
// --cpu NAME=PID: also print NAME_cpu_ms_per_tx for that process tree (e.g.
//   the resolver), any number of times.
// --hold yes: every thread opens its first connection and negotiates, then waits
//   until all --concurrency connections are open (at most 30 s) before its
//   first transaction goes on: that many connections open at once (a burst).
// --latencies FILE: also append every answered transaction's latency (ms, one
//   a line) to FILE, to pool the transactions of several runs.
// --rate R: open loop. Transaction n is due n/R seconds after the start (a
//   constant arrival rate, as from many independent clients), whatever the
//   milter's answers; --concurrency caps the transactions in flight. A
//   latency counts from the due time, so one that waited for a free slot
//   counts its wait (no coordinated omission). Without --rate each of the
//   --concurrency slots starts its next transaction when the last one is
//   answered (closed loop, the milter saturated). Not with --hold.
// Errors: "errors" counts transactions without a final answer, "refused"
//   those of them whose connection could not be opened at all.
// Exit status 0 when every transaction got a final answer, 1 otherwise, 2 on bad arguments.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
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

#include "../support/milter_client.hpp"
#include "net/endpoint.hpp"

namespace {

using namespace regmilter;

using Clock = std::chrono::steady_clock;

// What one transaction says to the milter.
struct Envelope {
    std::string ip;
    std::string hostname;  // the client's name as the MTA passes it at connect
    std::string helo;
    std::string from;  // with <>
    std::string rcpt;  // with <>
};

struct Options {
    net::SocketSpec socket;  // unix, or inet/inet6 on a loopback address
    bool have_socket = false;
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
    std::string latencies;                             // --latencies: appended to
    std::vector<Envelope> workload;                    // --workload: one per line
    std::vector<std::pair<std::string, long>> cpu_of;  // --cpu NAME=PID
    bool hold = false;
    double rate = 0;  // --rate: transactions per second, open loop; 0 = closed loop
};

// --hold: the first transaction of each thread waits here, once connected.
struct Gate {
    std::mutex mu;
    std::condition_variable cv;
    int arrived = 0;
    int want = 0;
    void pass() {
        std::unique_lock<std::mutex> lock(mu);
        if (++arrived >= want) cv.notify_all();
        cv.wait_for(lock, std::chrono::seconds(30), [this] { return arrived >= want; });
    }
    // A thread that could not connect still counts, so that the others go on.
    void count_out() {
        std::lock_guard<std::mutex> lock(mu);
        if (++arrived >= want) cv.notify_all();
    }
};

std::string z(const std::string& s) {
    return testing::nul_terminated(s);
}

// Protocol flags (libmilter mfdef.h values): steps the milter does not want
// (NO_*) and steps that get no reply (NR_*).
constexpr uint32_t NO_CONN = 0x1, NO_HELO = 0x2, NO_MAIL = 0x4, NO_RCPT = 0x8, NO_BODY = 0x10, NO_HDRS = 0x20,
                   NO_EOH = 0x40, NR_HDR = 0x80, NO_DATA = 0x200, NR_CONN = 0x1000, NR_HELO = 0x2000,
                   NR_MAIL = 0x4000, NR_RCPT = 0x8000, NR_DATA = 0x10000, NR_EOH = 0x40000, NR_BODY = 0x80000;

struct Session {
    testing::MilterConnection conn;
    uint32_t proto = 0;
    char answer = 'c';  // the last answer: 'c' continue until something final
    std::string text;   // the 'y' reply's text
};

// Sends one command unless the milter negotiated it away (`skip` flag set);
// when a reply is expected, reads replies until a final one (skipping
// progress 'p' and end-of-message modifications). False on a protocol or
// connection error.
bool step(Session& s, char cmd, const std::string& body, uint32_t skip, uint32_t no_reply) {
    if (s.proto & skip) return true;
    if (!s.conn.send(cmd, body)) return false;
    if (s.proto & no_reply) return true;
    for (;;) {
        testing::MilterResponse r;
        std::string error;
        if (!s.conn.receive(r, std::chrono::seconds(60), error)) return false;
        if (!r.final()) continue;  // progress, end-of-message modifications
        s.answer = r.code;
        s.text = r.body;
        return true;
    }
}

// Macros for a step, sent only when the step itself is.
bool macros(Session& s, char stage, const std::string& pairs, uint32_t skip) {
    return (s.proto & skip) || s.conn.send('D', std::string(1, stage) + pairs);
}

struct Result {
    bool ok = false;
    bool refused = false;  // the connection could not be opened
    double ms = 0;
    std::string answer;
};

Envelope envelope_for(const Options& o, int n) {
    if (!o.workload.empty()) return o.workload[size_t(n) % o.workload.size()];
    std::string ip = o.ip_base + std::to_string(o.ip_first + n % std::max(1, o.ip_span));
    return Envelope{ip, "client.example", o.helo, o.from, o.rcpt};
}

// `due`: when the transaction was due (--rate), the start of its latency.
Result transaction(const Options& o, int n, Gate* gate, const Clock::time_point* due) {
    Result res;
    auto t0 = due ? *due : Clock::now();
    const Envelope e = envelope_for(o, n);
    Session s;
    std::string error;
    auto fail = [&] {
        if (gate) gate->count_out();
        return res;
    };
    if (!s.conn.open(o.socket, error)) {
        res.refused = true;
        return fail();
    }
    // Every action, every protocol step and flag the tool understands.
    if (!s.conn.send('O', testing::negotiate_body(6, 0x1ff, 0x1fffff))) return fail();
    testing::MilterResponse r;
    if (!s.conn.receive(r, std::chrono::seconds(60), error) || r.code != 'O' || s.conn.version == 0)
        return fail();
    s.proto = s.conn.protocol;
    if (gate) {
        gate->pass();
        t0 = Clock::now();  // the latency of the transaction, not of the wait
    }

    std::string conn = z(e.hostname) + (e.ip.find(':') == std::string::npos ? '4' : '6');
    uint16_t port = htons(25000);
    conn.append(reinterpret_cast<const char*>(&port), 2);
    conn += z(e.ip);
    std::string sender = e.from.size() > 2 ? e.from.substr(1, e.from.size() - 2) : "MAILER-DAEMON";
    auto going = [&] { return s.answer == 'c'; };
    bool ok = macros(s, 'C', z("j") + z("mx.bench.test") + z("{daemon_name}") + z("bench"), NO_CONN) &&
              step(s, 'C', conn, NO_CONN, NR_CONN);
    if (ok && going()) ok = step(s, 'H', z(e.helo), NO_HELO, NR_HELO);
    if (ok && going())
        ok = macros(s, 'M', z("i") + z("BENCH" + std::to_string(n)), NO_MAIL) &&
             step(s, 'M', z(e.from), NO_MAIL, NR_MAIL);
    if (ok && going()) ok = step(s, 'R', z(e.rcpt), NO_RCPT, NR_RCPT);
    if (ok && going()) ok = step(s, 'T', "", NO_DATA, NR_DATA);
    if (ok && going())
        ok = step(s, 'L', z("From") + z(" <" + sender + ">"), NO_HDRS, NR_HDR) &&
             step(s, 'L', z("To") + z(" " + e.rcpt), NO_HDRS, NR_HDR) &&
             step(s, 'L', z("Subject") + z(" bench " + std::to_string(n)), NO_HDRS, NR_HDR) &&
             step(s, 'L', z("Message-ID") + z(" <bench" + std::to_string(n) + "@bench.test>"), NO_HDRS,
                  NR_HDR);
    if (ok && going()) ok = step(s, 'N', "", NO_EOH, NR_EOH);
    if (ok && going()) ok = step(s, 'B', "Hello,\r\nthis is a benchmark message.\r\n", NO_BODY, NR_BODY);
    if (ok && going()) ok = step(s, 'E', "", 0, 0);
    if (ok) s.conn.send('Q', "");
    s.conn.close();
    res.ok = ok;
    // 'y' carries "550 5.7.23 text": keep the code and the enhanced code, as
    // "550-5.7.23" (the printed answers are one space-free word).
    res.answer = std::string(1, s.answer);
    if (s.answer == 'y') {
        res.answer = s.text.substr(0, s.text.find(' ', 4));
        std::replace(res.answer.begin(), res.answer.end(), ' ', '-');
    }
    res.ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    return res;
}

// One /proc/PID/stat: the parent and the CPU ticks (own + reaped children).
struct ProcStat {
    long ppid = 0;
    double ticks = 0;
};

bool read_stat(long pid, ProcStat& out) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(f, line)) return false;
    auto close_paren = line.rfind(')');
    if (close_paren == std::string::npos) return false;
    std::istringstream rest(line.substr(close_paren + 2));
    std::string field;
    out = ProcStat{};
    // Fields from 3 (state): 4 ppid, 14 utime, 15 stime, 16 cutime, 17 cstime.
    for (int i = 3; i <= 17 && rest >> field; ++i) {
        if (i == 4) out.ppid = std::atol(field.c_str());
        if (i >= 14) out.ticks += std::atof(field.c_str());
    }
    return true;
}

// Every process of the tree rooted at `root` (root first), from one pass over /proc.
std::vector<long> process_tree(long root) {
    std::map<long, std::vector<long>> children;
    if (DIR* d = opendir("/proc")) {
        while (dirent* ent = readdir(d)) {
            char* end = nullptr;
            long pid = std::strtol(ent->d_name, &end, 10);
            ProcStat st;
            if (pid > 0 && *end == '\0' && read_stat(pid, st)) children[st.ppid].push_back(pid);
        }
        closedir(d);
    }
    std::vector<long> tree{root};
    for (size_t i = 0; i < tree.size(); ++i)
        for (long c : children[tree[i]]) tree.push_back(c);
    return tree;
}

// CPU seconds of a process tree: user + system, of each live process and of
// the children it reaped (so a forking milter's workers count too).
double cpu_seconds(long root) {
    double ticks = 0;
    for (long pid : process_tree(root)) {
        ProcStat st;
        if (read_stat(pid, st)) ticks += st.ticks;
    }
    return ticks / double(sysconf(_SC_CLK_TCK));
}

long status_kib(long pid, const char* key) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + std::strlen(key));
    return 0;
}

long tree_kib(long root, const char* key) {
    long sum = 0;
    for (long pid : process_tree(root)) sum += status_kib(pid, key);
    return sum;
}

[[noreturn]] void usage(const std::string& why) {
    std::fprintf(stderr,
                 "milter-bench: %s\nusage: milter-bench --socket SPEC --pid PID [--count N] "
                 "[--concurrency C] [--max-seconds S] [--ip-base A.B.C.] [--ip-first N] "
                 "[--ip-span K] [--from <ADDR>] [--rcpt <ADDR>] [--helo NAME] [--workload FILE] "
                 "[--cpu NAME=PID]... [--label TEXT] [--hold yes] [--latencies FILE] [--rate R]\n",
                 why.c_str());
    std::exit(2);
}

std::string angled(const std::string& a) {
    return a == "-" ? "<>" : "<" + a + ">";
}

// FILE:LINE errors for a workload line that is not "IP HOSTNAME HELO FROM RCPT".
std::vector<Envelope> read_workload(const std::string& path) {
    std::ifstream f(path);
    if (!f) usage("cannot read workload " + path);
    std::vector<Envelope> out;
    std::string line;
    for (int n = 1; std::getline(f, line); ++n) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream in(line);
        Envelope e;
        std::string extra;
        if (!(in >> e.ip >> e.hostname >> e.helo >> e.from >> e.rcpt) || (in >> extra))
            usage(path + ":" + std::to_string(n) + ": want \"IP HOSTNAME HELO MAIL-FROM RCPT\"");
        e.from = angled(e.from);
        e.rcpt = angled(e.rcpt);
        out.push_back(e);
        if (out.size() > 1000000) usage(path + ": more than 1000000 lines");
    }
    if (out.empty()) usage(path + ": no transactions");
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        std::string v;
        if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
            v = a.substr(eq + 1);
            a = a.substr(0, eq);
        } else {
            if (i + 1 >= argc) usage("missing value for " + a);
            v = argv[++i];
        }
        if (a == "--socket") {
            std::string err;
            auto spec = net::parse_socket(v, err);
            if (!spec) usage(err);
            if (spec->reachable_from_network()) usage("--socket: loopback addresses and unix sockets only");
            o.socket = *spec;
            o.have_socket = true;
        } else if (a == "--pid")
            o.pid = std::atol(v.c_str());
        else if (a == "--count")
            o.count = std::atoi(v.c_str());
        else if (a == "--concurrency")
            o.concurrency = std::atoi(v.c_str());
        else if (a == "--max-seconds")
            o.max_seconds = std::atoi(v.c_str());
        else if (a == "--ip-base")
            o.ip_base = v;
        else if (a == "--ip-first")
            o.ip_first = std::atoi(v.c_str());
        else if (a == "--ip-span")
            o.ip_span = std::atoi(v.c_str());
        else if (a == "--from")
            o.from = v;
        else if (a == "--rcpt")
            o.rcpt = v;
        else if (a == "--helo")
            o.helo = v;
        else if (a == "--latencies")
            o.latencies = v;
        else if (a == "--rate") {
            char* end = nullptr;
            o.rate = std::strtod(v.c_str(), &end);
            if (v.empty() || *end != '\0' || !(o.rate >= 1 && o.rate <= 100000))
                usage("--rate 1..100000 transactions per second, got " + v);
        } else if (a == "--label")
            o.label = v;
        else if (a == "--hold")
            o.hold = v == "yes" || v == "1";
        else if (a == "--workload")
            o.workload = read_workload(v);
        else if (a == "--cpu") {
            auto eq = v.find('=');
            long pid = eq == std::string::npos ? 0 : std::atol(v.c_str() + eq + 1);
            if (eq == 0 || pid <= 0) usage("--cpu wants NAME=PID, got " + v);
            o.cpu_of.emplace_back(v.substr(0, eq), pid);
        } else
            usage("unknown option " + a);
    }
    if (!o.have_socket || o.pid <= 0) usage("--socket and --pid are required");
    if (o.count < 1 || o.count > 1000000 || o.concurrency < 1 || o.concurrency > 4000 || o.max_seconds < 1 ||
        o.max_seconds > 3600)
        usage("--count 1..1000000, --concurrency 1..4000, --max-seconds 1..3600");
    if (o.rate != 0 && o.hold) usage("--rate and --hold do not go together");

    std::atomic<int> next{0};
    std::mutex mu;
    std::vector<double> lat;
    std::map<std::string, int> answers;
    int errors = 0, refused = 0;
    Gate gate;
    gate.want = std::min(o.concurrency, o.count);
    double cpu0 = cpu_seconds(o.pid);
    std::vector<double> others0;
    for (const auto& [name, pid] : o.cpu_of) others0.push_back(cpu_seconds(pid));
    auto t0 = Clock::now();
    auto stop_at = t0 + std::chrono::seconds(o.max_seconds);
    std::vector<std::thread> threads;
    for (int t = 0; t < o.concurrency; ++t)
        threads.emplace_back([&] {
            bool first = true;
            for (;;) {
                int n = next++;
                if (n >= o.count) return;
                Clock::time_point due;
                if (o.rate > 0) {
                    due = t0 + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(n / o.rate));
                    if (due > stop_at) return;
                    std::this_thread::sleep_until(due);
                } else if (Clock::now() > stop_at)
                    return;
                Result r = transaction(o, n, o.hold && first ? &gate : nullptr, o.rate > 0 ? &due : nullptr);
                first = false;
                std::lock_guard<std::mutex> lock(mu);
                if (!r.ok) {
                    ++errors;
                    refused += r.refused;
                    continue;
                }
                lat.push_back(r.ms);
                ++answers[r.answer];
            }
        });
    for (auto& t : threads) t.join();
    double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    double cpu = cpu_seconds(o.pid) - cpu0;
    if (!o.latencies.empty()) {
        FILE* f = std::fopen(o.latencies.c_str(), "a");
        if (!f) usage("cannot append to " + o.latencies);
        for (double ms : lat) std::fprintf(f, "%.3f\n", ms);
        std::fclose(f);
    }
    std::sort(lat.begin(), lat.end());
    size_t done = lat.size();
    auto pct = [&](double q) { return done ? lat[std::min(done - 1, size_t(q * double(done)))] : 0.0; };
    auto per_tx_ms = [&](double seconds) { return done ? seconds * 1e3 / double(done) : 0.0; };
    std::printf(
        "%s: transactions=%zu errors=%d refused=%d concurrency=%d rate=%.0f seconds=%.2f tx_per_s=%.1f "
        "p50_ms=%.2f "
        "p99_ms=%.2f max_ms=%.2f cpu_us_per_tx=%.0f milter_cpu_ms_per_tx=%.4f",
        o.label.c_str(), done, errors, refused, o.concurrency, o.rate, wall, done / wall, pct(0.50),
        pct(0.99), done ? lat.back() : 0.0, per_tx_ms(cpu) * 1e3, per_tx_ms(cpu));
    for (size_t i = 0; i < o.cpu_of.size(); ++i)
        std::printf(" %s_cpu_ms_per_tx=%.4f", o.cpu_of[i].first.c_str(),
                    per_tx_ms(cpu_seconds(o.cpu_of[i].second) - others0[i]));
    std::printf(" rss_kib=%ld hwm_kib=%ld answers=", tree_kib(o.pid, "VmRSS:"), tree_kib(o.pid, "VmHWM:"));
    bool first = true;
    for (const auto& [a, n] : answers) {
        std::printf("%s%s:%d", first ? "" : ",", a.c_str(), n);
        first = false;
    }
    std::printf("\n");
    return errors == 0 && done == size_t(o.count) ? 0 : 1;
}
