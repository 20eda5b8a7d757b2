// policy: one SMTP session from the command line — a Scenario driven
// through policy::Session as an MTA would drive it (stopping where the MTA
// would stop), and its JSON rendering (regmilter-query --json, the DESIGN.md
// contract). DNS only through the Session's snapshot; no other I/O.
// Reentrant.
#pragma once

#include <string>
#include <vector>

#include "policy/session.hpp"

namespace regmilter::policy {

struct Scenario {
    std::optional<net::Address> ip;
    std::string hostname = "unknown";
    std::string helo;
    std::string mail_from;           // the address; sent as "<mail_from>"
    std::vector<std::string> rcpts;  // addresses; each sent as "<rcpt>"
    std::vector<Header> headers;     // the message's headers
    Macros macros;                   // every stage's macros ("i", "auth_authen", ...)
};

struct StageReply {
    Stage stage;
    std::string rcpt;  // rcpt stage only
    Reply reply;
};

struct Transcript {
    std::vector<StageReply> replies;  // in stage order; stops where the MTA would stop
    std::vector<Recipient> asked;     // every recipient, refused or not
    // The session's facts where its last stage left them: before the abort
    // that follows a transaction whose every recipient was refused (by
    // greylisting, say), which forgets the transaction.
    std::optional<Facts> facts;
};

// connect, helo, mail, rcpt (each), end of headers, end of message. With no
// recipients the data stage still runs (to show the headers a message would
// get); when every recipient was refused it does not, as with a real MTA.
Transcript simulate(Session& session, const Scenario& scenario);

// The JSON object of DESIGN.md "regmilter-query --json": spf, spf_helo,
// client, registry, bulk, verdicts, headers (as "Name: value"),
// headers_to_remove, rcpts_to_remove, log, state, greylist, ratelimit.
std::string to_json(const Session& session, const Transcript& transcript);

}  // namespace regmilter::policy
