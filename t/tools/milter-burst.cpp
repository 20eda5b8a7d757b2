// milter-burst: many milter sessions at once, as an MTA opens them in a
// burst, each timed stage by stage; prints how they ended and the latency
// of the connect and MAIL FROM answers. For the master/worker tests
// (t/integration/master.sh) and the slow-DNS burst
// (t/integration/slow-dns-burst.sh). Bounded in count and time; unix
// sockets and loopback only.
//
// usage: milter-burst --socket unix:PATH|inet:PORT@127.0.0.1 [--sessions N] [--concurrency C]
//                     [--ip A.B.C.D] [--ip-base A.B.C.] [--helo NAME] [--from ADDR] [--rcpt ADDR]
//                     [--bad-first HEX] [--pause-ms MS] [--timeout-ms MS] [--max-seconds S]
//
// A session: negotiate, connect, HELO, MAIL FROM, RCPT TO, a header, end of
// headers, end of message, QUIT; each step sent unless negotiated away and
// answered unless the milter asked for no reply. A refusal (reject,
// tempfail, a 4xx or 5xx reply code) ends the session as an MTA would.
// --concurrency C (default: --sessions) sessions run at once; --ip-base
// gives session i the address A.B.C.(i % 250 + 1). --pause-ms waits
// between steps (sessions still open when something happens to the milter).
// --bad-first HEX: before each session, a connection of its own that
// negotiates, sends these bytes and must then be closed by the milter.
//
// Output, one line: sessions=N complete=N refused=N eof=N timeout=N
// tempfail=N reject=N internal=N bad_closed=N bad_answered=N
// connect_p99_ms connect_max_ms mail_p99_ms mail_max_ms seconds
// ("refused": the socket refused the connection; "internal": a 451 4.3.0,
// the master's or worker's internal-error answer; "eof": the milter closed
// a session before its end). Then one "# first error: ..." line when any.
// Exit status: 0 when every session got an answer to every step it sent
// (complete, or refused by the policy), 1 otherwise, 2 on bad usage.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../support/milter_client.hpp"
#include "net/endpoint.hpp"
#include "util/cli.hpp"

namespace {

using namespace regmilter;
using testing::MilterConnection;
using testing::MilterResponse;
namespace cmd = testing::milter_cmd;
namespace proto = testing::milter_proto;
using Clock = std::chrono::steady_clock;

const char usage_text[] =
    "usage: milter-burst --socket unix:PATH|inet:PORT@127.0.0.1 [--sessions N] [--concurrency C]\n"
    "                    [--ip A.B.C.D] [--ip-base A.B.C.] [--helo NAME] [--from ADDR] [--rcpt ADDR]\n"
    "                    [--bad-first HEX] [--pause-ms MS] [--timeout-ms MS] [--max-seconds S]\n";

struct Options {
    net::SocketSpec socket;
    int sessions = 100, concurrency = 0;
    std::string ip = "198.51.100.7", ip_base, helo = "mx.example", from = "<alice@example.com>",
                rcpt = "<bob@example.org>", bad;
    int pause_ms = 0, timeout_ms = 30000, max_seconds = 120;
};

enum class End { complete, refused, eof, timeout, tempfail, reject, internal };

struct Result {
    End end = End::complete;
    double connect_ms = -1, mail_ms = -1;
    int bad = -1;  // -1 none sent, 0 answered or left open, 1 closed
    std::string error;
};

std::string unhex(const std::string& hex) {
    std::string out;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) out += char(std::stoi(hex.substr(i, 2), nullptr, 16));
    return out;
}

