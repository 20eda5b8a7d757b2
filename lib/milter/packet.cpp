#include "milter/packet.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/un.h>

#include <cstring>

#include "util/text.hpp"

namespace regmilter::milter {

namespace {

uint32_t get32(std::string_view s, size_t at) {
    return uint32_t(uint8_t(s[at])) << 24 | uint32_t(uint8_t(s[at + 1])) << 16 |
           uint32_t(uint8_t(s[at + 2])) << 8 | uint32_t(uint8_t(s[at + 3]));
}

void put32(std::string& out, uint32_t v) {
    out += char(v >> 24);
    out += char(v >> 16);
    out += char(v >> 8);
    out += char(v);
}

// A byte or a name as a log line can show it.
std::string shown_char(char c) {
    if (c > 0x20 && c < 0x7f) return std::string("'") + c + "'";
    static const char hex[] = "0123456789abcdef";
    return std::string("0x") + hex[uint8_t(c) >> 4] + hex[uint8_t(c) & 15];
}

std::string shown(std::string_view s) {
    return "\"" + util::sanitize(s.substr(0, 64), util::TextUse::log_value) +
           (s.size() > 64 ? "...\"" : "\"");
}

std::string count(size_t n, const char* what) {
    return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

// The NUL-terminated strings of `data`; false when the last one has no NUL.
bool split_strings(std::string_view data, std::vector<std::string_view>& out) {
    out.clear();
    size_t at = 0;
    while (at < data.size()) {
        size_t nul = data.find('\0', at);
        if (nul == std::string_view::npos) return false;
        out.push_back(data.substr(at, nul - at));
        at = nul + 1;
    }
    return true;
}

const char* packet_name(char cmd) {
    switch (cmd) {
        case command::abort:
            return "abort packet";
        case command::body:
            return "body packet";
        case command::connect:
            return "connect packet";
        case command::macro:
            return "macro packet";
        case command::end_of_message:
            return "end-of-message packet";
        case command::helo:
            return "helo packet";
        case command::quit_new_connection:
            return "quit-new-connection packet";
        case command::header:
            return "header packet";
        case command::mail:
            return "mail packet";
        case command::end_of_headers:
            return "end-of-headers packet";
        case command::negotiate:
            return "negotiation packet";
        case command::quit:
            return "quit packet";
        case command::rcpt:
            return "rcpt packet";
        case command::data:
            return "data packet";
        case command::unknown:
            return "unknown-command packet";
    }
    return "packet";
}

// The stages libmilter keeps macros for (st_macros: C H M R T E N) and the
// other commands MTAs send macros with (Postfix sends them for headers,
// body chunks and unknown commands too; libmilter drops those unread).
bool known_stage(char c) {
    return std::string_view("CHMRTENLBU").find(c) != std::string_view::npos;
}

std::string check_macros(std::string_view data) {
    if (data.empty()) return "macro packet: empty (no stage)";
    if (!known_stage(data[0])) return "macro packet: unknown stage " + shown_char(data[0]);
    std::vector<std::string_view> s;
    if (!split_strings(data.substr(1), s)) {
        size_t last = data.rfind('\0');
        return "macro packet: " + shown(data.substr(last == std::string_view::npos ? 1 : last + 1)) +
               " is not NUL-terminated";
    }
    // smfi_getsymval() steps through the strings two at a time until a null
    // pointer: with an odd count it steps over the array's end.
    if (s.size() % 2) return "macro packet: name " + shown(s.back()) + " has no value";
    for (size_t i = 0; i < s.size(); i += 2)
        if (s[i].empty()) return "macro packet: empty name (value " + shown(s[i + 1]) + ")";
    return "";
}

// One NUL-terminated string filling the whole data (helo, unknown command).
std::string check_one_string(char cmd, std::string_view data, const char* what) {
    if (data.empty()) return std::string(packet_name(cmd)) + ": empty";
    if (data.back() != '\0') return std::string(packet_name(cmd)) + ": " + what + " not NUL-terminated";
    if (data.find('\0') != data.size() - 1) return std::string(packet_name(cmd)) + ": NUL inside the " + what;
    return "";
}

std::string check_connect(std::string_view data) {
    const std::string p = "connect packet: ";
    size_t nul = data.find('\0');
    if (nul == std::string_view::npos) return p + "host name not NUL-terminated";
    if (nul + 1 >= data.size()) return p + "no address family after the host name";
    char family = data[nul + 1];
    std::string_view rest = data.substr(nul + 2);
    if (family == 'U') return "";  // unknown: libmilter reads nothing more
    if (family != '4' && family != '6' && family != 'L')
        return p + "unknown address family " + shown_char(family);
    // libmilter wants the port and at least the address's NUL.
    if (rest.size() < 3) return p + "no port and address after family " + shown_char(family);
    std::string_view address = rest.substr(2);
    if (address.back() != '\0') return p + "address not NUL-terminated";
    address.remove_suffix(1);
    if (size_t nul = address.find('\0'); nul != std::string_view::npos)
        return p + count(address.size() - nul, "byte") + " after the address";
    std::string a(address);
    if (family == '4') {
        // libmilter parses it with inet_aton(): what it takes is taken.
        in_addr v4;
        if (inet_aton(a.c_str(), &v4) != 1) return p + "address " + shown(a) + " is not IPv4 (family '4')";
    } else if (family == '6') {
        // libmilter's mi_inet_pton() skips Sendmail's "IPv6:" tag.
        const char* s = a.c_str();
        if (strncasecmp(s, "IPv6:", 5) == 0) s += 5;
        in6_addr v6;
        if (inet_pton(AF_INET6, s, &v6) != 1) return p + "address " + shown(a) + " is not IPv6 (family '6')";
    } else if (a.size() >= sizeof(sockaddr_un{}.sun_path)) {
        return p + "unix socket path of " + std::to_string(a.size()) + " bytes (at most " +
               std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + ")";
    }
    return "";
}

std::string check_args(char cmd, std::string_view data) {
    const std::string p = std::string(packet_name(cmd)) + ": ";
    if (data.empty()) return p + "empty";
    if (data.back() != '\0') return p + "last argument not NUL-terminated";
    return "";
}

std::string check_header(std::string_view data) {
    std::vector<std::string_view> s;
    if (data.empty() || !split_strings(data, s)) return "header packet: not NUL-terminated";
    if (s.size() != 2) return "header packet: " + count(s.size(), "string") + ", want a name and a value";
    if (s[0].empty()) return "header packet: empty header name";
    return "";
}

// Commands that carry nothing.
std::string check_empty(char cmd, std::string_view data) {
    if (data.empty()) return "";
    return std::string(packet_name(cmd)) + ": " + count(data.size(), "byte") + " of data, want none";
}

}  // namespace

uint32_t max_data_for(uint32_t filter_protocol) {
    if (filter_protocol & flag::max_data_1m) return 1024 * 1024 - 1;
    if (filter_protocol & flag::max_data_256k) return 256 * 1024 - 1;
    return max_data_default;
}

std::string encode(char command, std::string_view data) {
    std::string out;
    out.reserve(5 + data.size());
    put32(out, uint32_t(data.size() + 1));
    out += command;
    out.append(data);
    return out;
}

void FrameParser::feed(std::string_view bytes) {
    if (!error_.empty()) return;
    if (pos_ > 0 && pos_ == buf_.size()) {
        buf_.clear();
        pos_ = 0;
    } else if (pos_ > 65536 && pos_ * 2 > buf_.size()) {
        buf_.erase(0, pos_);
        pos_ = 0;
    }
    buf_.append(bytes);
}

FrameParser::Status FrameParser::next(Frame& out) {
    if (!error_.empty()) return Status::error;
    if (buffered() < 4) return Status::need_more;
    uint32_t len = get32(buf_, pos_);
    if (len == 0) {
        error_ = "packet length 0 (no command byte)";
        return Status::error;
    }
    if (len - 1 > max_data_) {
        error_ = "packet length " + std::to_string(len) + " over the limit of " +
                 std::to_string(uint64_t(max_data_) + 1);
        return Status::error;
    }
    if (buffered() < 4 + size_t(len)) return Status::need_more;
    out.command = buf_[pos_ + 4];
    out.data.assign(buf_, pos_ + 5, len - 1);
    pos_ += 4 + size_t(len);
    return Status::frame;
}

std::string check_command(const Frame& f) {
    const std::string_view d = f.data;
    switch (f.command) {
        case command::macro:
            return check_macros(d);
        case command::connect:
            return check_connect(d);
        case command::helo:
            return check_one_string(f.command, d, "name");
        case command::unknown:
            return check_one_string(f.command, d, "command");
        case command::mail:
        case command::rcpt:
            return check_args(f.command, d);
        case command::header:
            return check_header(d);
        case command::negotiate:
            if (d.size() < 12) return "negotiation packet: " + count(d.size(), "byte") + ", want at least 12";
            if (get32(d, 0) < 2)
                return "negotiation packet: protocol version " + std::to_string(get32(d, 0)) +
                       ", libmilter wants 2 or later";
            return "";
        case command::body:
            // libmilter takes an empty body packet for a broken one and ends the session.
            return d.empty() ? "body packet: empty" : "";
        case command::end_of_message:
            // libmilter hands such bytes to the body callback and, when that
            // does not continue, answers twice: the MTA falls out of step.
            return d.empty() ? ""
                             : "end-of-message packet: " + count(d.size(), "body byte") +
                                   " (libmilter may answer it twice)";
        case command::abort:
        case command::end_of_headers:
        case command::data:
        case command::quit:
        case command::quit_new_connection:
            return check_empty(f.command, d);
    }
    return "unknown command " + shown_char(f.command);
}

std::optional<MacroPacket> parse_macros(std::string_view data) {
    if (!check_macros(data).empty()) return std::nullopt;
    MacroPacket p;
    p.stage = data[0];
    std::vector<std::string_view> s;
    split_strings(data.substr(1), s);
    for (size_t i = 0; i + 1 < s.size(); i += 2)
        p.macros.push_back({std::string(s[i]), std::string(s[i + 1])});
    return p;
}

std::string macro_data(const MacroPacket& p) {
    std::string out(1, p.stage);
    for (const Macro& m : p.macros) {
        out += m.name;
        out += '\0';
        out += m.value;
        out += '\0';
    }
    return out;
}

std::optional<Negotiation> parse_negotiation(std::string_view data) {
    if (data.size() < 12) return std::nullopt;
    Negotiation n;
    n.version = get32(data, 0);
    n.actions = get32(data, 4);
    n.protocol = get32(data, 8);
    n.extra = std::string(data.substr(12));
    return n;
}

std::string negotiation_data(const Negotiation& n) {
    std::string out;
    put32(out, n.version);
    put32(out, n.actions);
    put32(out, n.protocol);
    return out + n.extra;
}

ReplyKind classify_reply(char code) {
    switch (code) {
        case reply::accept:
        case reply::continue_:
        case reply::discard:
        case reply::reject:
        case reply::tempfail:
        case reply::reply_code:
        case reply::skip:
        case reply::shutdown:
        case reply::connection_failure:
            return ReplyKind::answer;
        case reply::negotiate:
            return ReplyKind::negotiation;
        case reply::add_rcpt:
        case reply::delete_rcpt:
        case reply::add_rcpt_with_args:
        case reply::change_from:
        case reply::add_header:
        case reply::insert_header:
        case reply::change_header:
        case reply::replace_body:
        case reply::quarantine:
            return ReplyKind::edit;
        case reply::progress:
            return ReplyKind::progress;
    }
    return ReplyKind::invalid;
}

Frame continue_reply() {
    return Frame{reply::continue_, ""};
}
Frame accept_reply() {
    return Frame{reply::accept, ""};
}
Frame tempfail_reply() {
    return Frame{reply::tempfail, ""};
}

Frame reply_code_reply(std::string_view code, std::string_view xcode, std::string_view text) {
    std::string clean = util::sanitize(text, util::TextUse::reply);
    Frame f{reply::reply_code, std::string(code) + " " + std::string(xcode) + " "};
    for (char c : clean) {
        f.data += c;
        if (c == '%') f.data += '%';
    }
    f.data += '\0';
    return f;
}

// --- libmilter's state table (engine.c), as a model -------------------------

namespace {

// libmilter's states, numbered as it numbers them: the table below and the
// "next state" order of the skip rule depend on it.
enum State : int {
    st_init = 0,
    st_opts,
    st_conn,
    st_helo,
    st_mail,
    st_rcpt,
    st_data,
    st_hdrs,
    st_eohs,
    st_body,
    st_endm,
    st_quit,
    st_abrt,
    st_unkn,
    st_q_nc,
    st_count
};

constexpr uint32_t bit(int s) {
    return 1u << s;
}

// The states each state may go to.
constexpr uint32_t next_states[st_count] = {
    bit(st_opts),                                // init
    bit(st_conn) | bit(st_unkn),                 // opts
    bit(st_helo) | bit(st_mail) | bit(st_unkn),  // conn
    bit(st_helo) | bit(st_mail) | bit(st_unkn),  // helo
    bit(st_rcpt) | bit(st_abrt) | bit(st_unkn),  // mail
    bit(st_hdrs) | bit(st_eohs) | bit(st_data) | bit(st_body) | bit(st_endm) | bit(st_rcpt) | bit(st_abrt) |
        bit(st_unkn),                                           // rcpt
    bit(st_eohs) | bit(st_hdrs) | bit(st_abrt),                 // data
    bit(st_eohs) | bit(st_hdrs) | bit(st_abrt),                 // hdrs
    bit(st_body) | bit(st_endm) | bit(st_abrt),                 // eohs
    bit(st_endm) | bit(st_body) | bit(st_abrt),                 // body
    bit(st_quit) | bit(st_mail) | bit(st_unkn) | bit(st_q_nc),  // endm
    0,                                                          // quit
    0,                                                          // abrt
    bit(st_helo) | bit(st_mail) | bit(st_rcpt) | bit(st_abrt) | bit(st_data) | bit(st_body) | bit(st_unkn) |
        bit(st_quit) | bit(st_q_nc),  // unkn
    bit(st_conn) | bit(st_unkn),      // q_nc
};

int state_of(char cmd) {
    switch (cmd) {
        case command::abort:
            return st_abrt;
        case command::body:
            return st_body;
        case command::connect:
            return st_conn;
        case command::end_of_message:
            return st_endm;
        case command::end_of_headers:
            return st_eohs;
        case command::helo:
            return st_helo;
        case command::header:
            return st_hdrs;
        case command::mail:
            return st_mail;
        case command::negotiate:
            return st_opts;
        case command::quit:
            return st_quit;
        case command::rcpt:
            return st_rcpt;
        case command::data:
            return st_data;
        case command::unknown:
            return st_unkn;
        case command::quit_new_connection:
            return st_q_nc;
    }
    return -1;
}

// The states a negotiated protocol lets libmilter step over (fix_stm()).
uint32_t skippable(uint32_t protocol) {
    uint32_t s = 0;
    if (protocol & flag::no_connect) s |= bit(st_conn);
    if (protocol & flag::no_helo) s |= bit(st_helo);
    if (protocol & flag::no_mail) s |= bit(st_mail);
    if (protocol & flag::no_rcpt) s |= bit(st_rcpt);
    if (protocol & flag::no_headers) s |= bit(st_hdrs);
    if (protocol & flag::no_end_of_headers) s |= bit(st_eohs);
    if (protocol & flag::no_body) s |= bit(st_body);
    if (protocol & flag::no_data) s |= bit(st_data);
    if (protocol & flag::no_unknown) s |= bit(st_unkn);
    return s;
}

// trans_ok(): allowed directly, or through states the filter skips.
bool transition_ok(int from, int to, uint32_t skip) {
    for (int s = from;;) {
        if (next_states[s] & bit(to)) return true;
        int n = s + 1;
        if (n >= st_count || !(skip & bit(n))) return false;
        s = n;
    }
}

// The no-reply flag of a state (get_nr_bit()).
uint32_t no_reply_flag(int state) {
    switch (state) {
        case st_conn:
            return flag::no_reply_connect;
        case st_helo:
            return flag::no_reply_helo;
        case st_mail:
            return flag::no_reply_mail;
        case st_rcpt:
            return flag::no_reply_rcpt;
        case st_data:
            return flag::no_reply_data;
        case st_unkn:
            return flag::no_reply_unknown;
        case st_hdrs:
            return flag::no_reply_header;
        case st_eohs:
            return flag::no_reply_end_of_headers;
        case st_body:
            return flag::no_reply_body;
    }
    return 0;
}

bool in_mail(int state) {
    return state >= st_mail && state < st_endm;
}

}  // namespace

Conversation::Step Conversation::command(const Frame& f) {
    const char cmd = f.command;
    if (cmd == command::macro) return {true, false};
    int next = state_of(cmd);
    if (next < 0) return {false, false};
    uint32_t skip = filter_ ? skippable(filter_->protocol) : 0;
    if (!transition_ok(state_, next, skip)) {
        // libmilter aborts the transaction, starts over from "after HELO",
        // and drops the command if it cannot come from there either.
        state_ = st_helo;
        if (!transition_ok(state_, next, skip)) return {false, false};
    }
    if (next == st_unkn && state_ != st_unkn) before_unknown_ = state_;
    state_ = next;
    if (cmd == command::negotiate) mta_ = parse_negotiation(f.data);
    bool answered = cmd != command::abort && cmd != command::quit && cmd != command::quit_new_connection &&
                    !(filter_ && (filter_->protocol & no_reply_flag(next)));
    if (answered) awaited_.push_back(cmd);
    return {true, answered};
}

Conversation::ReplyResult Conversation::reply(const Frame& f) {
    ReplyKind kind = classify_reply(f.command);
    if (kind == ReplyKind::edit || kind == ReplyKind::progress) return {Effect::edit, 0};
    if (kind == ReplyKind::invalid || awaited_.empty()) return {Effect::unexpected, 0};
    char cmd = awaited_.front();
    bool negotiation = cmd == command::negotiate;
    if (negotiation != (kind == ReplyKind::negotiation)) return {Effect::unexpected, 0};
    if (negotiation) {
        filter_ = parse_negotiation(f.data);
        if (!filter_) return {Effect::unexpected, 0};
    } else {
        // After these libmilter goes back to "after HELO" (RCPT and unknown
        // commands stay where they are unless accepted).
        char c = f.command;
        bool ends =
            c == reply::accept ||
            ((c == reply::reject || c == reply::tempfail || c == reply::discard || c == reply::reply_code) &&
             cmd != command::rcpt && cmd != command::unknown);
        if (ends) state_ = st_helo;
    }
    awaited_.pop_front();
    return {Effect::answered, cmd};
}

bool Conversation::in_transaction() const {
    return in_mail(state_ == st_unkn ? before_unknown_ : state_);
}

uint32_t Conversation::max_data() const {
    return max_data_for(filter_ ? filter_->protocol : 0);
}

}  // namespace regmilter::milter
