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

}  // namespace regmilter::daemon