double ms_since(Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

class Runner {
public:
    explicit Runner(const Options& o) : o_(o) {}

    Result session(int index) {
        Result r;
        if (!o_.bad.empty()) r.bad = bad_connection();
        MilterConnection c;
        std::string error;
        if (!c.open(o_.socket, error)) {
            r.end = End::refused;
            r.error = error;
            return r;
        }
        auto fail = [&](End e, const std::string& what) {
            r.end = e;
            r.error = what;
            return r;
        };
        // Negotiate: every action, the steps regmilter skips offered.
        if (!c.send(cmd::negotiate, testing::negotiate_body(6, 0x1ff, 0x1fffff)))
            return fail(End::eof, "send negotiate");
        MilterResponse n;
        if (!c.receive(n, timeout(), error)) return fail(classify(error), "negotiate: " + error);
        const uint32_t p = c.protocol;
        std::string ip = o_.ip_base.empty() ? o_.ip : o_.ip_base + std::to_string(index % 250 + 1);
        struct Step {
            char command;
            std::string body;
            uint32_t skip, noreply;
            double* ms;
        };
        std::string hdr = testing::nul_terminated("Subject") + testing::nul_terminated("burst");
        const Step steps[] = {
            {cmd::connect, testing::connect_body("client.example", '4', 25, ip), proto::no_connect,
             proto::nr_connect, &r.connect_ms},
            {cmd::helo, testing::nul_terminated(o_.helo), proto::no_helo, proto::nr_helo, nullptr},
            {cmd::mail, testing::nul_terminated(o_.from), proto::no_mail, proto::nr_mail, &r.mail_ms},
            {cmd::rcpt, testing::nul_terminated(o_.rcpt), proto::no_rcpt, proto::nr_rcpt, nullptr},
            {cmd::header, hdr, proto::no_headers, proto::nr_header, nullptr},
            {cmd::end_of_headers, "", proto::no_eoh, proto::nr_eoh, nullptr},
            {cmd::end_of_body, "", 0, 0, nullptr},
        };
        for (const Step& s : steps) {
            if (p & s.skip) continue;
            if (o_.pause_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(o_.pause_ms));
            auto start = Clock::now();
            if (!c.send(s.command, s.body)) return fail(End::eof, std::string("send ") + s.command);
            if (p & s.noreply) continue;
            MilterResponse a;
            do {
                if (!c.receive(a, timeout(), error))
                    return fail(classify(error), std::string("answer to ") + s.command + ": " + error);
            } while (!a.final());
            if (s.ms) *s.ms = ms_since(start);
            End e = refusal(a);
            if (e != End::complete) {
                c.send(cmd::quit, "");
                return fail(e, std::string("answer to ") + s.command + ": " + a.describe());
            }
        }
        c.send(cmd::quit, "");
        return r;
    }

private:
    std::chrono::milliseconds timeout() const { return std::chrono::milliseconds(o_.timeout_ms); }

    static End classify(const std::string& error) {
        return error.find("timeout") != std::string::npos ? End::timeout : End::eof;
    }

    static End refusal(const MilterResponse& a) {
        if (a.code == 't') return End::tempfail;
        if (a.code == 'r') return End::reject;
        if (a.code == 'y') {
            std::string d = a.describe();  // "replycode 451 4.3.0 ..."
            if (d.rfind("replycode 451 4.3.0", 0) == 0) return End::internal;
            if (d.rfind("replycode 4", 0) == 0) return End::tempfail;
            return End::reject;
        }
        return End::complete;
    }

    // 1 when the milter closed the connection after the bad bytes without
    // answering them, 0 otherwise.
    int bad_connection() {
        MilterConnection c;
        std::string error;
        if (!c.open(o_.socket, error)) return 0;
        if (!c.send(cmd::negotiate, testing::negotiate_body(6, 0x1ff, 0x1fffff))) return 0;
        MilterResponse n;
        if (!c.receive(n, timeout(), error)) return 0;
        if (!c.send_raw(unhex(o_.bad))) return 1;  // already closed
        MilterResponse a;
        if (c.receive(a, std::chrono::milliseconds(5000), error)) return 0;
        return error.find("timeout") == std::string::npos ? 1 : 0;
    }

    const Options& o_;
};

double percentile(std::vector<double> v, double q) {
    if (v.empty()) return -1;
    std::sort(v.begin(), v.end());
    size_t i = std::min(v.size() - 1, size_t(q * double(v.size() - 1) + 0.5));
    return v[i];
}

}  // namespace

