// state: RedisStore — the steps of store.hpp as Lua scripts over hiredis,
// pooled connections, backoff, and every Redis failure as a Status.
#include "state/redis_store.hpp"

#include "net/endpoint.hpp"
#include "util/strings.hpp"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "net/address.hpp"

namespace regmilter::state {

namespace {

// Seconds a Redis key outlives the expiry stored in it: Redis's TTL only
// collects garbage; the scripts compare the stored expiry with the caller's
// clock, so hosts whose clocks differ a little agree on what exists.
constexpr int64_t ttl_slack = 60;

// Step 1 of store.hpp's greylisting step, shared by the two scripts below:
// the client network's count n (0 if absent); allowed when auto_allow says
// so. Wants the locals now, life, auto, update, slack and ck (the client's key).
const char* const client_step_lua = R"lua(
local c = redis.call('HMGET', ck, 'n', 'e')
local n, ce = tonumber(c[1]), tonumber(c[2])
if n == nil or ce == nil or ce < now then n = 0 end
if auto > 0 and n >= auto then
  if update then
    redis.call('HSET', ck, 'e', now + life)
    redis.call('EXPIRE', ck, life + slack)
  end
  return {5, 0, n}
end
)lua";

// The greylisting step of store.hpp, line for line (MemoryStore::greylist is
// the same rule in C++; t/support/state_scenarios runs one table on both).
// KEYS: triplet, client. ARGV: now, delay, retry_window, pass_lifetime,
// auto_allow, update (1) or peek (0), slack. Returns {state, first_seen,
// client_passes}; state 1 created, 2 early, 3 passed_now, 4 passed, 5 allowed.
// An HMGET on a key of another type raises WRONGTYPE, which ends the script.
const std::string greylist_lua = std::string(R"lua(
local now, delay, window, life = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local auto, update, slack = tonumber(ARGV[5]), ARGV[6] == '1', tonumber(ARGV[7])
local ck = KEYS[2]
)lua") + client_step_lua + R"lua(
local t = redis.call('HMGET', KEYS[1], 'f', 'p', 'e')
local f, p, e = tonumber(t[1]), tonumber(t[2]), tonumber(t[3])
if f == nil or p == nil or e == nil or e < now then
  if update then
    redis.call('HSET', KEYS[1], 'f', now, 'p', 0, 'e', now + window)
    redis.call('EXPIRE', KEYS[1], window + slack)
  end
  return {1, now, n}
end
if p ~= 0 then
  if update then
    redis.call('HSET', KEYS[1], 'e', now + life)
    redis.call('EXPIRE', KEYS[1], life + slack)
  end
  return {4, f, n}
end
if now - f < delay then return {2, f, n} end
if update then
  redis.call('HSET', KEYS[1], 'p', now, 'e', now + life)
  redis.call('EXPIRE', KEYS[1], life + slack)
  redis.call('HSET', ck, 'n', n + 1, 'e', now + life)
  redis.call('EXPIRE', ck, life + slack)
end
return {3, f, n + 1}
)lua";

// The client step of store.hpp: step 1 alone. KEYS: client. ARGV: now,
// pass_lifetime, auto_allow, update (1) or peek (0), slack. Returns
// {state, 0, client_passes}, state 5 allowed or 1 (not allowed).
const std::string client_lua = std::string(R"lua(
local now, life, auto = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local update, slack = ARGV[4] == '1', tonumber(ARGV[5])
local ck = KEYS[1]
)lua") + client_step_lua + R"lua(
return {1, 0, n}
)lua";

// The rate-limit step. KEYS: counter. ARGV: n, limit, expires, now, update,
// slack. Returns {admitted 1|0, value}.
const char* const count_lua = R"lua(
local n, limit, expires, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local update, slack = ARGV[5] == '1', tonumber(ARGV[6])
local r = redis.call('HMGET', KEYS[1], 'v', 'e')
local v, e = tonumber(r[1]), tonumber(r[2])
if v == nil or e == nil or e < now then v = 0 end
local w = v + n
if limit > 0 and w > limit then return {0, w} end
if update then
  redis.call('HSET', KEYS[1], 'v', w, 'e', expires)
  redis.call('EXPIRE', KEYS[1], math.max(expires - now, 0) + slack)
end
return {1, w}
)lua";

