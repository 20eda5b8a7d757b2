// milter packets: framing (whole, byte by byte, zero, truncated and huge
// lengths), the check of every MTA command in every valid and malformed form
// ("Cj\0" among them), macros and negotiation both ways, reply kinds, the
// master's own replies, and the model of libmilter's state table.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "../support/milter_client.hpp"
#include "milter/packet.hpp"

using namespace regmilter;
using milter::Frame;

namespace {

// The milter packet bodies of the test support library.
constexpr auto& z = testing::nul_terminated;
constexpr auto& negotiate = testing::negotiate_body;
using testing::be32;

std::string connect(const std::string& host, char family, const std::string& address) {
    return z(host) + family + std::string("\x61\xa8", 2) + z(address);
}

Frame frame(char cmd, const std::string& data = "") {
    return Frame{cmd, data};
}

// Shown in failure messages: the command and its data with NULs as "\0".
std::string show(const Frame& f) {
    std::string out = std::string(1, f.command) + " \"";
    for (char c : f.data) out += c == '\0' ? std::string("\\0") : std::string(1, c);
    return out + "\"";
}

std::vector<Frame> parse_all(milter::FrameParser& p) {
    std::vector<Frame> out;
    Frame f;
    while (p.next(f) == milter::FrameParser::Status::frame) out.push_back(f);
    return out;
}

const std::vector<Frame> session = {
    frame('O', negotiate(6, 0x1ff, 0x1fffff)),
    frame('D', "C" + z("j") + z("mx.example.org") + z("{daemon_name}") + z("smtpd")),
    frame('C', connect("client.example.net", '4', "192.0.2.7")),
    frame('H', z("client.example.net")),
    frame('D', "M" + z("i") + z("4BQ1x") + z("{auth_authen}") + z("")),
    frame('M', z("<alice@example.net>") + z("SIZE=100")),
    frame('R', z("<bob@example.org>")),
    frame('T'),
    frame('L', z("Subject") + z("hello")),
    frame('N'),
    frame('B', "Hi Bob,\r\n"),
    frame('E'),
    frame('Q'),
};

}  // namespace

TEST_CASE("milter packet: frames come back whole however the bytes arrive", "[packet]") {
    std::string bytes;
    for (const Frame& f : session) bytes += milter::encode(f.command, f.data);
    for (size_t step : {size_t(1), size_t(3), size_t(7), bytes.size()}) {
        INFO("fed " << step << " bytes at a time");
        milter::FrameParser p;
        std::vector<Frame> got;
        for (size_t at = 0; at < bytes.size(); at += step) {
            p.feed(std::string_view(bytes).substr(at, step));
            for (Frame& f : parse_all(p)) got.push_back(f);
        }
        REQUIRE(got.size() == session.size());
        for (size_t i = 0; i < got.size(); ++i) {
            CHECK(show(got[i]) == show(session[i]));
            CHECK(milter::check_command(got[i]) == "");
        }
        CHECK(p.buffered() == 0);
    }
}

TEST_CASE("milter packet: lengths libmilter would misread stop the stream", "[packet]") {
    struct Case {
        const char* name;
        std::string bytes;
        milter::FrameParser::Status want;
        const char* error;  // part of error() when want is error
        uint32_t max = milter::max_data_default;
    };
    const Case cases[] = {
        {"zero length", be32(0) + "C", milter::FrameParser::Status::error, "packet length 0"},
        {"all ones", be32(0xffffffff) + "B", milter::FrameParser::Status::error,
         "packet length 4294967295 over"},
        {"top bit (libmilter reads it as empty)", be32(0x80000001) + "B", milter::FrameParser::Status::error,
         "over the limit of 65536"},
        {"one over libmilter's limit", be32(65537) + "B", milter::FrameParser::Status::error,
         "packet length 65537 over the limit of 65536"},
        {"at libmilter's limit, data to come", be32(65536) + "B", milter::FrameParser::Status::need_more, ""},
        {"over 64K with 1M negotiated", be32(65537) + "B", milter::FrameParser::Status::need_more, "",
         1048575},
        {"three bytes of a length", std::string("\0\0\0", 3), milter::FrameParser::Status::need_more, ""},
        {"length without its command", be32(1), milter::FrameParser::Status::need_more, ""},
        {"truncated data", be32(10) + "Mabc", milter::FrameParser::Status::need_more, ""},
        {"command alone", be32(1) + "N", milter::FrameParser::Status::frame, ""},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        milter::FrameParser p(c.max);
        p.feed(c.bytes);
        Frame f;
        CHECK(p.next(f) == c.want);
        if (c.want == milter::FrameParser::Status::error) {
            CHECK_THAT(p.error(), Catch::Contains(c.error));
            p.feed(milter::encode('N', ""));  // no resynchronisation
            CHECK(p.next(f) == milter::FrameParser::Status::error);
        }
        if (c.want == milter::FrameParser::Status::need_more) CHECK(p.buffered() == c.bytes.size());
    }
}

