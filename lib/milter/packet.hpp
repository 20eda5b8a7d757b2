// milter: the milter protocol on the wire (version 6, as libmilter 8.17 reads
// it and Postfix's milter8.c and Sendmail write it) — frames, the checks that
// keep a packet libmilter would misread (read past a buffer, drop without an
// answer, end the session) from ever reaching it, the filter's replies as the
// MTA reads them, and a model of libmilter's command state table that says
// which commands the MTA awaits an answer to.
// No I/O, no libmilter (the constants are the protocol's, as mfdef.h has them).
// Thread-safety: functions are pure; a FrameParser or a Conversation is used
// by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace regmilter::milter {

// Commands, MTA to filter.
namespace command {
constexpr char abort = 'A', body = 'B', connect = 'C', macro = 'D', end_of_message = 'E', helo = 'H',
               quit_new_connection = 'K', header = 'L', mail = 'M', end_of_headers = 'N', negotiate = 'O',
               quit = 'Q', rcpt = 'R', data = 'T', unknown = 'U';
}

// Replies, filter to MTA.
namespace reply {
constexpr char add_rcpt = '+', delete_rcpt = '-', add_rcpt_with_args = '2', shutdown = '4', accept = 'a',
               replace_body = 'b', continue_ = 'c', discard = 'd', change_from = 'e',
               connection_failure = 'f', add_header = 'h', insert_header = 'i', change_header = 'm',
               progress = 'p', quarantine = 'q', reject = 'r', skip = 's', tempfail = 't', reply_code = 'y',
               negotiate = 'O';
}

// Protocol flags of the negotiation: steps the filter asks not to be sent
// (no_*), steps it will not answer (no_reply_*), and libmilter's larger
// packet sizes.
namespace flag {
constexpr uint32_t no_connect = 0x1, no_helo = 0x2, no_mail = 0x4, no_rcpt = 0x8, no_body = 0x10,
                   no_headers = 0x20, no_end_of_headers = 0x40, no_reply_header = 0x80, no_unknown = 0x100,
                   no_data = 0x200, skip = 0x400, rcpt_rejected = 0x800, no_reply_connect = 0x1000,
                   no_reply_helo = 0x2000, no_reply_mail = 0x4000, no_reply_rcpt = 0x8000,
                   no_reply_data = 0x10000, no_reply_unknown = 0x20000, no_reply_end_of_headers = 0x40000,
                   no_reply_body = 0x80000, header_leading_space = 0x100000, max_data_256k = 0x10000000,
                   max_data_1m = 0x20000000;
}

// The protocol version this module speaks (the MTA may offer less).
constexpr uint32_t protocol_version = 6;

// Bytes after the command byte libmilter reads by default: one more and
// mi_rd_cmd refuses the packet and the session ends (MILTER_MAX_DATA_SIZE).
constexpr uint32_t max_data_default = 65535;
// libmilter's limit once the filter negotiated max_data_256k or max_data_1m.
uint32_t max_data_for(uint32_t filter_protocol);

// The macro the master adds to the connect-stage macros, so that the worker
// sees the master's session id through smfi_getsymval().
constexpr const char* session_macro = "{regmilter_session}";

// One packet: a 4-byte big-endian length (the command byte and the data),
// the command byte, the data.
struct Frame {
    char command = 0;
    std::string data;
};

// The packet's bytes.
std::string encode(char command, std::string_view data);
inline std::string encode(const Frame& f) {
    return encode(f.command, f.data);
}

// Splits a byte stream into frames as the bytes arrive.
class FrameParser {
public:
    enum class Status { frame, need_more, error };

    // `max_data`: the most data bytes a frame may carry.
    explicit FrameParser(uint32_t max_data = max_data_default) : max_data_(max_data) {}
    void set_max_data(uint32_t max_data) { max_data_ = max_data; }

    // Appends bytes as they came.
    void feed(std::string_view bytes);
    // The next whole frame (Status::frame, `out` set), need_more, or error: a
    // length of 0 (libmilter would then read the next packet's first byte
    // as this one's command) or over the limit (libmilter refuses it, and a
    // length with the top bit set is one it reads as empty, taking the data
    // that follows for packets of their own). After an error every call
    // returns error: the stream cannot be resynchronised.
    Status next(Frame& out);
    // Why next() returned error.
    const std::string& error() const { return error_; }
    // Bytes received and not yet returned in a frame.
    size_t buffered() const { return buf_.size() - pos_; }

private:
    std::string buf_;
    size_t pos_ = 0;
    uint32_t max_data_;
    std::string error_;
};