std::string sha1_hex(const char* text) {
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(text), std::strlen(text), md);
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char b : md) {
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

// Keeps SIGPIPE (a write to a connection Redis closed) from ending the
// process, without touching its disposition: blocked in this thread for the
// call, and a SIGPIPE the call raised is taken off the pending set.
class SigpipeGuard {
public:
    SigpipeGuard() {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &s, &old_);
        sigset_t p;
        sigpending(&p);
        pending_before_ = sigismember(&p, SIGPIPE) == 1;
    }
    ~SigpipeGuard() {
        if (!pending_before_) {
            sigset_t p;
            sigpending(&p);
            if (sigismember(&p, SIGPIPE) == 1) {
                sigset_t s;
                sigemptyset(&s);
                sigaddset(&s, SIGPIPE);
                timespec zero{0, 0};
                sigtimedwait(&s, nullptr, &zero);
            }
        }
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    SigpipeGuard(const SigpipeGuard&) = delete;
    SigpipeGuard& operator=(const SigpipeGuard&) = delete;

private:
    sigset_t old_;
    bool pending_before_ = false;
};

timeval timeval_of(Clock::duration d) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
    if (us < 1000) us = 1000;  // hiredis: 0 would mean "no timeout"
    timeval tv;
    tv.tv_sec = long(us / 1000000);
    tv.tv_usec = long(us % 1000000);
    return tv;
}

// True when a failed hiredis call ran into the socket timeout (SO_RCVTIMEO /
// SO_SNDTIMEO: EAGAIN) rather than a closed or broken connection.
bool timed_out(const redisContext* c, int saved_errno) {
    return c->err == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK ||
                                      std::strstr(c->errstr, "temporarily unavailable") != nullptr);
}

long ms_of(Clock::duration d) {
    return long(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

// The first line of a Redis error, bounded, for logs.
std::string error_text(const char* s, size_t len) {
    std::string_view v(s, len);
    v = v.substr(0, std::min(v.find_first_of("\r\n"), size_t(240)));
    std::string out;
    for (char c : v) out += (c >= 0x20 && c < 0x7f) ? c : '?';
    return out;
}

}  // namespace

struct RedisStore::Script {
    const char* text;
    std::string sha;
    size_t results;
};

struct RedisStore::Reply {
    Status status = Status::ok;
    std::string reason;
    std::vector<long long> ints;
    bool broken = false;     // the connection is unusable: drop it
    bool timed_out = false;  // ... because a read or write timed out
};

struct RedisStore::Connection {
    redisContext* ctx = nullptr;
    uint64_t generation = 0;
    long timeout_us = -1;  // what redisSetTimeout was last given
    ~Connection() {
        if (ctx) redisFree(ctx);
    }
};

namespace {
const RedisStore::Script& greylist_script() {
    static const RedisStore::Script s{greylist_lua.c_str(), sha1_hex(greylist_lua.c_str()), 3};
    return s;
}
const RedisStore::Script& client_script() {
    static const RedisStore::Script s{client_lua.c_str(), sha1_hex(client_lua.c_str()), 3};
    return s;
}
const RedisStore::Script& count_script() {
    static const RedisStore::Script s{count_lua, sha1_hex(count_lua), 2};
    return s;
}
}  // namespace

bool parse_redis_address(std::string_view text, RedisOptions& into, std::string& error) {
    auto fail = [&](const char* why) {
        error = "redis \"" + std::string(text) + "\": " + why +
                " (use HOST:PORT such as 127.0.0.1:6379 or [::1]:6379, or unix:/PATH)";
        return false;
    };
    if (util::starts_with(text, "unix:")) {
        std::string_view path = text.substr(5);
        if (path.empty() || path[0] != '/') return fail("the unix socket path must be absolute");
        into.unix_path = std::string(path);
        return true;
    }
    std::string_view host = text, port;
    if (!text.empty() && text[0] == '[') {
        size_t close = text.find(']');
        if (close == std::string_view::npos) return fail("no closing ']'");
        host = text.substr(1, close - 1);
        std::string_view rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest[0] != ':') return fail("junk after ']'");
            port = rest.substr(1);
            if (port.empty()) return fail("no port after ':'");
        }
        if (!net::Address::parse(host)) return fail("not an IPv6 address inside [ ]");
    } else {
        size_t colon = text.find(':');
        if (colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos) {
            host = text.substr(0, colon);
            port = text.substr(colon + 1);
            if (port.empty()) return fail("no port after ':'");
        } else if (colon != std::string_view::npos && !net::Address::parse(text)) {
            return fail("not an address (write an IPv6 address with a port as [ADDRESS]:PORT)");
        }
    }
    if (host.empty()) return fail("no host");
    for (char c : host)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '_'))
            return fail("bad character in the host");
    uint16_t p = 6379;
    if (!port.empty()) {
        auto parsed = net::parse_port(port);
        if (!parsed) return fail("the port is not a number in 1..65535");
        p = *parsed;
    }
    into.unix_path.clear();
    into.host = std::string(host);
    into.port = p;
    return true;
}

