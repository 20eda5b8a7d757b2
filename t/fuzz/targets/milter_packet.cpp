// Fuzz target: the milter packet layer (lib/milter/packet) — the master's
// only defence between the MTA's bytes and libmilter. The input's first
// byte sets how many bytes the parser is fed at a time (1..64); the rest is
// the byte stream. Frames that pass check_command() go to the state model
// as MTA commands, the others (and an 'O' while a negotiation is awaited) as
// filter replies. Properties: the frames re-encode to exactly the bytes they
// were read from; a refusal always says why; a passed macro packet parses,
// has non-empty names and re-encodes to itself; a passed negotiation parses;
// the model answers only what it took, and each answer pops exactly the
// oldest awaited command.
#include <cstddef>
#include <cstdint>

#include "milter/packet.hpp"
#include "t/fuzz/fuzz.hpp"

using namespace regmilter;
namespace m = regmilter::milter;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in = fuzz::as_text(data, size);
    if (in.empty()) return 0;
    const size_t piece = 1 + uint8_t(in[0]) % 64;
    in.remove_prefix(1);
    m::FrameParser parser;
    m::Conversation conv;
    std::string reencoded;
    bool stopped = false;
    for (size_t at = 0; at < in.size() && !stopped; at += piece) {
        parser.feed(in.substr(at, piece));
        m::Frame f;
        for (;;) {
            m::FrameParser::Status st = parser.next(f);
            if (st == m::FrameParser::Status::need_more) break;
            if (st == m::FrameParser::Status::error) {
                FUZZ_CHECK(!parser.error().empty(), "a framing error without a reason");
                stopped = true;
                break;
            }
            FUZZ_CHECK(f.data.size() <= m::max_data_default, "a frame over the limit");
            reencoded += m::encode(f);
            std::string reason = m::check_command(f);
            bool awaiting_negotiation =
                !conv.awaited().empty() && conv.awaited().front() == m::command::negotiate;
            if (reason.empty() && !(f.command == m::command::negotiate && awaiting_negotiation)) {
                if (f.command == m::command::macro) {
                    auto p = m::parse_macros(f.data);
                    FUZZ_CHECK(p, "a passed macro packet does not parse");
                    for (const m::Macro& x : p->macros)
                        FUZZ_CHECK(!x.name.empty(), "an empty macro name passed");
                    FUZZ_CHECK(m::macro_data(*p) == f.data, "a macro packet re-encodes differently");
                }
                if (f.command == m::command::negotiate)
                    FUZZ_CHECK(m::parse_negotiation(f.data), "a passed negotiation does not parse");
                size_t before = conv.awaited().size();
                m::Conversation::Step step = conv.command(f);
                FUZZ_CHECK(step.taken || !step.answered, "answered without being taken");
                FUZZ_CHECK(conv.awaited().size() == before + (step.answered ? 1 : 0), "awaited count");
                if (step.answered)
                    FUZZ_CHECK(conv.awaited().back() == f.command, "awaited the wrong command");
            } else {
                FUZZ_CHECK(reason.empty() || reason.size() > 10, "a refusal without a reason: " + reason);
                size_t before = conv.awaited().size();
                char front = before ? conv.awaited().front() : 0;
                m::Conversation::ReplyResult r = conv.reply(f);
                if (r.effect == m::Conversation::Effect::answered) {
                    FUZZ_CHECK(r.command == front, "answered another command than the oldest");
                    FUZZ_CHECK(conv.awaited().size() == before - 1, "an answer did not pop");
                } else {
                    FUZZ_CHECK(conv.awaited().size() == before, "an edit or a stray reply popped");
                }
            }
        }
    }
    FUZZ_CHECK(in.substr(0, reencoded.size()) == reencoded, "the frames re-encode to other bytes");
    return 0;
}
