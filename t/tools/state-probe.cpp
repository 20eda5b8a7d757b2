// state-probe: one greylisting or rate-limit step through the state library,
// from its own process, for integration tests (two probes = two MX hosts
// sharing one Redis) and for looking at a store by hand.
//
//   state-probe STORE [--prefix P] [--password PW] [--timeout-ms MS] COMMAND [OPTIONS]
//   STORE:   --redis HOST:PORT | --redis unix:PATH
//            --memory [--snapshot FILE]   (loaded before, saved after the command)
//   greylist --ip A --from S --rcpt R [--delay S] [--retry-window S] [--pass-lifetime S]
//            [--auto-allow N] [--now UNIXTIME] [--peek]
//            prints: greylist=new wait=2 network=198.51.100.0/24 passes=0
//   rate     --ip A --kind messages|recipients --limit N [--window S] [--registered] [--n N]
//            [--now UNIXTIME] [--peek]
//            prints: ratelimit=pass count=1 limit=3 network=... [text="rate limit: ..."]
//   key      --ip A --from S --rcpt R     prints the Redis keys: "triplet KEY" and "client KEY"
//   conformance [--salt S]   the shared store scenarios (t/support/state_scenarios), TAP lines
//   watch    --ip A [--interval-ms MS] [--max-seconds S] [--after-recovery N]
//            greylist steps on new triplets until N calls succeeded after an
//            outage ended (or max-seconds); prints each outage event and a summary:
//            calls=N ok=N errors=N began=N ended=N
// A failed step prints its outcome with status= and reason= (exit 0: the
// outcome is the answer). Every outage event is printed on its own line:
//   event=outage-began status=unreachable reason="..."   event=outage-ended failures=N
// Exit: 0 done, 1 conformance failures / watch without recovery / snapshot
// refused, 2 bad usage.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "../support/state_scenarios.hpp"
#include "greylist/greylist.hpp"
#include "ratelimit/ratelimit.hpp"
#include "state/memory_store.hpp"
#include "state/redis_store.hpp"

using namespace regmilter;

namespace {

int usage(const std::string& why) {
    std::fprintf(
        stderr,
        "state-probe: %s\n"
        "usage: state-probe (--redis ADDR | --memory [--snapshot FILE]) [--prefix P] [--password PW]\n"
        "                   [--timeout-ms MS] greylist|rate|key|conformance|watch [OPTIONS]\n",
        why.c_str());
    return 2;
}

std::string quoted(const std::string& s) {
    std::string out = "\"";
    for (char c : s) out += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
    return out + "\"";
}

void print_event(const state::Outcome& o) {
    if (o.event == state::Event::outage_began)
        std::printf("event=outage-began status=%s reason=%s\n", state::to_string(o.status),
                    quoted(o.reason).c_str());
    else if (o.event == state::Event::outage_ended)
        std::printf("event=outage-ended failures=%llu\n", static_cast<unsigned long long>(o.outage_failures));
}

std::string show(const greylist::Result& r) {
    std::string s = std::string("greylist=") + greylist::to_string(r.outcome);
    if (r.delays()) s += " wait=" + std::to_string(r.wait);
    s += " network=" + r.network.str() + " passes=" + std::to_string(r.client_passes);
    if (!r.store.ok())
        s += std::string(" status=") + state::to_string(r.store.status) + " reason=" + quoted(r.store.reason);
    return s;
}

struct Args {
    std::string redis, snapshot, prefix = "regmilter:", password, command, ip, from, rcpt, kind = "messages",
                                 salt;
    bool memory = false, peek = false, registered = false;
    long timeout_ms = 200, interval_ms = 20, max_seconds = 30, after_recovery = 5;
    long long now = -1;
    greylist::Settings grey;
    uint64_t limit = 0, n = 1;
    int64_t window = 3600;
};

}  // namespace