TEST_CASE("milter packet: every valid form of every command passes", "[packet]") {
    const std::string port = std::string("\0\0", 2);
    const Frame valid[] = {
        frame('O', negotiate(6, 0x1ff, 0x1fffff)),
        frame('O', negotiate(2, 0, 0)),
        frame('O', negotiate(6, 0, 0) + "later versions may say more"),
        frame('D', "C"),  // Postfix sends a stage with no macros when the list is empty
        frame('D', "C" + z("j") + z("mx")),
        frame('D', "H" + z("{tls_version}") + z("")),
        frame('D', "M" + z("i") + z("4BQ1x") + z("{mail_addr}") + z("a@b")),
        frame('D', "R" + z("{rcpt_addr}") + z("b@c")),
        frame('D', "T" + z("i") + z("q")),
        frame('D', "N" + z("i") + z("q")),
        frame('D', "E" + z("i") + z("q")),
        frame('D', "L" + z("i") + z("q")),  // Postfix: header, body and unknown-command stages too
        frame('D', "B" + z("i") + z("q")),
        frame('D', "U" + z("i") + z("q")),
        frame('C', connect("client.example", '4', "192.0.2.7")),
        frame('C', connect("[192.0.2.7]", '4', "192.0.2.7")),
        frame('C', connect("x", '4', "127.1")),  // inet_aton's forms: libmilter takes them
        frame('C', connect("client.example", '6', "2001:db8::7")),
        frame('C', connect("client.example", '6', "IPv6:2001:db8::7")),  // Sendmail's form
        frame('C', connect("client.example", '6', "ipv6:::1")),
        frame('C', connect("client.example", '6', "::ffff:192.0.2.7")),
        frame('C', connect("localhost", 'L', "/var/run/smtp.sock")),
        frame('C', connect("localhost", 'L', "")),
        frame('C', z("unknown") + "U"),
        frame('C', z("") + "U"),
        frame('H', z("client.example")),
        frame('M', z("<alice@example.net>")),
        frame('M', z("<>") + z("SIZE=1000") + z("BODY=8BITMIME")),
        frame('M', z("")),
        frame('R', z("<bob@example.org>")),
        frame('R', z("<bob@example.org>") + z("NOTIFY=NEVER")),
        frame('L', z("Subject") + z("hello")),
        frame('L', z("X-Empty") + z("")),
        frame('N'),
        frame('T'),
        frame('A'),
        frame('Q'),
        frame('K'),
        frame('B', "x"),
        frame('B', std::string(65535, 'b')),
        frame('E'),
        frame('U', z("XFOO bar")),
    };
    for (const Frame& f : valid) {
        INFO(show(f));
        CHECK(milter::check_command(f) == "");
    }
}

