// util: the one text sanitizer. Text that crosses a trust boundary (DNS TXT
// and exp= strings, addresses from the SMTP client, header values) is made
// safe for where it goes: an SMTP reply, a header field, a header comment, a
// log value or a whole log line. Each use has one named policy with its byte
// limit. Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace regmilter::util {

enum class TextUse {
    // SMTP reply text: printable ASCII only, other bytes become '?'; at most
    // 400 bytes (a reply line is at most 512 octets with its codes, RFC 5321
    // §4.5.3.1.5).
    reply,
    // A header field value we add (X-Regmilter, policy.txt): printable ASCII
    // and tab, other bytes (CR, LF, 8-bit) become '?'; at most 900 bytes
    // (RFC 5322 §2.1.1 recommends 78 per line, 998 is the hard limit).
    header,
    // Text inside a header comment (Received-SPF): as header, and '(' ')' '\'
    // also become '?' so the comment cannot be closed early.
    header_comment,
    // Registry TXT metadata kept for logs and headers: printable ASCII, '?'
    // for other bytes, at most 512 bytes.
    dns_text,
    // One value of a key=value log line, written between double quotes:
    // '"' and '\' escaped with '\', control and 8-bit bytes as \xHH; at most
    // 512 bytes of the input are kept.
    log_value,
    // A whole log line: control bytes as \xHH so one call stays one line;
    // 8-bit bytes are kept; at most 4000 bytes.
    log_line,
};

// The byte limit of a use (of the input kept, for the escaping uses).
size_t limit_of(TextUse use);

// `text` made safe for `use`: unsafe bytes replaced or escaped as above,
// cut at the use's limit (never in the middle of an escape).
std::string sanitize(std::string_view text, TextUse use);

}  // namespace regmilter::util