std::vector<std::string> check_redis_options(const RedisOptions& o) {
    std::vector<std::string> out;
    if (o.prefix.size() > max_prefix)
        out.push_back("prefix is " + std::to_string(o.prefix.size()) + " bytes long; at most " +
                      std::to_string(max_prefix) + " are allowed");
    for (unsigned char c : o.prefix)
        if (c <= 0x20 || c >= 0x7f) {
            out.push_back("prefix may hold only printable ASCII without blanks");
            break;
        }
    if (o.timeout.count() < timeout_ms_range.min || o.timeout.count() > timeout_ms_range.max)
        out.push_back("timeout_ms = " + std::to_string(o.timeout.count()) + " is out of range " +
                      std::to_string(timeout_ms_range.min) + ".." + std::to_string(timeout_ms_range.max));
    if (o.unix_path.empty() && o.host.empty()) out.push_back("no Redis address");
    return out;
}

RedisStore::RedisStore(RedisOptions options) : options_(std::move(options)) {
    greylist_script();  // hash the scripts now, not on the first (timed) call
    client_script();
    count_script();
}

RedisStore::~RedisStore() = default;

std::string RedisStore::describe() const {
    if (!options_.unix_path.empty()) return "redis unix:" + options_.unix_path;
    bool v6 = options_.host.find(':') != std::string::npos;
    return "redis " + (v6 ? "[" + options_.host + "]" : options_.host) + ":" + std::to_string(options_.port);
}

std::string RedisStore::redis_key(const Key& k) const {
    return options_.prefix + k.text();
}

std::unique_ptr<RedisStore::Connection> RedisStore::take() {
    const uint64_t gen = generation_.load();
    std::unique_ptr<Connection> c;
    auto idle = idle_.lock();
    while (!idle->empty()) {
        c = std::move(idle->back());
        idle->pop_back();
        if (c->generation == gen) return c;
        c.reset();  // from before a failure: the server may be another one now
    }
    return c;
}

void RedisStore::give_back(std::unique_ptr<Connection> c) {
    if (c->generation != generation_.load()) return;
    auto idle = idle_.lock();
    if (idle->size() < options_.max_idle) idle->push_back(std::move(c));
}

void RedisStore::broken(const std::string& reason) {
    generation_.fetch_add(1);
    auto h = health_.lock();
    h->backoff =
        h->backoff.count() == 0 ? options_.backoff_min : std::min(h->backoff * 2, options_.backoff_max);
    h->retry_at = Clock::now() + h->backoff;
    h->last_error = reason;
    retry_at_ns_.store(std::max<int64_t>(1, h->retry_at.time_since_epoch().count()));
}