TEST_CASE("milter packet: every malformed form is refused with its reason", "[packet]") {
    struct Case {
        Frame f;
        const char* reason;  // the whole reason
    };
    const std::string port = std::string("\x61\xa8", 2);
    const Case cases[] = {
        // Macros: the crash of issue 8 and its relatives.
        {frame('D', "C" + z("j")), "macro packet: name \"j\" has no value"},
        {frame('D', "C" + z("a") + z("1") + z("b")), "macro packet: name \"b\" has no value"},
        {frame('D', ""), "macro packet: empty (no stage)"},
        {frame('D', "Z" + z("j") + z("v")), "macro packet: unknown stage 'Z'"},
        {frame('D', std::string(1, '\0') + z("j") + z("v")), "macro packet: unknown stage 0x00"},
        {frame('D', "C" + z("j") + "v"), "macro packet: \"v\" is not NUL-terminated"},
        {frame('D', "Cj"), "macro packet: \"j\" is not NUL-terminated"},
        {frame('D', "C" + z("") + z("v")), "macro packet: empty name (value \"v\")"},
        // Connect, as st_connectinfo() reads it.
        {frame('C', "client"), "connect packet: host name not NUL-terminated"},
        {frame('C', ""), "connect packet: host name not NUL-terminated"},
        {frame('C', z("client")), "connect packet: no address family after the host name"},
        {frame('C', z("client") + "X" + port + z("1.2.3.4")), "connect packet: unknown address family 'X'"},
        {frame('C', z("client") + "4"), "connect packet: no port and address after family '4'"},
        {frame('C', z("client") + "4" + port), "connect packet: no port and address after family '4'"},
        {frame('C', z("client") + "4" + port + "1.2.3.4"), "connect packet: address not NUL-terminated"},
        {frame('C', z("client") + "4" + port + z("1.2.3.4") + z("x")),
         "connect packet: 2 bytes after the address"},
        {frame('C', connect("client", '4', "::1")),
         "connect packet: address \"::1\" is not IPv4 (family '4')"},
        {frame('C', connect("client", '4', "")), "connect packet: address \"\" is not IPv4 (family '4')"},
        {frame('C', connect("client", '6', "192.0.2.7")),
         "connect packet: address \"192.0.2.7\" is not IPv6 (family '6')"},
        {frame('C', connect("client", '6', "IPv6:")),
         "connect packet: address \"IPv6:\" is not IPv6 (family '6')"},
        {frame('C', connect("client", 'L', std::string(108, 'p'))),
         "connect packet: unix socket path of 108 bytes (at most 107)"},
        // One string.
        {frame('H', ""), "helo packet: empty"},
        {frame('H', "client"), "helo packet: name not NUL-terminated"},
        {frame('H', z("a") + z("b")), "helo packet: NUL inside the name"},
        {frame('U', ""), "unknown-command packet: empty"},
        {frame('U', "XFOO"), "unknown-command packet: command not NUL-terminated"},
        // Arguments.
        {frame('M', ""), "mail packet: empty"},
        {frame('M', "<a@b>"), "mail packet: last argument not NUL-terminated"},
        {frame('M', z("<a@b>") + "SIZE=1"), "mail packet: last argument not NUL-terminated"},
        {frame('R', ""), "rcpt packet: empty"},
        {frame('R', "<a@b>"), "rcpt packet: last argument not NUL-terminated"},
        // Headers.
        {frame('L', ""), "header packet: not NUL-terminated"},
        {frame('L', "Subject"), "header packet: not NUL-terminated"},
        {frame('L', z("Subject")), "header packet: 1 string, want a name and a value"},
        {frame('L', z("a") + z("b") + z("c")), "header packet: 3 strings, want a name and a value"},
        {frame('L', z("") + z("v")), "header packet: empty header name"},
        // Negotiation.
        {frame('O', std::string(11, '\0')), "negotiation packet: 11 bytes, want at least 12"},
        {frame('O', ""), "negotiation packet: 0 bytes, want at least 12"},
        {frame('O', negotiate(1, 0, 0)),
         "negotiation packet: protocol version 1, libmilter wants 2 or later"},
        // Body and end of message.
        {frame('B', ""), "body packet: empty"},
        {frame('E', "tail"), "end-of-message packet: 4 body bytes (libmilter may answer it twice)"},
        // Commands that carry nothing.
        {frame('A', "x"), "abort packet: 1 byte of data, want none"},
        {frame('N', "xy"), "end-of-headers packet: 2 bytes of data, want none"},
        {frame('T', "x"), "data packet: 1 byte of data, want none"},
        {frame('Q', "x"), "quit packet: 1 byte of data, want none"},
        {frame('K', "x"), "quit-new-connection packet: 1 byte of data, want none"},
        // Not a command.
        {frame('Z', ""), "unknown command 'Z'"},
        {frame('c', ""), "unknown command 'c'"},
        {frame('\x01', ""), "unknown command 0x01"},
    };
    for (const auto& c : cases) {
        INFO(show(c.f));
        CHECK(milter::check_command(c.f) == c.reason);
    }
}