int main(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        std::string opt = argv[i];
        std::string val;
        size_t eq = opt.find('=');
        bool inline_value = opt.rfind("--", 0) == 0 && eq != std::string::npos;
        if (inline_value) {
            val = opt.substr(eq + 1);
            opt = opt.substr(0, eq);
        }
        auto value = [&]() -> std::string {
            if (inline_value) return val;
            if (i + 1 >= argc) throw std::runtime_error(opt + " needs a value");
            return argv[++i];
        };
        auto number = [&]() -> long long {
            std::string v = value();
            char* end = nullptr;
            long long n = std::strtoll(v.c_str(), &end, 10);
            if (v.empty() || *end) throw std::runtime_error(opt + ": not a number: " + v);
            return n;
        };
        try {
            if (opt == "--redis")
                a.redis = value();
            else if (opt == "--memory")
                a.memory = true;
            else if (opt == "--snapshot")
                a.snapshot = value();
            else if (opt == "--prefix")
                a.prefix = value();
            else if (opt == "--password")
                a.password = value();
            else if (opt == "--timeout-ms")
                a.timeout_ms = long(number());
            else if (opt == "--ip")
                a.ip = value();
            else if (opt == "--from")
                a.from = value();
            else if (opt == "--rcpt")
                a.rcpt = value();
            else if (opt == "--delay")
                a.grey.delay = number();
            else if (opt == "--retry-window")
                a.grey.retry_window = number();
            else if (opt == "--pass-lifetime")
                a.grey.pass_lifetime = number();
            else if (opt == "--auto-allow")
                a.grey.auto_allow = uint32_t(number());
            else if (opt == "--now")
                a.now = number();
            else if (opt == "--peek")
                a.peek = true;
            else if (opt == "--kind")
                a.kind = value();
            else if (opt == "--limit")
                a.limit = uint64_t(number());
            else if (opt == "--window")
                a.window = number();
            else if (opt == "--registered")
                a.registered = true;
            else if (opt == "--n")
                a.n = uint64_t(number());
            else if (opt == "--salt")
                a.salt = value();
            else if (opt == "--interval-ms")
                a.interval_ms = long(number());
            else if (opt == "--max-seconds")
                a.max_seconds = long(number());
            else if (opt == "--after-recovery")
                a.after_recovery = long(number());
            else if (opt.rfind("--", 0) == 0)
                return usage("unknown option " + opt);
            else if (a.command.empty())
                a.command = opt;
            else
                return usage("unexpected argument " + opt);
        } catch (const std::exception& e) {
            return usage(e.what());
        }
    }
    if (a.command.empty()) return usage("no command");
    if (a.memory == !a.redis.empty()) return usage("give one of --redis ADDR or --memory");

    std::unique_ptr<state::Store> store;
    state::MemoryStore* memory = nullptr;
    state::RedisOptions ro;
    if (a.memory) {
        auto m = std::make_unique<state::MemoryStore>();
        memory = m.get();
        store = std::move(m);
        if (!a.snapshot.empty()) {
            auto r = memory->load(a.snapshot, state::wall_now());
            if (r.status == state::SnapshotResult::Status::malformed ||
                r.status == state::SnapshotResult::Status::io_error) {
                std::fprintf(stderr, "state-probe: snapshot refused, starting empty: %s\n", r.str().c_str());
                std::printf("snapshot=refused\n");
            }
        }
    } else {
        std::string error;
        if (!state::parse_redis_address(a.redis, ro, error)) return usage(error);
        ro.prefix = a.prefix;
        ro.password = a.password;
        ro.timeout = std::chrono::milliseconds(a.timeout_ms);
        for (const auto& p : state::check_redis_options(ro)) return usage(p);
        store = std::make_unique<state::RedisStore>(ro);
    }
    auto now = [&]() { return a.now >= 0 ? state::UnixTime(a.now) : state::wall_now(); };
    auto deadline = [&]() { return state::deadline_in(std::chrono::milliseconds(a.timeout_ms)); };
    auto client = [&]() -> net::Address {
        auto ip = net::Address::parse(a.ip);
        if (!ip) throw std::runtime_error("--ip: not an IP address: " + a.ip);
        return *ip;
    };
    int rc = 0;
    try {
        if (a.command == "greylist") {
            greylist::Request r{client(), a.from, a.rcpt};
            auto res = a.peek ? greylist::peek(*store, a.grey, r, now(), deadline())
                              : greylist::check(*store, a.grey, r, now(), deadline());
            print_event(res.store);
            std::printf("%s\n", show(res).c_str());
        } else if (a.command == "rate") {
            ratelimit::Settings s;
            s.window = a.window;
            s.network_v4 = a.grey.network_v4;
            s.network_v6 = a.grey.network_v6;
            (a.registered ? s.registered_messages : s.unregistered_messages) = a.limit;
            (a.registered ? s.registered_recipients : s.unregistered_recipients) = a.limit;
            if (a.kind != "messages" && a.kind != "recipients") return usage("--kind messages|recipients");
            auto kind = a.kind == "messages" ? ratelimit::Kind::messages : ratelimit::Kind::recipients;
            auto res =
                a.peek ? ratelimit::peek(*store, s, client(), a.registered, kind, now(), deadline(), a.n)
                       : ratelimit::count(*store, s, client(), a.registered, kind, now(), deadline(), a.n);
            print_event(res.store);
            std::string line = std::string("ratelimit=") + ratelimit::to_string(res.outcome) +
                               " count=" + std::to_string(res.count) + " limit=" + std::to_string(res.limit) +
                               " network=" + res.network.str();
            if (res.outcome == ratelimit::Outcome::limited)
                line += " text=" + quoted(ratelimit::reply_text(res));
            if (!res.store.ok())
                line += std::string(" status=") + state::to_string(res.store.status) +
                        " reason=" + quoted(res.store.reason);
            std::printf("%s\n", line.c_str());
        } else if (a.command == "key") {
            if (a.memory) return usage("key needs --redis (it prints Redis keys)");
            state::RedisStore& redis = static_cast<state::RedisStore&>(*store);
            greylist::Request r{client(), a.from, a.rcpt};
            std::printf("triplet %s\nclient %s\n", redis.redis_key(greylist::triplet_key(a.grey, r)).c_str(),
                        redis.redis_key(greylist::client_key(a.grey, r.client)).c_str());
        } else if (a.command == "conformance") {
            const std::string salt =
                a.salt.empty() ? std::to_string(::getpid()) + "-" + std::to_string(state::wall_now())
                               : a.salt;
            for (const auto& sc : testing::store_scenarios()) {
                auto failures = testing::run_store_scenario(*store, sc, salt, state::wall_now());
                if (failures.empty()) {
                    std::printf("ok - %s: %s\n", store->describe().c_str(), sc.name);
                } else {
                    rc = 1;
                    std::printf("not ok - %s: %s: %s\n", store->describe().c_str(), sc.name,
                                failures[0].c_str());
                }
            }
        } else if (a.command == "watch") {
            const net::Address c = client();
            const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(a.max_seconds);
            long calls = 0, ok = 0, errors = 0, began = 0, ended = 0, ok_after = 0;
            const std::string tag = std::to_string(::getpid());
            while (std::chrono::steady_clock::now() < end) {
                const std::string rcpt = "rcpt-" + tag + "-" + std::to_string(calls);  // outlives r's view
                greylist::Request r{c, "watch@example.com", rcpt};
                auto res = greylist::check(*store, a.grey, r, now(), deadline());
                ++calls;
                print_event(res.store);
                std::fflush(stdout);
                began += res.store.event == state::Event::outage_began;
                ended += res.store.event == state::Event::outage_ended;
                if (res.store.ok()) {
                    ++ok;
                    if (ended > 0 && ++ok_after >= a.after_recovery) break;
                } else {
                    ++errors;
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(a.interval_ms));
            }
            std::printf("calls=%ld ok=%ld errors=%ld began=%ld ended=%ld\n", calls, ok, errors, began, ended);
            if (ended == 0 || ok_after < a.after_recovery) rc = 1;
        } else {
            return usage("unknown command " + a.command);
        }
    } catch (const std::exception& e) {
        return usage(e.what());
    }
    if (memory && !a.snapshot.empty()) {
        auto w = memory->save(a.snapshot, state::wall_now());
        if (w.status != state::SnapshotResult::Status::ok) {
            std::fprintf(stderr, "state-probe: %s\n", w.str().c_str());
            rc = 1;
        }
    }
    return rc;
}