void RedisStore::healthy() {
    if (retry_at_ns_.load() == 0) return;
    auto h = health_.lock();
    h->backoff = std::chrono::milliseconds(0);
    h->last_error.clear();
    retry_at_ns_.store(0);
}

std::unique_ptr<RedisStore::Connection> RedisStore::connect(Deadline deadline, Reply& failure) {
    auto left = deadline - Clock::now();
    if (left <= Clock::duration::zero()) {
        failure.status = Status::timeout;
        failure.reason = "no time left to connect to " + describe();
        return nullptr;
    }
    timeval tv = timeval_of(left);
    redisContext* ctx = options_.unix_path.empty()
                            ? redisConnectWithTimeout(options_.host.c_str(), options_.port, tv)
                            : redisConnectUnixWithTimeout(options_.unix_path.c_str(), tv);
    auto c = std::make_unique<Connection>();
    c->ctx = ctx;
    c->generation = generation_.load();
    if (!ctx || ctx->err) {
        int e = errno;
        std::string why = ctx ? ctx->errstr : "out of memory";
        bool timed_out = (ctx && ctx->err == REDIS_ERR_IO && (e == ETIMEDOUT || e == EINPROGRESS)) ||
                         why.find("timed out") != std::string::npos;
        failure.status = timed_out ? Status::timeout : Status::unreachable;
        failure.reason = "cannot connect to " + describe() + ": " + why;
        broken(failure.reason);
        return nullptr;
    }
    if (!options_.password.empty()) {
        SigpipeGuard guard;
        const char* argv[] = {"AUTH", options_.password.c_str()};
        const size_t lens[] = {4, options_.password.size()};
        redisSetTimeout(ctx, timeval_of(deadline - Clock::now()));
        errno = 0;
        auto* r = static_cast<redisReply*>(redisCommandArgv(ctx, 2, argv, lens));
        const int e = errno;
        if (!r) {
            failure.status = timed_out(ctx, e) ? Status::timeout : Status::unreachable;
            failure.reason =
                describe() + (failure.status == Status::timeout
                                  ? " did not answer AUTH in time"
                                  : ": connection lost during AUTH: " + std::string(ctx->errstr));
        } else if (r->type == REDIS_REPLY_ERROR || r->type != REDIS_REPLY_STATUS) {
            failure.status = Status::failed;
            failure.reason = "AUTH at " + describe() + " refused: " +
                             (r->type == REDIS_REPLY_ERROR ? error_text(r->str, r->len)
                                                           : "reply of type " + std::to_string(r->type));
        }
        if (r) freeReplyObject(r);
        if (!r || failure.status != Status::ok) {
            broken(failure.reason);
            return nullptr;
        }
    }
    return c;
}

