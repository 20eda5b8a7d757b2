// milter-client: a scripted MTA for the milter protocol. Reads a script (a
// file, or stdin), sends each command to the milter, and prints a transcript:
// "> COMMAND" for what it sent and "< RESPONSE" for each response (edits
// included), so that tests can assert on the exact answers. Bounded: every
// read waits at most --timeout-ms, the whole run at most --max-seconds.
//
// usage: milter-client --socket unix:PATH|inet:PORT@HOST|inet6:PORT@HOST
//                      [--timeout-ms MS] [--max-seconds S] [SCRIPT]
//
// Script, one command a line ("#" comments; \xHH, \0, \t, \\ escapes in values):
//   negotiate [actions=HEX] [protocol=HEX] [version=N]
//   macro LETTER NAME=VALUE ...       macros for the next command (C H M R N E ...)
//   connect HOSTNAME ADDRESS [PORT]    ADDRESS an IPv4/IPv6 literal, or "unknown"
//   helo NAME | mail ARG... | rcpt ARG... | header NAME VALUE... | eoh | body TEXT
//   eom | abort | quit | quit-nc | data | unknown TEXT
//   packet LETTER BODY                 any command letter with any body (no reply read)
//   raw HEX                            bytes as they are (no reply read)
//   read                               read one response
//   expect-silence MS                  print "< silence" if nothing comes within MS
//   close | reopen | sleep MS | touch PATH | wait-file PATH
// With --as-mta the commands an MTA would not send are skipped (and shown as
// "> (skipped) COMMAND"): RCPT and DATA after a refused MAIL FROM, the DATA
// stages when every recipient was refused.
// A transcript is a script with expectations: command lines start with "> ",
// expected responses with "< " ("*" matches any text), as the tool prints
// them. Every response is then compared, in order, with the expectations.
// Exit status: 0 when the script ran to its end (and every expectation of a
// transcript matched), 1 when the socket could not be opened or an
// expectation failed, 2 on a bad command line or script.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../support/milter_client.hpp"
#include "../support/unescape.hpp"
#include "net/address.hpp"
#include "net/endpoint.hpp"
#include "util/cli.hpp"
#include "util/strings.hpp"

