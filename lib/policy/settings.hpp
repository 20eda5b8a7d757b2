// policy: the enums of the settings the policy decides with (what a check
// asks for, the mode, what DNS trouble and internal errors answer), with
// their names. A leaf header, no dependencies: config parses these, policy
// decides with them. Thread-safe (constants only).
#pragma once

#include "util/names.hpp"

namespace regmilter::policy {

// What one check (a registry zone, an SPF result) asks for. Order matters:
// among accept..reject stronger is greater (DESIGN "Several verdicts").
// greylist (registry verdicts only: 451 4.7.1 at RCPT until the triplet
// passes) comes last by value, not by strength: a policy::Check never holds
// it (checks.cpp turns it into Check::greylist).
enum class CheckAction { accept, tag, tempfail, reject, greylist };
inline constexpr const char* check_action_names[] = {"accept", "tag", "tempfail", "reject", "greylist"};
constexpr util::Names names_of(CheckAction) {
    return check_action_names;
}
// The actions an SPF result may ask for: the same values without greylist.
inline constexpr const char* spf_action_names[] = {"accept", "tag", "tempfail", "reject"};

// enforce refuses; observe logs and adds "X-Regmilter: would ..." headers.
enum class Mode { enforce, observe };
inline constexpr const char* mode_names[] = {"enforce", "observe"};
constexpr util::Names names_of(Mode) {
    return mode_names;
}

// When a registry zone cannot be asked: pass, or 451 4.4.3.
enum class OnError { accept, tempfail };
inline constexpr const char* on_error_names[] = {"accept", "tempfail"};
constexpr util::Names names_of(OnError) {
    return on_error_names;
}

// Where greylisting and rate limits keep their state ([state] backend).
enum class StateBackend { memory, redis };
inline constexpr const char* state_backend_names[] = {"memory", "redis"};
constexpr util::Names names_of(StateBackend) {
    return state_backend_names;
}

// When regmilter itself fails: 451 4.3.0, or pass.
enum class OnInternalError { tempfail, accept };
inline constexpr const char* on_internal_error_names[] = {"tempfail", "accept"};
constexpr util::Names names_of(OnInternalError) {
    return on_internal_error_names;
}

// A client without an IP address (unix socket, Postfix "unknown[unknown]"):
// trust = a trusted client (registry and SPF skipped, bulk applies);
// accept = the whole connection accepted unexamined, no headers.
enum class UnknownClient { trust, accept };
inline constexpr const char* unknown_client_names[] = {"trust", "accept"};
constexpr util::Names names_of(UnknownClient) {
    return unknown_client_names;
}

// Which SPF result headers a message gets.
enum class ResultHeaders { authentication_results, received_spf, both, none };
inline constexpr const char* result_headers_names[] = {"authentication-results", "received-spf", "both",
                                                       "none"};
constexpr util::Names names_of(ResultHeaders) {
    return result_headers_names;
}

}  // namespace regmilter::policy