// Why libmilter would misread this MTA command — read past a buffer, drop
// it without the answer the MTA waits for, answer it twice, or end the
// session — as one phrase for a log line ("macro packet: name \"j\" has no
// value"), or "" when the frame is sound. Every command of the protocol has
// its form checked; an unknown command letter is refused.
std::string check_command(const Frame& f);

// A 'D' packet: the stage (the command whose macros these are) and the
// name/value pairs, in order.
struct Macro {
    std::string name, value;
};
struct MacroPacket {
    char stage = 0;
    std::vector<Macro> macros;
};
// The macros of a 'D' frame's data that check_command() accepts; nullopt
// for any other.
std::optional<MacroPacket> parse_macros(std::string_view data);
// A 'D' frame's data.
std::string macro_data(const MacroPacket& p);

// The negotiation, sent by the MTA ('O' command) and answered by the filter
// ('O' reply): version, actions (SMFIF_*), protocol flags; the reply may
// carry macro lists after the 12 bytes, kept in `extra` as they are.
struct Negotiation {
    uint32_t version = 0, actions = 0, protocol = 0;
    std::string extra;
};
// nullopt when the data is shorter than 12 bytes.
std::optional<Negotiation> parse_negotiation(std::string_view data);
std::string negotiation_data(const Negotiation& n);

// What a reply from the filter is to the MTA.
enum class ReplyKind {
    answer,       // ends the command: a c d r t y s, and 4 f (Sendmail's)
    negotiation,  // 'O': ends the negotiation
    edit,         // end-of-message changes (+ - 2 e h i m b q): more follow
    progress,     // 'p': still working, more follows
    invalid,      // no reply of the protocol
};
ReplyKind classify_reply(char code);

// The replies the master sends in the filter's place.
Frame continue_reply();
Frame accept_reply();
Frame tempfail_reply();
// 'y': "CODE XCODE TEXT" as smfi_setreply() would send it. `text` is made
// printable ASCII (util::sanitize, TextUse::reply) with every '%' doubled:
// Sendmail reads the text as a format, Postfix undoes the doubling.
Frame reply_code_reply(std::string_view code, std::string_view xcode, std::string_view text);

// libmilter's view of one milter connection, kept in step with the commands
// the filter reads and the replies it sends (libmilter's engine.c: its
// state table, the steps a negotiated protocol lets it skip, the
// no-reply flags, and the return to "after HELO" when a command is refused,
// tempfailed, accepted or discarded). It says which commands get an answer,
// in order, so that a relay knows what the MTA still waits for. A model:
// libmilter keeps its skip steps in one table for the whole process; this
// keeps those of this connection's negotiation, the same for a filter whose
// negotiated flags do not change.
class Conversation {
public:
    struct Step {
        bool taken = false;     // libmilter acts on it (false: it drops it unseen)
        bool answered = false;  // the MTA waits for one final answer to it
    };
    // An MTA command that check_command() accepts, in the order the filter
    // reads them.
    Step command(const Frame& f);

    enum class Effect {
        answered,    // a final answer (or the negotiation) to awaited().front()
        edit,        // an edit or progress: the answer is still to come
        unexpected,  // an answer nothing waits for, a negotiation out of
                     // turn, or no reply of the protocol
    };
    struct ReplyResult {
        Effect effect = Effect::unexpected;
        char command = 0;  // the command answered (Effect::answered)
    };
    // A reply the filter sent (or the master sent in its place). An 'O'
    // reply shorter than 12 bytes is unexpected.
    ReplyResult reply(const Frame& f);

    // The commands taken and not answered yet, oldest first.
    const std::deque<char>& awaited() const { return awaited_; }
    // Between MAIL FROM and the end of that message (libmilter's ST_IN_MAIL,
    // through unknown commands inside it).
    bool in_transaction() const;
    // The MTA's negotiation ('O' command), once taken.
    const std::optional<Negotiation>& mta() const { return mta_; }
    // The filter's answer, once given.
    const std::optional<Negotiation>& filter() const { return filter_; }
    // The most data bytes libmilter reads in one packet of this connection.
    uint32_t max_data() const;

private:
    int state_ = 0;           // libmilter's ST_* (ST_INIT)
    int before_unknown_ = 0;  // the state an unknown command came in
    std::deque<char> awaited_;
    std::optional<Negotiation> mta_, filter_;
};

}  // namespace regmilter::milter