namespace {

using namespace regmilter;
using testing::MilterConnection;
using testing::MilterResponse;
namespace cmd = testing::milter_cmd;
namespace proto = testing::milter_proto;

const char usage_text[] =
    "usage: milter-client --socket unix:PATH|inet:PORT@HOST|inet6:PORT@HOST [--timeout-ms MS]\n"
    "                     [--max-seconds S] [--as-mta] [SCRIPT]\n";

using testing::unescape;

// Glob match with '*' as the only special character.
bool matches(std::string_view text, std::string_view pattern) {
    size_t t = 0, p = 0, star = std::string_view::npos, mark = 0;
    while (t < text.size()) {
        if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            mark = t;
        } else if (p < pattern.size() && pattern[p] == text[t]) {
            ++p;
            ++t;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            t = ++mark;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') ++p;
    return p == pattern.size();
}

class Runner {
public:
    std::vector<std::string> responses;  // every "< " line printed, in order
    bool as_mta = false;

    Runner(net::SocketSpec socket, std::chrono::milliseconds timeout)
        : socket_(std::move(socket)), timeout_(timeout) {}

    bool open() {
        std::string error;
        if (conn_.open(socket_, error)) return true;
        say("cannot connect: " + error);
        return false;
    }

    // Reads responses until a final one; prints each.
    void answers() {
        for (;;) {
            MilterResponse r;
            std::string error;
            if (!conn_.receive(r, timeout_, error)) {
                say(error);
                return;
            }
            say(r.describe());
            if (r.final() || r.code == 'O') return;
        }
    }

    void say(const std::string& response) {
        std::cout << "< " << response << std::endl;
        responses.push_back(response);
    }

    void send(char c, const std::string& body, bool reply) {
        if (!conn_.is_open() || !conn_.send(c, body)) {
            say("send failed");
            return;
        }
        if (reply) answers();
    }

    // One script line; false on a line that is not a command.
    // One script line; false on a line that is not a command.
    bool run(const std::string& line) {
        std::string_view l = util::trim(line);
        if (l.empty() || l.front() == '#') return true;
        Line c;
        c.words = util::split(l, " ");
        c.verb = std::string(c.words[0]);
        c.rest = l.size() > c.verb.size() ? std::string(util::trim(l.substr(c.verb.size()))) : "";
        if (as_mta && mta_would_skip(c.verb)) {
            std::cout << "> (skipped) " << line << std::endl;
            return true;
        }
        std::cout << "> " << line << std::endl;
        size_t before = responses.size();
        bool known = negotiation(c) || smtp_step(c) || raw_traffic(c) || control(c);
        track(c.verb, before);
        return known;
    }

private:
    // What an MTA knows of the transaction so far (--as-mta).
    bool mail_refused_ = false, data_refused_ = false;
    int rcpts_ = 0, rcpts_accepted_ = 0;

    static bool refused(const std::string& response) {
        return response == "reject" || response == "tempfail" || response.rfind("replycode", 0) == 0;
    }
    bool mta_would_skip(const std::string& verb) const {
        bool data = verb == "header" || verb == "eoh" || verb == "body" || verb == "eom" || verb == "data";
        return (mail_refused_ && (verb == "rcpt" || data)) || (data && rcpts_ > 0 && rcpts_accepted_ == 0) ||
               (data_refused_ && (verb == "body" || verb == "eom"));
    }
    void track(const std::string& verb, size_t before) {
        std::string last = responses.size() > before ? responses.back() : "";
        if (verb == "mail") {
            mail_refused_ = refused(last);
            data_refused_ = false;
            rcpts_ = rcpts_accepted_ = 0;
        } else if (verb == "rcpt") {
            ++rcpts_;
            if (!refused(last)) ++rcpts_accepted_;
        } else if (verb == "eoh" || verb == "body") {
            data_refused_ = refused(last);
        } else if (verb == "abort" || verb == "eom" || verb == "quit-nc") {
            mail_refused_ = data_refused_ = false;
            rcpts_ = rcpts_accepted_ = 0;
        }
    }

    struct Line {
        std::vector<std::string_view> words;
        std::string verb, rest;
        std::string word(size_t i) const { return i < words.size() ? unescape(words[i]) : std::string(); }
    };

    // negotiate [actions=HEX] [protocol=HEX] [version=N]; macro LETTER NAME=VALUE...
    bool negotiation(const Line& c) {
        if (c.verb == "negotiate") {
            uint32_t version = 6, actions = 0x1ff, protocol = 0x1fffff;
            for (size_t i = 1; i < c.words.size(); ++i) {
                std::string w(c.words[i]);
                auto eq = w.find('=');
                if (eq == std::string::npos) throw std::invalid_argument("want NAME=VALUE: " + w);
                uint32_t v = uint32_t(std::stoul(w.substr(eq + 1), nullptr, 0));
                std::string key = w.substr(0, eq);
                if (key == "actions")
                    actions = v;
                else if (key == "protocol")
                    protocol = v;
                else if (key == "version")
                    version = v;
                else
                    throw std::invalid_argument("unknown negotiate setting " + key);
            }
            send(cmd::negotiate, testing::negotiate_body(version, actions, protocol), true);
            if (conn_.version != 0) {
                char buf[64];
                std::snprintf(buf, sizeof buf, "negotiated actions=0x%x protocol=0x%x", conn_.actions,
                              conn_.protocol);
                say(buf);
            }
            return true;
        }
        if (c.verb != "macro") return false;
        if (c.words.size() < 2 || c.words[1].size() != 1)
            throw std::invalid_argument("macro LETTER NAME=VALUE...");
        std::string body(c.words[1]);
        for (size_t i = 2; i < c.words.size(); ++i) {
            std::string w = unescape(c.words[i]);
            auto eq = w.find('=');
            body += testing::nul_terminated(w.substr(0, eq));
            body += testing::nul_terminated(eq == std::string::npos ? "" : w.substr(eq + 1));
        }
        send(cmd::macro, body, false);
        return true;
    }

    // The commands of an SMTP session; a reply is read unless the milter
    // negotiated it away.
    bool smtp_step(const Line& c) {
        uint32_t p = conn_.protocol;
        if (c.verb == "connect") {
            std::string host = c.word(1), addr = c.word(2);
            uint16_t port = c.words.size() > 3 ? uint16_t(std::stoi(c.word(3))) : 25;
            auto a = net::Address::parse(addr);
            char family = !a ? 'U' : a->is_v4() ? '4' : '6';
            send(cmd::connect, testing::connect_body(host, family, port, addr), !(p & proto::nr_connect));
        } else if (c.verb == "helo") {
            send(cmd::helo, testing::nul_terminated(unescape(c.rest)), !(p & proto::nr_helo));
        } else if (c.verb == "mail" || c.verb == "rcpt") {
            std::string body;
            for (size_t i = 1; i < c.words.size(); ++i) body += testing::nul_terminated(c.word(i));
            bool mail = c.verb == "mail";
            send(mail ? cmd::mail : cmd::rcpt, body, !(p & (mail ? proto::nr_mail : proto::nr_rcpt)));
        } else if (c.verb == "header") {
            if (c.words.size() < 2) throw std::invalid_argument("header NAME VALUE");
            std::string value = unescape(util::trim(std::string_view(c.rest).substr(c.words[1].size())));
            send(cmd::header, testing::nul_terminated(c.word(1)) + testing::nul_terminated(value),
                 !(p & proto::nr_header));
        } else if (c.verb == "eoh") {
            send(cmd::end_of_headers, "", !(p & proto::nr_eoh));
        } else if (c.verb == "body") {
            send(cmd::body, unescape(c.rest), !(p & proto::nr_body));
        } else if (c.verb == "eom") {
            send(cmd::end_of_body, "", true);
        } else if (c.verb == "data") {
            send(cmd::data, "", !(p & proto::nr_data));
        } else if (c.verb == "unknown") {
            send(cmd::unknown, testing::nul_terminated(unescape(c.rest)), !(p & proto::nr_unknown));
        } else if (c.verb == "abort" || c.verb == "quit" || c.verb == "quit-nc") {
            send(c.verb == "abort" ? cmd::abort : c.verb == "quit" ? cmd::quit : cmd::quit_nc, "", false);
        } else {
            return false;
        }
        return true;
    }

    // Traffic no MTA sends: any packet, raw bytes; reading by hand.
    bool raw_traffic(const Line& c) {
        if (c.verb == "packet") {
            if (c.words.size() < 2 || c.words[1].size() != 1)
                throw std::invalid_argument("packet LETTER BODY");
            send(c.words[1][0], c.rest.size() > 1 ? unescape(util::trim(c.rest.substr(1))) : "", false);
        } else if (c.verb == "raw") {
            std::string bytes;
            for (size_t i = 1; i < c.words.size(); ++i)
                for (size_t j = 0; j + 1 < c.words[i].size(); j += 2)
                    bytes += char(std::stoi(std::string(c.words[i].substr(j, 2)), nullptr, 16));
            if (!conn_.is_open() || !conn_.send_raw(bytes)) say("send failed");
        } else if (c.verb == "read") {
            answers();
        } else if (c.verb == "expect-silence") {
            MilterResponse r;
            std::string error;
            if (conn_.receive(r, std::chrono::milliseconds(std::stoi(c.word(1))), error))
                say(r.describe());
            else
                say(error == "timeout" ? "silence" : error);
        } else {
            return false;
        }
        return true;
    }

    // The connection and the script's pace.
    bool control(const Line& c) {
        if (c.verb == "close") {
            conn_.close();
        } else if (c.verb == "reopen") {
            open();
        } else if (c.verb == "sleep") {
            std::this_thread::sleep_for(std::chrono::milliseconds(std::stoi(c.word(1))));
        } else if (c.verb == "touch") {
            std::ofstream(c.word(1)).flush();
        } else if (c.verb == "wait-file") {
            struct stat st;
            for (int i = 0; i < 600 && ::stat(c.word(1).c_str(), &st) != 0; ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
        } else {
            return false;
        }
        return true;
    }

    net::SocketSpec socket_;
    std::chrono::milliseconds timeout_;
    MilterConnection conn_;
};

}  // namespace

int main(int argc, char** argv) {
    enum { o_socket = 256, o_timeout, o_max, o_as_mta };
    const util::Cli cli("milter-client", usage_text);
    std::string socket_text;
    long timeout_ms = 10000, max_seconds = 120;
    bool as_mta = false;
    auto rest = cli.parse(argc, argv,
                          {{"socket", 0, true, o_socket},
                           {"timeout-ms", 0, true, o_timeout},
                           {"max-seconds", 0, true, o_max},
                           {"as-mta", 0, false, o_as_mta}},
                          [&](int id, const char* v) {
                              if (id == o_socket) socket_text = v;
                              if (id == o_timeout) timeout_ms = cli.number("--timeout-ms", v, 1, 600000);
                              if (id == o_max) max_seconds = cli.number("--max-seconds", v, 1, 3600);
                              if (id == o_as_mta) as_mta = true;
                          });
    if (socket_text.empty()) cli.fail("--socket is required");
    if (rest.size() > 1) cli.fail("one script at most");
    std::string error;
    auto socket = net::parse_socket(socket_text, error);
    if (!socket) cli.fail(error);
    alarm(unsigned(max_seconds));  // the whole run is bounded, whatever the milter does

    std::ifstream file;
    if (!rest.empty()) {
        file.open(rest[0]);
        if (!file) cli.fail("cannot read " + rest[0]);
    }
    std::istream& in = rest.empty() ? std::cin : file;
    Runner runner(*socket, std::chrono::milliseconds(timeout_ms));
    runner.as_mta = as_mta;
    bool opened = runner.open();
    std::vector<std::pair<int, std::string>> expected;  // (line, pattern) of a transcript
    std::string line;
    int no = 0;
    while (std::getline(in, line)) {
        ++no;
        if (line.rfind("< ", 0) == 0) {
            expected.emplace_back(no, line.substr(2));
            continue;
        }
        if (line.rfind("> ", 0) == 0) line = line.substr(2);
        if (!opened && util::trim(line) != "reopen") continue;
        try {
            if (!runner.run(line)) {
                std::fprintf(stderr, "milter-client: script line %d: cannot read \"%s\"\n", no, line.c_str());
                return 2;
            }
            if (util::trim(line) == "reopen") opened = true;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "milter-client: script line %d: %s\n", no, e.what());
            return 2;
        }
    }
    if (expected.empty()) return opened ? 0 : 1;
    // A transcript: every response, in order, against its expectation.
    const auto& got = runner.responses;
    for (size_t i = 0; i < std::max(expected.size(), got.size()); ++i) {
        if (i < expected.size() && i < got.size() && matches(got[i], expected[i].second)) continue;
        std::string want = i < expected.size() ? "\"" + expected[i].second + "\" (line " +
                                                     std::to_string(expected[i].first) + ")"
                                               : "nothing more";
        std::string have = i < got.size() ? "\"" + got[i] + "\"" : "nothing more";
        std::printf("mismatch at response %zu: got %s, want %s\n", i + 1, have.c_str(), want.c_str());
        return 1;
    }
    std::printf("transcript matched: %zu responses\n", got.size());
    return 0;
}
