#include "policy/session.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <system_error>

#include "dns/trace.hpp"
#include "policy/replies.hpp"
#include "policy/throttle.hpp"
#include "util/text.hpp"

namespace regmilter::policy {

namespace {

// The master's {regmilter_session} when it sent one, else this process's own.
std::string session_id(const Macros& macros) {
    for (const auto& [name, value] : macros)
        if (name == "regmilter_session" && !value.empty()) return value;
    static std::atomic<unsigned long> counter{0};
    char buf[48];
    std::snprintf(buf, sizeof buf, "%lX.%lX", static_cast<unsigned long>(getpid()), ++counter);
    return buf;
}

// The connect lookups no stage asked for: waited for when they run (they
// hold the session's copies), dropped when deferred (the pool was full: they
// would run only now, for nothing).
void finish(std::future<ConnectFacts>& lookups) {
    if (lookups.valid() && lookups.wait_for(std::chrono::seconds(0)) != std::future_status::deferred)
        lookups.wait();
    lookups = {};
}

// RFC 5782 §5: a zone that failed its health check (registry::Health, kept
// by the daemon's checks) answers no lookup while it is broken: its entries
// become errors, so that its on_error applies.
void apply_health(ConnectFacts& c, const config::Config& cfg, const registry::Health* health) {
    if (!health || health->broken_count() == 0 || !c.ip) return;
    for (auto& e : c.registry)
        for (const auto& z : cfg.registries)
            if (z.name == e.name) {
                health->apply(e, z, *c.ip);
                break;
            }
}

}  // namespace

Session::Session(Environment env) : env_(std::move(env)) {}

Session::~Session() {
    finish(lookups_);
}

template <class Body>
Reply Session::guarded(Stage stage, Body&& body, bool held) noexcept {
    const auto start =
        env_.observer ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    Reply r = [&]() noexcept {
        try {
            if (!rt_ && stage != Stage::connect) throw std::logic_error("a stage before connect");
            if (env_.before_stage) env_.before_stage(stage);
            return body();
        } catch (const std::exception& e) {
            return internal_error(stage, e.what());
        } catch (...) {
            return internal_error(stage, "unknown exception");
        }
    }();
    if (env_.observer) observed(stage, r, start, held);
    return r;
}

// The one place statistics hear of an answer.
void Session::observed(Stage stage, const Reply& r, std::chrono::steady_clock::time_point start,
                       bool held) noexcept {
    std::chrono::nanoseconds elapsed = std::chrono::steady_clock::now() - start + held_;
    held_ = {};
    if (held && !refuses(r.action)) {
        held_ = elapsed;
        return;
    }
    env_.observer->answered(stage, r, facts_, elapsed);
}

Reply Session::internal_error(Stage stage, std::string_view what) noexcept {
    Reply r = internal_error_reply(rt_ ? rt_->config.get() : nullptr);
    try {
        if (r.action == Action::accept) {
            // Pass unexamined — the rest of the connection when its own facts
            // failed (connect, HELO), else this transaction — but keep the
            // end of message: forged Authentication-Results must go whatever
            // else failed.
            degraded_ = true;
            if (stage == Stage::connect || stage == Stage::helo) connection_degraded_ = true;
            r.action = Action::continue_;
        }
        if (stage == Stage::data) r.remove_headers = facts_.data.forged_ar;
        r.log = log_prefix(ctx_) + " stage=" + to_string(stage) +
                " error=\"internal: " + util::sanitize(what, util::TextUse::log_value) +
                "\" action=" + to_string(r.action) +
                (r.code.empty() ? "" : " code=\"" + r.code + " " + r.xcode + "\"");
        r.log_level = LogLevel::error;
    } catch (...) {
        // The answer stands without its log line.
    }
    return r;
}

Reply Session::logged(Stage stage, Reply r, std::string_view rcpt, bool always, const Recipient* recipient) {
    if (always || r.action != Action::continue_)
        r.log = log_line(ctx_, facts_, cfg(), stage, r, rcpt, recipient);
    return r;
}

void Session::merge(const Macros& macros) {
    for (const auto& [name, value] : macros) ctx_.set_macro(name, value);
}

dns::Resolver& Session::resolver() {
    if (!resolver_) resolver_ = rt_->make_resolver();
    if (!resolver_) throw std::runtime_error("no upstream resolver (check [resolver] nameservers)");
    return *resolver_;
}

void Session::reset_transaction() {
    begin_transaction(ctx_, facts_);
    data_.reset();
    held_ = {};
    failure_.clear();
    degraded_ = connection_degraded_;
}

Reply Session::connect(const ConnectInfo& info) noexcept {
    try {
        finish(lookups_);  // a previous SMTP session on this connection
        ctx_ = Context{};
        facts_ = Facts{};
        ctx_.session_id = session_id(info.macros);
        connection_degraded_ = false;
        rt_ = env_.runtime ? env_.runtime() : nullptr;  // first: the fallback answer needs the config
        store_ = env_.store ? env_.store() : nullptr;
        if (rt_) facts_.authserv_id = rt_->authserv_id;  // forged headers are found even if connect fails
    } catch (...) {
        rt_ = nullptr;
    }
    return guarded(Stage::connect, [&] {
        if (!rt_) throw std::runtime_error("no configuration installed");
        resolver_.reset();
        connected_ = true;
        accepted_ = false;
        ctx_.ip = info.ip;
        ctx_.hostname = info.hostname;
        merge(info.macros);
        facts_.now = env_.clock ? env_.clock() : std::chrono::system_clock::now();
        reset_transaction();
        if (env_.draining && env_.draining()) {
            Reply r;
            r.action = Action::tempfail;
            r.code = replies::shutting_down.code;
            r.xcode = replies::shutting_down.xcode;
            r.text = replies::shutting_down_text;
            r.reason = "shutting-down";
            accepted_ = true;  // nothing more is examined on this connection
            return logged(Stage::connect, std::move(r));
        }
        if (!ctx_.ip) {
            // No address, no DNS: decided here (unknown_client = trust or accept).
            facts_.connect.unknown_client = true;
            Reply r = decide_connect(facts_, cfg());
            accepted_ = r.action == Action::accept;
            return logged(Stage::connect, std::move(r), {}, false);
        }
        start_connect_lookups();
        return Reply{};
    });
}

// The registry zones and FCrDNS. Answers all in the cache: asked here (a few
// microseconds). Otherwise on a pool thread (rt->pool; without one, a thread
// of their own), every zone at once, each through its own resolver, so that
// their DNS overlaps the HELO.
void Session::start_connect_lookups() {
    const config::Config& c = cfg();
    net::Address ip = ctx_.ip->unmapped();
    bool local = c.registries.empty() || c.trust.networks.contains(ip);
    bool cached = registry_cached(*rt_->cache, ip, c);
    dns::Deadline deadline = stage_deadline(c);
    if (env_.trace) {
        // regmilter-query --trace: here and now, each registry query traced.
        dns::TracingResolver traced(resolver(), env_.trace, "registry: ");
        facts_.connect = gather_connect(ctx_, c, traced, deadline);
        apply_health(facts_.connect, c, rt_->health.get());
        return;
    }
    if (local || cached) {
        facts_.connect = gather_connect(ctx_, c, resolver(), deadline);
        apply_health(facts_.connect, c, rt_->health.get());
        return;
    }
    auto job = [rt = rt_, client = ctx_, deadline] {
        ResolverFactory make = [rt] { return rt->make_resolver(); };
        return gather_connect(client, *rt->config, make, deadline, rt->pool);
    };
    try {
        // On a kept thread of the pool (when it has none free: here, at MAIL FROM).
        lookups_ =
            rt_->pool ? rt_->pool->submit(std::move(job)) : std::async(std::launch::async, std::move(job));
    } catch (const std::system_error&) {
        // No thread to be had: look up here and now instead.
        facts_.connect = gather_connect(ctx_, c, resolver(), deadline);
        apply_health(facts_.connect, c, rt_->health.get());
    }
}

void Session::settle_connect() {
    if (!lookups_.valid()) return;
    auto f = std::move(lookups_);
    facts_.connect = f.get();
    apply_health(facts_.connect, cfg(), rt_->health.get());
}

Reply Session::helo(std::string_view name, const Macros& macros) noexcept {
    return guarded(Stage::helo, [&] {
        ctx_.helo = std::string(name);
        merge(macros);
        return logged(Stage::helo, decide_helo(facts_, cfg()), {}, false);
    });
}

Reply Session::mail(std::string_view arg, const Macros& macros) noexcept {
    return guarded(Stage::mail, [&] {
        if (accepted_) {
            Reply r;
            r.action = Action::accept;
            return r;
        }
        // One budget for the command: waiting for the connect lookups (their
        // deadline is earlier still) and SPF together stay within
        // stage_timeout_ms, well below the MTA's milter timeout.
        dns::Deadline deadline = stage_deadline(cfg());
        if (env_.stage_deadline)
            if (std::optional<dns::Deadline> began = env_.stage_deadline(Stage::mail, ctx_.session_id))
                deadline = std::min(deadline, *began);
        reset_transaction();
        merge(macros);
        ctx_.mail_from = envelope_address(arg);
        if (degraded_) {
            settle_connect();
            Reply r;
            r.reason = "internal-error:unexamined";
            return logged(Stage::mail, std::move(r));
        }
        // The HELO evaluation beside MAIL FROM's, on the pool, unless its
        // record is in the cache (then both are a few microseconds here).
        util::Pool* beside = rt_->pool;
        if (env_.trace || !cfg().spf.check_helo || ctx_.helo.empty() ||
            rt_->cache->has(ctx_.helo, dns::RrType::txt))
            beside = nullptr;
        ResolverFactory make;
        if (beside) make = [rt = rt_] { return rt->make_resolver(); };
        if (lookups_.valid()) {
            // SPF needs nothing from the registry: evaluated while its
            // answers arrive, so the stage waits for the longer, not the sum.
            Facts early = facts_;
            early.connect = connect_without_lookups(ctx_, cfg());
            facts_.mail = gather_mail(ctx_, early, cfg(), resolver(), deadline, env_.trace, beside, make);
            settle_connect();
            facts_.mail.envelope_bulk = envelope_signals(ctx_, facts_.connect, cfg());
        } else {
            facts_.mail = gather_mail(ctx_, facts_, cfg(), resolver(), deadline, env_.trace, beside, make);
        }
        Reply v = decide_mail(facts_, cfg());
        if (!refuses(v.action) && v.action != Action::accept) v = throttle_mail(std::move(v));
        return logged(Stage::mail, std::move(v));
    });
}

Reply Session::rcpt(std::string_view arg, const Macros& macros) noexcept {
    last_rcpt_ = Recipient{};
    return guarded(Stage::rcpt, [&] {
        last_rcpt_.arg = std::string(arg);
        last_rcpt_.rcpt = envelope_address(arg);
        merge(macros);
        if (degraded_) {
            last_rcpt_ = gather_rcpt(arg, cfg(), rt_->bulk_table.get());
            facts_.rcpts.push_back(last_rcpt_);
            return Reply{};
        }
        // The opt-out zones within this command's own budget.
        last_rcpt_ = cfg().bulk.zones.empty() ? gather_rcpt(arg, cfg(), rt_->bulk_table.get())
                                              : gather_rcpt(arg, facts_, cfg(), rt_->bulk_table.get(),
                                                            resolver(), stage_deadline(cfg()));
        const Recipient& r = last_rcpt_;
        Reply v = decide_rcpt(facts_, r, cfg());
        bool log = false;  // an observe-mode greylisting or rate-limit refusal
        if (!refuses(v.action)) v = throttle_rcpt(r.rcpt, std::move(v), log);
        if (!refuses(v.action)) facts_.rcpts.push_back(r);
        // A zone that failed is logged even when the recipient passes.
        bool zone_error = r.zone && r.zone->status == bulk::ZoneStatus::error;
        Reply out = logged(Stage::rcpt, std::move(v), r.rcpt, zone_error || log, &r);
        if (zone_error && out.log_level == LogLevel::info) out.log_level = LogLevel::warning;
        return out;
    });
}

bool Session::rcpt_continues() const noexcept {
    return rt_ && !degraded_ && !accepted_ && failure_.empty() && rcpt_always_continues(facts_, cfg());
}

Reply Session::header(std::string_view name, std::string_view value) noexcept {
    observe_header(facts_.data, name, value, facts_.authserv_id);
    try {
        if (env_.before_stage) env_.before_stage(Stage::data);
    } catch (const std::exception& e) {
        if (failure_.empty()) failure_ = std::string("header: ") + e.what();
    } catch (...) {
        if (failure_.empty()) failure_ = "header: unknown exception";
    }
    return Reply{};
}

Reply Session::end_of_headers(const Macros& macros) noexcept {
    return guarded(
        Stage::data,
        [&] {
            if (!failure_.empty()) throw std::runtime_error(failure_);
            merge(macros);
            if (degraded_) return Reply{};
            data_ = decide_data(facts_, cfg());
            if (refuses(data_->action)) return logged(Stage::data, *data_);
            return Reply{};
        },
        true);
}

Reply Session::end_of_message(const Macros& macros) noexcept {
    return guarded(Stage::data, [&] {
        if (!failure_.empty()) throw std::runtime_error(failure_);
        merge(macros);
        if (degraded_) {
            Reply r;
            r.remove_headers = facts_.data.forged_ar;
            r.reason = "internal-error";
            return logged(Stage::data, std::move(r));
        }
        if (!data_) data_ = decide_data(facts_, cfg());
        return logged(Stage::data, *data_);
    });
}

Reply Session::abort() noexcept {
    try {
        reset_transaction();
    } catch (...) {
        // Nothing to answer at abort; the next MAIL FROM starts afresh.
    }
    return Reply{};
}

Reply Session::close() noexcept {
    try {
        finish(lookups_);
        connected_ = false;
    } catch (...) {
        // Nothing can be answered at close.
    }
    return Reply{};
}

// ---- greylisting and rate limits (policy/throttle.hpp) ----

void Session::note(const state::Outcome& o) {
    if (!env_.notice) return;
    std::string line = store_notice(o, store_ ? store_->describe() : no_store().describe(), cfg());
    if (!line.empty()) env_.notice(o.ok() ? LogLevel::info : LogLevel::warning, line);
}

namespace {

state::UnixTime unix_time(const Environment& env) {
    return env.clock ? state::UnixTime(std::chrono::system_clock::to_time_t(env.clock())) : state::wall_now();
}

state::Deadline store_deadline(const config::Config& c) {
    return state::deadline_in(std::chrono::milliseconds(c.state.timeout_ms));
}

// Observe mode: greylisting's or a rate limit's would-be refusal `o` names the
// answer, as its refusal would in enforce mode, unless `v` would already
// refuse; otherwise `o`'s reason only fills an empty one.
Reply take_observed(Reply v, const Reply& o) {
    if (o.would != Action::continue_ && v.would == Action::continue_) {
        v.reason = o.reason;
        v.would = o.would;
    } else if (v.reason.empty()) {
        v.reason = o.reason;
    }
    return v;
}

}  // namespace

ratelimit::Result Session::count(ratelimit::Kind kind) {
    state::Store& s = store_ ? *store_ : no_store();
    const auto& c = cfg();
    bool registered = facts_.throttle.registered;
    ratelimit::Result r = env_.state_peek ? ratelimit::peek(s, c.ratelimit, *facts_.connect.ip, registered,
                                                            kind, unix_time(env_), store_deadline(c))
                                          : ratelimit::count(s, c.ratelimit, *facts_.connect.ip, registered,
                                                             kind, unix_time(env_), store_deadline(c));
    note(r.store);
    return r;
}

// The messages' rate limit, counted once the MAIL FROM checks let the
// transaction go on; then, for a greylisted client, whether its network is
// allowed: then every recipient passes, known now, with no store call each,
// and the master may answer them (rcpt_continues).
Reply Session::throttle_mail(Reply v) {
    ThrottleFacts& t = facts_.throttle;
    const config::Config& c = cfg();
    t = plan_throttle(facts_, c);
    if (t.limited) {
        ratelimit::Result r = count(ratelimit::Kind::messages);
        if (r.outcome != ratelimit::Outcome::off) {
            t.messages = r;
            Reply l = observe(decide_ratelimit(r, c), c, t.observed);
            if (refuses(l.action)) return l;
            v = take_observed(std::move(v), l);
        }
    }
    if (t.greylist) {
        state::Outcome o;
        t.allowed = greylist::check_client(store_ ? *store_ : no_store(), c.greylist, *facts_.connect.ip,
                                           unix_time(env_), store_deadline(c),
                                           env_.state_peek ? state::Mode::peek : state::Mode::update, o);
        note(o);
    }
    return v;
}

// Greylisting of the triplet, then the recipients' rate limit (a greylisted
// recipient is not counted). `log`: an observe-mode refusal to log.
Reply Session::throttle_rcpt(const std::string& rcpt, Reply v, bool& log) {
    ThrottleFacts& t = facts_.throttle;
    if (!t.greylist && !t.limited) return v;
    const config::Config& c = cfg();
    RcptThrottle& rt = t.rcpts.emplace_back();
    rt.rcpt = rcpt;
    if (t.allowed) {
        rt.greylist = t.allowed;
    } else if (t.greylist) {
        state::Store& s = store_ ? *store_ : no_store();
        greylist::Request req{*facts_.connect.ip, ctx_.mail_from, rcpt};
        rt.greylist = env_.state_peek
                          ? greylist::peek(s, c.greylist, req, unix_time(env_), store_deadline(c))
                          : greylist::check(s, c.greylist, req, unix_time(env_), store_deadline(c));
        note(rt.greylist->store);
    }
    if (rt.greylist) {
        Reply g = observe(decide_greylist(*rt.greylist, t.greylist_reason, c), c, t.observed);
        if (refuses(g.action)) return g;
        log = log || !g.reason.empty();  // observe mode
        v = take_observed(std::move(v), g);
    }
    if (t.limited) {
        ratelimit::Result r = count(ratelimit::Kind::recipients);
        if (r.outcome != ratelimit::Outcome::off) {
            rt.ratelimit = r;
            Reply l = observe(decide_ratelimit(r, c), c, t.observed);
            if (refuses(l.action)) return l;
            log = log || !l.reason.empty();
            v = take_observed(std::move(v), l);
        }
    }
    return v;
}

}  // namespace regmilter::policy
