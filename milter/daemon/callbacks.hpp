// milter callbacks: libmilter's xxfi_* as noexcept trampolines in three
// steps — decode the MTA's arguments, call the policy::Session of the
// connection, carry out its Reply (mta.hpp). No policy here; nothing throws
// out of a callback. Thread-safe: libmilter calls one connection's callbacks
// one at a time; connections share only the Service.
#pragma once

#include <libmilter/mfapi.h>

#include "service.hpp"

namespace regmilter::daemon {

// The description handed to smfi_register: name, flags and every callback,
// serving sessions from `service` (which must outlive smfi_main).
smfiDesc& filter_description(Service& service);

// The hold channel to the master (worker.hpp), before smfi_main: after a
// MAIL FROM whose recipients can only be answered continue
// (policy::Session::rcpt_continues), the callback tells the master
// "rcpt\tSESSION\tN" (SESSION the master's {regmilter_session}, N the MAIL
// FROM callbacks of the connection so far), and the master answers that
// transaction's RCPT TO itself (proxy.hpp). -1: no master, no hints.
void set_rcpt_hints(int channel);

}  // namespace regmilter::daemon
