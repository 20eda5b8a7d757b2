// policy: one simulated SMTP session through every stage, driven exactly as
// the milter drives the library, and its JSON rendering (regmilter-query
// --json, the DESIGN.md contract). Does DNS only through the given Resolver;
// no other I/O. Reentrant.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "policy/policy.hpp"

namespace regmilter::policy {

struct StageVerdict {
    Stage stage;
    std::string rcpt;  // rcpt stage only
    Verdict verdict;
};

struct Session {
    Context ctx;
    Facts facts;
    std::vector<StageVerdict> verdicts;  // in stage order; stops where the MTA would stop
    std::vector<std::string> log;        // log_line() of each verdict
    std::vector<RcptFacts> asked;        // every recipient, refused or not
    bool refused_all_rcpts = false;      // no DATA: every recipient was refused
};

struct SessionInput {
    std::optional<net::Address> ip;
    std::string hostname = "unknown";
    std::string helo;
    std::string mail_from;
    std::vector<std::string> rcpts;
    std::vector<Header> headers;  // the data stage
    std::vector<std::pair<std::string, std::string>> macros;
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
    std::string authserv_id;  // empty: authserv_id(cfg)
};

// connect, helo, mail, rcpt (each), data. With no recipients the data stage
// still runs (to show the headers); when every recipient was refused it does not.
// With zone_resolvers the registry zones are asked at once, as the milter may.
Session run_session(const SessionInput& in, const config::Config& cfg, dns::Resolver& dns,
                    const bulk::Table* table, spf::Tracer trace = {},
                    const ResolverFactory& zone_resolvers = {});

// The JSON object of DESIGN.md "regmilter-query --json": spf, spf_helo, trust,
// registry, bulk, verdicts, headers (as "Name: value"), headers_to_remove,
// rcpts_to_remove, log.
std::string to_json(const Session& s);

}  // namespace regmilter::policy