namespace {

// EVALSHA sha numkeys keys... args...; EVAL with the script's text when the
// server does not know the SHA (NOSCRIPT). Nothing when the deadline ran out
// or the connection failed (c.ctx->err then says how).
redisReply* call(RedisStore::Connection& c, const RedisStore::Script& script,
                 const std::vector<std::string>& keys, const std::vector<std::string>& args,
                 Deadline deadline) {
    const std::string nkeys = std::to_string(keys.size());
    std::vector<const char*> argv = {"EVALSHA", script.sha.data(), nkeys.data()};
    std::vector<size_t> lens = {7, script.sha.size(), nkeys.size()};
    for (const auto* list : {&keys, &args})
        for (const auto& w : *list) {
            argv.push_back(w.data());
            lens.push_back(w.size());
        }
    for (int load = 0; load < 2; ++load) {
        auto left = deadline - Clock::now();
        if (left <= Clock::duration::zero()) return nullptr;
        timeval tv = timeval_of(left);
        long us = tv.tv_sec * 1000000L + tv.tv_usec;
        // Setting the socket timeouts costs two system calls: only when it
        // changes by more than a millisecond.
        if (c.timeout_us < 0 || std::labs(c.timeout_us - us) > 1000) {
            redisSetTimeout(c.ctx, tv);
            c.timeout_us = us;
        }
        errno = 0;
        auto* reply =
            static_cast<redisReply*>(redisCommandArgv(c.ctx, int(argv.size()), argv.data(), lens.data()));
        if (reply && reply->type == REDIS_REPLY_ERROR &&
            util::starts_with(std::string_view(reply->str, reply->len), "NOSCRIPT") && load == 0) {
            freeReplyObject(reply);
            argv[0] = "EVAL";
            lens[0] = 4;
            argv[1] = script.text;
            lens[1] = std::strlen(script.text);
            continue;
        }
        return reply;
    }
    return nullptr;
}

// Why a call that got no reply failed (`e`: its errno), `who` the server.
RedisStore::Reply no_reply(const RedisStore::Connection& c, int e, const std::string& who,
                           Clock::duration waited) {
    RedisStore::Reply r;
    if (c.ctx->err == 0) {  // the deadline ran out between the two sends
        r.status = Status::timeout;
        r.reason = "the deadline ran out";
        return r;
    }
    r.broken = true;
    r.timed_out = timed_out(c.ctx, e);
    if (r.timed_out) {
        r.status = Status::timeout;
        r.reason = who + " did not answer within " + std::to_string(ms_of(waited)) + " ms";
    } else {
        r.status = Status::unreachable;
        r.reason =
            who + ": " +
            (c.ctx->err == REDIS_ERR_EOF ? "connection closed by the server" : std::string(c.ctx->errstr));
    }
    return r;
}

// A reply read: the script's integers, or what the server said instead.
RedisStore::Reply read_reply(const redisReply* reply, const RedisStore::Script& script,
                             const std::string& who) {
    RedisStore::Reply r;
    if (reply->type == REDIS_REPLY_ERROR) {
        std::string text = error_text(reply->str, reply->len);
        if (text.find("WRONGTYPE") != std::string::npos)
            r.status = Status::wrong_type;
        else if (util::starts_with(text, "OOM") || text.find("OOM command not allowed") != std::string::npos)
            r.status = Status::full;
        else
            r.status = Status::failed;
        r.reason = who + " answered: " + text;
        if (text.find("NOAUTH") != std::string::npos || text.find("unauthenticated") != std::string::npos)
            r.reason += " (the server wants a password)";
    } else if (reply->type != REDIS_REPLY_ARRAY || reply->elements != script.results) {
        r.status = Status::failed;
        r.reason = who + " answered with a reply of type " + std::to_string(reply->type) +
                   " where the script returns " + std::to_string(script.results) + " integers";
    } else {
        for (size_t i = 0; i < reply->elements; ++i) {
            const redisReply* el = reply->element[i];
            if (el->type != REDIS_REPLY_INTEGER) {
                r.status = Status::failed;
                r.reason = who + " answered with a non-integer element";
                r.ints.clear();
                break;
            }
            r.ints.push_back(el->integer);
        }
    }
    return r;
}

}  // namespace

RedisStore::Reply RedisStore::run(const Script& script, const std::vector<std::string>& keys,
                                  const std::vector<std::string>& args, Deadline deadline) {
    Reply r;
    const auto start = Clock::now();
    deadline = std::min(deadline, start + options_.timeout);
    if (start >= deadline) {
        r.status = Status::timeout;
        r.reason = "the deadline passed before the call";
        return r;
    }
    const int64_t retry_at = retry_at_ns_.load();
    if (retry_at != 0 && start.time_since_epoch().count() < retry_at) {
        auto h = health_.lock();
        r.status = Status::unreachable;
        r.reason = describe() + " failed, retrying in " + std::to_string(ms_of(h->retry_at - start)) +
                   " ms; last error: " + h->last_error;
        return r;
    }

    SigpipeGuard guard;
    bool fresh = false;
    std::unique_ptr<Connection> c = take();
    if (!c) {
        c = connect(deadline, r);
        if (!c) return r;
        fresh = true;
    }
    for (int attempt = 0;; ++attempt) {
        redisReply* reply = call(*c, script, keys, args, deadline);
        if (reply) {
            // An answer: the connection stays usable whatever it says.
            r = read_reply(reply, script, describe());
            freeReplyObject(reply);
            healthy();
            give_back(std::move(c));
            return r;
        }
        r = no_reply(*c, errno, describe(), deadline - start);
        if (!r.broken) {
            give_back(std::move(c));
            return r;
        }
        c.reset();
        // A pooled connection may have been closed by a Redis restart since
        // its last use: one more try on a new one.
        if (!fresh && attempt == 0 && !r.timed_out && Clock::now() < deadline) {
            Reply failure;
            c = connect(deadline, failure);
            if (!c) return failure;
            fresh = true;
            continue;
        }
        broken(r.reason);
        return r;
    }
}

