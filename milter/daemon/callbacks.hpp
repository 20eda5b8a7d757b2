// milter callbacks: libmilter's xxfi_* as noexcept trampolines that decode the
// MTA's arguments, call the policy library, and encode its Verdict (reply,
// header edits, recipient removal). No policy here; nothing throws out of a
// callback. Thread-safe: libmilter calls each session's callbacks one at a time.
#pragma once

#include <libmilter/mfapi.h>

namespace regmilter::daemon {

// The description handed to smfi_register: name, flags and every callback.
smfiDesc& filter_description();

// Sessions the MTA has open now (negotiate/connect seen, close not yet):
// SIGTERM waits for this to reach 0 before the process exits.
int open_sessions();

// From now on new MTA connections are answered 451 4.3.2 at connect (the
// sessions already open are served to their end). Thread-safe.
void begin_drain();

}  // namespace regmilter::daemon