int main(int argc, char** argv) {
    enum {
        o_socket = 256,
        o_sessions,
        o_concurrency,
        o_ip,
        o_ip_base,
        o_helo,
        o_from,
        o_rcpt,
        o_bad,
        o_pause,
        o_timeout,
        o_max
    };
    const util::Cli cli("milter-burst", usage_text);
    Options o;
    std::string socket;
    auto rest = cli.parse(argc, argv,
                          {{"socket", 0, true, o_socket},
                           {"sessions", 0, true, o_sessions},
                           {"concurrency", 0, true, o_concurrency},
                           {"ip", 0, true, o_ip},
                           {"ip-base", 0, true, o_ip_base},
                           {"helo", 0, true, o_helo},
                           {"from", 0, true, o_from},
                           {"rcpt", 0, true, o_rcpt},
                           {"bad-first", 0, true, o_bad},
                           {"pause-ms", 0, true, o_pause},
                           {"timeout-ms", 0, true, o_timeout},
                           {"max-seconds", 0, true, o_max}},
                          [&](int id, const char* v) {
                              switch (id) {
                                  case o_socket:
                                      socket = v;
                                      break;
                                  case o_sessions:
                                      o.sessions = std::atoi(v);
                                      break;
                                  case o_concurrency:
                                      o.concurrency = std::atoi(v);
                                      break;
                                  case o_ip:
                                      o.ip = v;
                                      break;
                                  case o_ip_base:
                                      o.ip_base = v;
                                      break;
                                  case o_helo:
                                      o.helo = v;
                                      break;
                                  case o_from:
                                      o.from = v;
                                      break;
                                  case o_rcpt:
                                      o.rcpt = v;
                                      break;
                                  case o_bad:
                                      o.bad = v;
                                      break;
                                  case o_pause:
                                      o.pause_ms = std::atoi(v);
                                      break;
                                  case o_timeout:
                                      o.timeout_ms = std::atoi(v);
                                      break;
                                  case o_max:
                                      o.max_seconds = std::atoi(v);
                                      break;
                              }
                          });
    if (!rest.empty()) cli.fail("unexpected argument \"" + rest.front() + "\"");
    std::string error;
    auto spec = net::parse_socket(socket, error);
    if (!spec) cli.fail("--socket: " + error);
    if (spec->kind != net::SocketSpec::Kind::unix_path &&
        (spec->host.empty() || spec->reachable_from_network()))
        cli.fail("--socket: a unix socket or a loopback address only");
    o.socket = *spec;
    if (o.concurrency <= 0) o.concurrency = o.sessions;
    if (o.sessions < 1 || o.sessions > 100000 || o.concurrency > 1000 || o.pause_ms < 0 ||
        o.pause_ms > 60000 || o.timeout_ms < 1 || o.timeout_ms > 120000 || o.max_seconds < 1 ||
        o.max_seconds > 3600 || o.bad.size() % 2 != 0 ||
        o.bad.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
        cli.fail(
            "--sessions 1..100000, --concurrency ..1000, --pause-ms 0..60000, --timeout-ms 1..120000, "
            "--max-seconds 1..3600, --bad-first hex digits");

    Runner runner(o);
    std::vector<Result> results(size_t(o.sessions));
    std::atomic<int> next{0};
    const auto start = Clock::now();
    const auto stop_at = start + std::chrono::seconds(o.max_seconds);
    std::vector<std::thread> threads;
    for (int t = 0; t < o.concurrency; ++t)
        threads.emplace_back([&] {
            for (int i; (i = next++) < o.sessions;) {
                if (Clock::now() > stop_at) {
                    results[size_t(i)].end = End::timeout;
                    results[size_t(i)].error = "not started: --max-seconds";
                    continue;
                }
                results[size_t(i)] = runner.session(i);
            }
        });
    for (auto& t : threads) t.join();
    double seconds = ms_since(start) / 1000;

    int count[7] = {}, bad_closed = 0, bad_answered = 0;
    std::vector<double> connect, mail;
    std::string first_error;
    for (const Result& r : results) {
        count[int(r.end)]++;
        if (r.connect_ms >= 0) connect.push_back(r.connect_ms);
        if (r.mail_ms >= 0) mail.push_back(r.mail_ms);
        if (r.bad == 1) bad_closed++;
        if (r.bad == 0) bad_answered++;
        if (first_error.empty() && !r.error.empty()) first_error = r.error;
    }
    std::printf(
        "sessions=%d complete=%d refused=%d eof=%d timeout=%d tempfail=%d reject=%d internal=%d "
        "bad_closed=%d bad_answered=%d connect_p99_ms=%.1f connect_max_ms=%.1f mail_p99_ms=%.1f "
        "mail_max_ms=%.1f seconds=%.2f\n",
        o.sessions, count[0], count[1], count[2], count[3], count[4], count[5], count[6], bad_closed,
        bad_answered, percentile(connect, 0.99), percentile(connect, 1.0), percentile(mail, 0.99),
        percentile(mail, 1.0), seconds);
    if (!first_error.empty()) std::printf("# first error: %s\n", first_error.c_str());
    bool ok = count[int(End::refused)] == 0 && count[int(End::eof)] == 0 && count[int(End::timeout)] == 0;
    return ok ? 0 : 1;
}
