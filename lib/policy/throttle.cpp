#include "policy/throttle.hpp"

#include "policy/checks.hpp"
#include "policy/replies.hpp"
#include "state/pass_memory.hpp"
#include "state/redis_store.hpp"
#include "util/text.hpp"

namespace regmilter::policy {

using config::Config;

namespace {

bool any_greylist(const Config& cfg) {
    for (const auto& z : cfg.registries)
        if (z.unregistered == CheckAction::greylist || z.listed == CheckAction::greylist) return true;
    return false;
}

// [state] on_error for a failed store call.
Reply state_error(const Config& cfg) {
    Reply v;
    if (cfg.state.on_error == OnError::tempfail) {
        v.action = Action::tempfail;
        v.code = replies::state_trouble.code;
        v.xcode = replies::state_trouble.xcode;
        v.text = replies::state_trouble_text;
        v.reason = "state:error";
    }
    return v;
}

class NoStore : public state::Store {
public:
    state::GreylistAnswer greylist(const state::Key&, const state::Key&, const state::GreylistRules&,
                                   state::UnixTime, state::Mode, state::Deadline) override {
        state::GreylistAnswer a;
        fail(a);
        return a;
    }
    state::CounterAnswer count(const state::Key&, uint64_t, uint64_t, state::UnixTime, state::UnixTime,
                               state::Mode, state::Deadline) override {
        state::CounterAnswer a;
        fail(a);
        return a;
    }
    std::string describe() const override { return "no state store"; }

private:
    static void fail(state::Outcome& o) {
        o.status = state::Status::failed;
        o.reason = "no state store";
    }
};

}  // namespace

ThrottleFacts plan_throttle(const Facts& f, const Config& cfg) {
    ThrottleFacts t;
    if (f.mail.trust != TrustReason::none || !f.connect.ip) return t;
    bool registered = false, uncertain = false;
    for (const auto& e : f.connect.registry)
        if (e.meaning == registry::Meaning::registered) {
            registered = registered || counts_registered(e);
            uncertain = uncertain || e.status == registry::Status::error;
        }
    t.registered = registered || uncertain;
    t.limited = ratelimit::limit_for(cfg.ratelimit, t.registered, ratelimit::Kind::messages) > 0 ||
                ratelimit::limit_for(cfg.ratelimit, t.registered, ratelimit::Kind::recipients) > 0;
    // A registered client is never greylisted, not even for a block-list listing.
    if (!registered && any_greylist(cfg)) {
        std::vector<Check> checks = evaluate_checks(f, cfg);
        if (const Check* c = greylisting(checks)) {
            t.greylist = true;
            t.greylist_reason = c->reason;
        }
    }
    return t;
}

Reply decide_greylist(const greylist::Result& r, const std::string& reason, const Config& cfg) noexcept {
    try {
        if (r.outcome == greylist::Outcome::error) return state_error(cfg);
        Reply v;
        if (!r.delays()) return v;
        v.action = Action::tempfail;
        v.code = replies::policy.tempfail.code;
        v.xcode = replies::policy.tempfail.xcode;
        v.text = greylist::reply_text(r);
        v.reason = "greylist:" + reason;
        return v;
    } catch (...) {
        return internal_error_reply(&cfg);
    }
}

Reply decide_ratelimit(const ratelimit::Result& r, const Config& cfg) noexcept {
    try {
        if (r.outcome == ratelimit::Outcome::error) return state_error(cfg);
        Reply v;
        if (r.outcome != ratelimit::Outcome::limited) return v;
        v.action = Action::tempfail;
        v.code = replies::policy.tempfail.code;
        v.xcode = replies::policy.tempfail.xcode;
        v.text = ratelimit::reply_text(r);
        v.reason = std::string("ratelimit:") + (r.registered ? "registered:" : "unregistered:") +
                   ratelimit::to_string(r.kind);
        return v;
    } catch (...) {
        return internal_error_reply(&cfg);
    }
}

Reply observe(Reply v, const Config& cfg, std::vector<std::string>& observed) {
    if (cfg.milter.mode != Mode::observe || !refuses(v.action)) return v;
    bool greylist = v.reason.rfind("greylist:", 0) == 0;
    observed.push_back(util::sanitize(std::string(greylist ? "would greylist: " : "would tempfail: ") +
                                          v.code + " " + v.xcode + " " + v.text,
                                      util::TextUse::header));
    Reply out;
    out.reason = "observe:" + v.reason;
    out.would = v.action;
    return out;
}

std::string store_notice(const state::Outcome& o, std::string_view store, const Config& cfg) {
    std::string then = cfg.state.on_error == OnError::accept
                           ? "greylisting and rate limits let mail through ([state] on_error = accept)"
                           : "greylisted and rate-limited mail gets 451 4.3.0 ([state] on_error = tempfail)";
    switch (o.event) {
        case state::Event::outage_began:
            return "state store " + std::string(store) + " unavailable (" + state::to_string(o.status) +
                   "): " + o.reason + "; until it answers, " + then;
        case state::Event::outage_ended:
            return "state store " + std::string(store) + " answers again, after " +
                   std::to_string(o.outage_failures) + " failed call(s)";
        case state::Event::none:
            break;
    }
    if (o.status == state::Status::wrong_type)
        return "state store " + std::string(store) + ": " + o.reason + "; for this key " + then;
    return "";
}

state::Store& no_store() {
    static NoStore none;
    return none;
}

MadeStore make_store(const config::State& s) {
    MadeStore m;
    if (s.backend == StateBackend::memory) {
        state::MemoryOptions o;
        o.max_entries = size_t(s.max_entries);
        m.memory = std::make_shared<state::MemoryStore>(o);
        m.store = m.memory;
        return m;
    }
    state::RedisOptions o;
    std::string error;
    if (!state::parse_redis_address(s.redis, o, error)) {  // the configuration checked it: never here
        m.store = std::shared_ptr<state::Store>(&no_store(), [](state::Store*) {});
        return m;
    }
    o.prefix = s.prefix;
    o.timeout = std::chrono::milliseconds(s.timeout_ms);
    o.password = s.password;
    m.store = std::make_shared<state::RedisStore>(std::move(o));
    if (s.pass_cache > 0) {
        state::PassMemoryOptions p;
        p.remember = s.pass_cache;
        m.store = std::make_shared<state::PassMemory>(std::move(m.store), p);
    }
    return m;
}

bool same_store(const config::State& a, const config::State& b) {
    if (a.backend != b.backend) return false;
    if (a.backend == StateBackend::memory) return a.max_entries == b.max_entries;
    return a.redis == b.redis && a.prefix == b.prefix && a.timeout_ms == b.timeout_ms &&
           a.password == b.password && a.pass_cache == b.pass_cache;
}

std::string describe_store(const config::State& s) {
    if (s.backend == StateBackend::memory)
        return "memory (at most " + std::to_string(s.max_entries) + " entries" +
               (s.snapshot.empty() ? std::string(", no snapshot") : ", snapshot " + s.snapshot) + ")";
    return "redis " + s.redis + " (prefix " + s.prefix + ", timeout " + std::to_string(s.timeout_ms) + " ms" +
           (s.password.empty() ? "" : ", with a password") +
           (s.pass_cache > 0 ? ", passes remembered " + std::to_string(s.pass_cache) + " s" : "") + ")";
}

}  // namespace regmilter::policy
