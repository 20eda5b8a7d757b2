// policy: the reply codes, named once, as DESIGN.md's code table has them.
// Every refusal the library makes takes its code and enhanced code from
// here; the enhanced code's class always equals the reply's (RFC 3463).
// Constants only; thread-safe.
#pragma once

namespace regmilter::policy::replies {

struct Code {
    const char* code;   // "550"
    const char* xcode;  // "5.7.23"
};

// A check's codes when it rejects or tempfails.
struct Codes {
    Code reject, tempfail;
};

// SPF fail, softfail, neutral, none refused (RFC 7372 §3.2: 5.7.23).
inline constexpr Codes spf_result{{"550", "5.7.23"}, {"451", "4.7.23"}};
// SPF permerror and temperror (RFC 7372 §3.2: x.7.24).
inline constexpr Codes spf_error{{"550", "5.7.24"}, {"451", "4.7.24"}};
// Registry, bulk opt-out, greylisting, rate limits (RFC 3463 x.7.1).
inline constexpr Codes policy{{"550", "5.7.1"}, {"451", "4.7.1"}};
// A registry zone that cannot be asked, with on_error = tempfail (RFC 3463 4.4.3).
inline constexpr Code dns_trouble{"451", "4.4.3"};
// The greylisting and rate-limit state store failed, with [state] on_error =
// tempfail (RFC 3463 4.3.0: the mail system's own trouble).
inline constexpr Code state_trouble{"451", "4.3.0"};
inline constexpr const char* state_trouble_text = "greylisting state unavailable, try again later";
// regmilter itself failed, with on_internal_error = tempfail (RFC 3463 4.3.0).
inline constexpr Code internal_error{"451", "4.3.0"};
inline constexpr const char* internal_error_text = "internal error, try again later";
// The milter is stopping and turns new connections away (RFC 3463 4.3.2).
inline constexpr Code shutting_down{"451", "4.3.2"};
inline constexpr const char* shutting_down_text = "mail filter shutting down, try again later";

}  // namespace regmilter::policy::replies