TEST_CASE("milter packet: macros and negotiation both ways", "[packet]") {
    const std::string data = "C" + z("j") + z("mx") + z("{daemon_name}") + z("");
    auto p = milter::parse_macros(data);
    REQUIRE(p);
    CHECK(p->stage == 'C');
    REQUIRE(p->macros.size() == 2);
    CHECK(p->macros[0].name == "j");
    CHECK(p->macros[0].value == "mx");
    CHECK(p->macros[1].name == "{daemon_name}");
    CHECK(p->macros[1].value == "");
    CHECK(milter::macro_data(*p) == data);
    CHECK(milter::parse_macros("C")->macros.empty());
    CHECK_FALSE(milter::parse_macros("C" + z("j")));

    auto n = milter::parse_negotiation(negotiate(6, 0x1ff, 0x1fffff) + "xy");
    REQUIRE(n);
    CHECK(n->version == 6);
    CHECK(n->actions == 0x1ff);
    CHECK(n->protocol == 0x1fffff);
    CHECK(n->extra == "xy");
    CHECK(milter::negotiation_data(*n) == negotiate(6, 0x1ff, 0x1fffff) + "xy");
    CHECK_FALSE(milter::parse_negotiation(std::string(11, '\0')));
}

TEST_CASE("milter packet: reply kinds and the master's own replies", "[packet]") {
    using K = milter::ReplyKind;
    const std::pair<char, K> kinds[] = {
        {'a', K::answer},  {'c', K::answer},  {'d', K::answer},   {'r', K::answer}, {'t', K::answer},
        {'y', K::answer},  {'s', K::answer},  {'4', K::answer},   {'f', K::answer}, {'O', K::negotiation},
        {'+', K::edit},    {'-', K::edit},    {'2', K::edit},     {'e', K::edit},   {'h', K::edit},
        {'i', K::edit},    {'m', K::edit},    {'b', K::edit},     {'q', K::edit},   {'p', K::progress},
        {'l', K::invalid}, {'C', K::invalid}, {'\0', K::invalid},
    };
    for (const auto& [code, want] : kinds) {
        INFO("reply '" << code << "'");
        CHECK(milter::classify_reply(code) == want);
    }
    CHECK(milter::encode(milter::continue_reply()) == be32(1) + "c");
    CHECK(milter::encode(milter::accept_reply()) == be32(1) + "a");
    CHECK(milter::encode(milter::tempfail_reply()) == be32(1) + "t");
    const std::string text = z("451 4.3.0 100%% down?? try later");
    CHECK(milter::encode(milter::reply_code_reply("451", "4.3.0", "100% down\r\n try later")) ==
          be32(uint32_t(text.size() + 1)) + "y" + text);
}

namespace {

using Effect = milter::Conversation::Effect;

// One step of a scripted conversation: an MTA command (what the model says
// of it) or a filter reply (its effect).
struct Line {
    bool from_mta;
    Frame f;
    bool taken = false, answered = false;  // from_mta
    Effect effect = Effect::answered;      // a reply
    char answers = 0;                      // a reply: the command it answers
};

Line mta(char cmd, const std::string& data, bool taken, bool answered) {
    return Line{true, frame(cmd, data), taken, answered};
}
Line filter(char code, const std::string& data, Effect effect, char answers = 0) {
    return Line{false, frame(code, data), false, false, effect, answers};
}

void play(const std::vector<Line>& script, milter::Conversation& c) {
    for (size_t i = 0; i < script.size(); ++i) {
        const Line& l = script[i];
        INFO("line " << i << ": " << (l.from_mta ? "MTA " : "filter ") << show(l.f));
        if (l.from_mta) {
            auto step = c.command(l.f);
            CHECK(step.taken == l.taken);
            CHECK(step.answered == l.answered);
        } else {
            auto r = c.reply(l.f);
            CHECK(int(r.effect) == int(l.effect));
            CHECK(r.command == l.answers);
        }
    }
}

}  // namespace