void RedisStore::note(Outcome& o) {
    if (o.status == Status::ok) {
        if (failing_.load() && failing_.exchange(false)) {
            o.event = Event::outage_ended;
            o.outage_failures = failures_.exchange(0);
        }
    } else if (o.status != Status::wrong_type) {
        failures_.fetch_add(1);
        if (!failing_.load() && !failing_.exchange(true)) o.event = Event::outage_began;
    }
}

GreylistAnswer RedisStore::greylist(const Key& triplet, const Key& client, const GreylistRules& rules,
                                    UnixTime now, Mode mode, Deadline deadline) {
    return greylist_answer(
        run(greylist_script(), {redis_key(triplet), redis_key(client)},
            {std::to_string(now), std::to_string(rules.delay), std::to_string(rules.retry_window),
             std::to_string(rules.pass_lifetime), std::to_string(rules.auto_allow),
             mode == Mode::update ? "1" : "0", std::to_string(ttl_slack)},
            deadline));
}

GreylistAnswer RedisStore::client(const Key& client, const GreylistRules& rules, UnixTime now, Mode mode,
                                  Deadline deadline) {
    return greylist_answer(
        run(client_script(), {redis_key(client)},
            {std::to_string(now), std::to_string(rules.pass_lifetime), std::to_string(rules.auto_allow),
             mode == Mode::update ? "1" : "0", std::to_string(ttl_slack)},
            deadline));
}

// A greylisting script's {state, first_seen, client_passes}.
GreylistAnswer RedisStore::greylist_answer(Reply r) {
    GreylistAnswer ans;
    ans.status = r.status;
    ans.reason = std::move(r.reason);
    if (ans.ok()) {
        static const TripletState states[] = {TripletState::created, TripletState::early,
                                              TripletState::passed_now, TripletState::passed,
                                              TripletState::allowed};
        if (r.ints[0] < 1 || r.ints[0] > 5 || r.ints[2] < 0) {
            ans.status = Status::failed;
            ans.reason = describe() + " answered state " + std::to_string(r.ints[0]) + " (want 1..5)";
        } else {
            ans.state = states[r.ints[0] - 1];
            ans.first_seen = r.ints[1];
            ans.client_passes = uint32_t(std::min<long long>(r.ints[2], UINT32_MAX));
        }
    }
    note(ans);
    return ans;
}

CounterAnswer RedisStore::count(const Key& counter, uint64_t n, uint64_t limit, UnixTime expires,
                                UnixTime now, Mode mode, Deadline deadline) {
    CounterAnswer ans;
    Reply r = run(count_script(), {redis_key(counter)},
                  {std::to_string(n), std::to_string(limit), std::to_string(expires), std::to_string(now),
                   mode == Mode::update ? "1" : "0", std::to_string(ttl_slack)},
                  deadline);
    ans.status = r.status;
    ans.reason = std::move(r.reason);
    if (ans.ok()) {
        if ((r.ints[0] != 0 && r.ints[0] != 1) || r.ints[1] < 0) {
            ans.status = Status::failed;
            ans.reason = describe() + " answered a malformed count";
        } else {
            ans.admitted = r.ints[0] == 1;
            ans.value = uint64_t(r.ints[1]);
        }
    }
    note(ans);
    return ans;
}

}  // namespace regmilter::state
