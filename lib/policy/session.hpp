// policy: one SMTP session, stage by stage — the one sequence the milter and
// regmilter-query both drive. It owns the connection and transaction state
// (one list of accepted recipients, with the MTA's own arguments), starts the
// registry lookups at connect so their DNS overlaps the HELO, and answers
// each stage with one Reply: action, codes, text, header edits, recipients
// to remove, and the decision's log line. Nothing throws out of a stage: an
// internal error is answered with [milter] on_internal_error, and the forged
// Authentication-Results removal of the end of message is never skipped.
// Front ends only translate arguments in and the Reply out.
// Thread-safety: a Session is used by one thread at a time (libmilter calls
// one connection's callbacks in turn); its connect lookups run on their own
// thread with their own resolvers and copies of what they need.
#pragma once

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "policy/policy.hpp"
#include "policy/runtime.hpp"
#include "state/store.hpp"

namespace regmilter::policy {

// Told of each stage's answer, for statistics ([stats]): the Reply the front
// end carries out, the session's facts so far, and the time the stage took
// (for the message: end of headers and end of message together). Called on
// the session's thread, by many sessions at once; it must be cheap and
// must not throw. Each SMTP stage is answered once: connect, HELO, each
// MAIL FROM and RCPT TO, and the message (at end of headers when it is
// refused there, else at end of message).
class Observer {
public:
    virtual ~Observer() = default;
    virtual void answered(Stage stage, const Reply& reply, const Facts& facts,
                          std::chrono::nanoseconds elapsed) noexcept = 0;
};

// What a Session runs with, besides the snapshot itself.
struct Environment {
    // The snapshot a new SMTP session starts with (at each connect).
    std::function<std::shared_ptr<const Runtime>()> runtime;
    // The time for enforce_after; empty: the system clock.
    std::function<std::chrono::system_clock::time_point()> clock;
    // True while the milter is stopping: new SMTP sessions get 451 4.3.2.
    std::function<bool()> draining;
    // SPF's term-by-term trace (regmilter-query --trace); may be empty.
    spf::Tracer trace;
    // The greylisting and rate-limit store a new SMTP session uses (the
    // front end's, outside the Runtime: a reload keeps it); empty or null:
    // every store call fails and [state] on_error applies.
    std::function<std::shared_ptr<state::Store>()> store;
    // Read the store without changing it (regmilter-query --state-peek).
    bool state_peek = false;
    // Where the store's outage lines go (policy/throttle.hpp store_notice); may be empty.
    std::function<void(LogLevel, const std::string&)> notice;
    // Tests only: called as each stage starts; what it throws is handled as
    // an internal error of that stage. Empty in every front end.
    std::function<void(Stage)> before_stage;
    // Statistics; null: none (regmilter-query, tests). Outlives the Session.
    Observer* observer = nullptr;
    // The milter's master may hold a MAIL FROM while the worker looks its
    // answers up ahead (they are then in the DNS cache): the deadline those
    // lookups ran under, so that the stage's budget counts from when the
    // command came. Empty, or nullopt: stage_timeout_ms from now.
    std::function<std::optional<dns::Deadline>(Stage, const std::string& session_id)> stage_deadline;
};

struct ConnectInfo {
    std::optional<net::Address> ip;  // none: unix socket, "unknown" client
    std::string hostname = "unknown";
    Macros macros;
};

class Session {
public:
    explicit Session(Environment env);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // A new SMTP session: on a fresh milter connection, or a second one on
    // the same connection (QUIT_NC), with the current snapshot.
    Reply connect(const ConnectInfo& info) noexcept;
    Reply helo(std::string_view name, const Macros& macros) noexcept;
    // `arg`: the MTA's first argument ("<alice@example.org>", "<>").
    Reply mail(std::string_view arg, const Macros& macros) noexcept;
    Reply rcpt(std::string_view arg, const Macros& macros) noexcept;
    // Right after mail() answered continue: every RCPT TO of this
    // transaction will be answered continue (policy::rcpt_always_continues),
    // and no failure is pending that a later answer would carry.
    bool rcpt_continues() const noexcept;
    // One header; never refuses (the MTA may not take a reply here): a
    // failure is answered at end of headers.
    Reply header(std::string_view name, std::string_view value) noexcept;
    // Refusals go out here, before the body; header edits wait for the end.
    Reply end_of_headers(const Macros& macros) noexcept;
    Reply end_of_message(const Macros& macros) noexcept;
    // The transaction ended without a message (RSET, a refused command, the
    // MTA's abort); the connection stays.
    Reply abort() noexcept;
    // The connection ended.
    Reply close() noexcept;

    // A front end could not carry out a Reply (smfi_delrcpt failed, ...):
    // the on_internal_error answer for `stage`, with the forged header
    // removal at the end of message.
    Reply internal_error(Stage stage, std::string_view what) noexcept;

    // For reports and tests: the state so far.
    const Context& context() const { return ctx_; }
    const Facts& facts() const { return facts_; }
    const std::shared_ptr<const Runtime>& runtime() const { return rt_; }
    const std::shared_ptr<state::Store>& store() const { return store_; }
    bool peeking() const { return env_.state_peek; }
    // The recipient of the last RCPT, refused or not, with its bulk choice and source.
    const Recipient& last_recipient() const { return last_rcpt_; }

private:
    const config::Config& cfg() const { return *rt_->config; }
    // `held`: a continue here is not yet the stage's answer (end of
    // headers): its time is added to the next answer's.
    template <class Body>
    Reply guarded(Stage stage, Body&& body, bool held = false) noexcept;
    void observed(Stage stage, const Reply& r, std::chrono::steady_clock::time_point start,
                  bool held) noexcept;
    Reply logged(Stage stage, Reply r, std::string_view rcpt = {}, bool always = true,
                 const Recipient* recipient = nullptr);
    void merge(const Macros& macros);
    dns::Resolver& resolver();
    void start_connect_lookups();
    void settle_connect();
    void reset_transaction();
    // Greylisting and rate limits (policy/throttle.hpp), after the stage's
    // own decision `v` let the command go on.
    Reply throttle_mail(Reply v);
    Reply throttle_rcpt(const std::string& rcpt, Reply v, bool& log);
    ratelimit::Result count(ratelimit::Kind kind);
    void note(const state::Outcome& o);

    Environment env_;
    std::shared_ptr<const Runtime> rt_;
    std::unique_ptr<dns::Resolver> resolver_;  // this session's, made at first use
    std::shared_ptr<state::Store> store_;      // taken at connect, as the snapshot
    Context ctx_;
    Facts facts_;
    bool connected_ = false;
    bool accepted_ = false;             // decide_connect said accept: every message unexamined
    bool degraded_ = false;             // an internal error with on_internal_error = accept:
                                        // this transaction passes unexamined, headers still scrubbed
    bool connection_degraded_ = false;  // the same for every transaction (connect or HELO failed)
    std::string failure_;               // a header-stage failure, answered at end of headers
    std::optional<Reply> data_;         // decided at end of headers, applied at end of message
    Recipient last_rcpt_;               // for last_recipient()
    std::chrono::nanoseconds held_{0};  // the end of headers' time, for the observer
    // The registry lookups of connect, on their own thread; joined at MAIL
    // FROM (or close). Declared last: destroyed first, waiting for the thread.
    std::future<ConnectFacts> lookups_;
};

}  // namespace regmilter::policy