TEST_CASE("milter packet: the model says which commands libmilter answers", "[packet]") {
    const std::string all = negotiate(6, 0x1ff, 0x1fffff);
    const std::string ip4 = connect("c", '4', "192.0.2.7");
    struct Case {
        const char* name;
        std::vector<Line> script;
        bool in_transaction_after;
    };
    const Case cases[] = {
        {"a whole session, every step answered",
         {mta('O', all, true, true),
          filter('O', negotiate(6, 0, 0), Effect::answered, 'O'),
          mta('D', "C" + z("j") + z("mx"), true, false),
          mta('C', ip4, true, true),
          filter('c', "", Effect::answered, 'C'),
          mta('H', z("c"), true, true),
          filter('c', "", Effect::answered, 'H'),
          mta('M', z("<a@b>"), true, true),
          filter('c', "", Effect::answered, 'M'),
          mta('R', z("<b@c>"), true, true),
          filter('c', "", Effect::answered, 'R'),
          mta('T', "", true, true),
          filter('c', "", Effect::answered, 'T'),
          mta('L', z("S") + z("v"), true, true),
          filter('c', "", Effect::answered, 'L'),
          mta('N', "", true, true),
          filter('c', "", Effect::answered, 'N'),
          mta('B', "x", true, true),
          filter('c', "", Effect::answered, 'B'),
          mta('E', "", true, true),
          filter('h', z("X") + z("y"), Effect::edit),
          filter('p', "", Effect::edit),
          filter('c', "", Effect::answered, 'E'),
          mta('Q', "", true, false)},
         false},
        {"no-reply flags: connect and headers unanswered",
         {mta('O', all, true, true),
          filter('O', negotiate(6, 0, milter::flag::no_reply_connect | milter::flag::no_reply_header),
                 Effect::answered, 'O'),
          mta('C', ip4, true, false), mta('H', z("c"), true, true), filter('c', "", Effect::answered, 'H'),
          mta('M', z("<a@b>"), true, true), filter('c', "", Effect::answered, 'M'),
          mta('R', z("<b@c>"), true, true), filter('c', "", Effect::answered, 'R'),
          mta('L', z("S") + z("v"), true, false), mta('L', z("T") + z("w"), true, false),
          mta('N', "", true, true)},
         true},
        {"a refused MAIL ends the transaction: the abort after it is dropped",
         {mta('O', all, true, true), filter('O', negotiate(6, 0, 0), Effect::answered, 'O'),
          mta('C', ip4, true, true), filter('c', "", Effect::answered, 'C'), mta('M', z("<a@b>"), true, true),
          filter('y', z("451 4.7.1 later"), Effect::answered, 'M'), mta('A', "", false, false),
          mta('R', z("<b@c>"), false, false), mta('M', z("<a@b>"), true, true)},
         true},
        {"a refused RCPT leaves the transaction open",
         {mta('O', all, true, true), filter('O', negotiate(6, 0, 0), Effect::answered, 'O'),
          mta('C', ip4, true, true), filter('c', "", Effect::answered, 'C'), mta('M', z("<a@b>"), true, true),
          filter('c', "", Effect::answered, 'M'), mta('R', z("<b@c>"), true, true),
          filter('r', "", Effect::answered, 'R'), mta('R', z("<d@c>"), true, true),
          filter('c', "", Effect::answered, 'R'), mta('U', z("XFOO"), true, true),
          filter('c', "", Effect::answered, 'U')},
         true},
        {"an accepted message: the rest of it is dropped, the abort too",
         {mta('O', all, true, true), filter('O', negotiate(6, 0, 0), Effect::answered, 'O'),
          mta('C', ip4, true, true), filter('c', "", Effect::answered, 'C'), mta('M', z("<a@b>"), true, true),
          filter('a', "", Effect::answered, 'M'), mta('R', z("<b@c>"), false, false),
          mta('A', "", false, false)},
         false},
        {"out of order: RCPT without MAIL, a second negotiation, a second connect: dropped",
         {mta('O', all, true, true), filter('O', negotiate(6, 0, 0), Effect::answered, 'O'),
          mta('C', ip4, true, true), filter('c', "", Effect::answered, 'C'),
          mta('R', z("<b@c>"), false, false), mta('O', all, false, false), mta('C', ip4, false, false),
          mta('H', z("c"), true, true)},
         false},
        {"anything before the negotiation sends libmilter to \"after HELO\": the negotiation is dropped",
         {mta('C', ip4, false, false), mta('O', all, false, false), mta('H', z("c"), true, true)},
         false},
        {"skipped steps: with RCPT negotiated away a header may follow MAIL",
         {mta('O', all, true, true),
          filter('O', negotiate(6, 0, milter::flag::no_rcpt | milter::flag::no_data), Effect::answered, 'O'),
          mta('C', ip4, true, true), filter('c', "", Effect::answered, 'C'), mta('M', z("<a@b>"), true, true),
          filter('c', "", Effect::answered, 'M'), mta('L', z("S") + z("v"), true, true)},
         true},
        {"without that, the header is dropped",
         {mta('O', all, true, true), filter('O', negotiate(6, 0, 0), Effect::answered, 'O'),
          mta('C', ip4, true, true), filter('c', "", Effect::answered, 'C'), mta('M', z("<a@b>"), true, true),
          filter('c', "", Effect::answered, 'M'), mta('L', z("S") + z("v"), false, false)},
         false},
        {"quit, new connection: a connect may follow the end of a message",
         {mta('O', all, true, true), filter('O', negotiate(6, 0, 0), Effect::answered, 'O'),
          mta('C', ip4, true, true), filter('c', "", Effect::answered, 'C'), mta('M', z("<a@b>"), true, true),
          filter('c', "", Effect::answered, 'M'), mta('R', z("<b@c>"), true, true),
          filter('c', "", Effect::answered, 'R'), mta('E', "", true, true),
          filter('c', "", Effect::answered, 'E'), mta('K', "", true, false), mta('C', ip4, true, true),
          filter('c', "", Effect::answered, 'C')},
         false},
        {"replies nobody waits for",
         {filter('c', "", Effect::unexpected), mta('O', all, true, true), filter('c', "", Effect::unexpected),
          filter('O', std::string(11, '\0'), Effect::unexpected), filter('Z', "", Effect::unexpected),
          filter('O', negotiate(6, 0, 0), Effect::answered, 'O'),
          filter('O', negotiate(6, 0, 0), Effect::unexpected), mta('C', ip4, true, true),
          filter('O', negotiate(6, 0, 0), Effect::unexpected), filter('c', "", Effect::answered, 'C')},
         false},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        milter::Conversation conv;
        play(c.script, conv);
        CHECK(conv.in_transaction() == c.in_transaction_after);
    }
}

TEST_CASE("milter packet: the negotiated data size and what each side offered", "[packet]") {
    milter::Conversation c;
    CHECK(c.max_data() == 65535);
    c.command(frame('O', negotiate(6, 0x1ff, 0x1fffff | milter::flag::max_data_1m)));
    REQUIRE(c.mta());
    CHECK(c.mta()->protocol == (0x1fffff | milter::flag::max_data_1m));
    CHECK(c.awaited() == std::deque<char>{'O'});
    c.reply(frame('O', negotiate(6, 0, milter::flag::max_data_1m)));
    CHECK(c.awaited().empty());
    CHECK(c.max_data() == 1024 * 1024 - 1);
    CHECK(milter::max_data_for(milter::flag::max_data_256k) == 256 * 1024 - 1);
}
