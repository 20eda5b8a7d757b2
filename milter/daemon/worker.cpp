#include "worker.hpp"

#include <libmilter/mfapi.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "callbacks.hpp"
#include "channel.hpp"
#include "dns/cache.hpp"
#include "health_monitor.hpp"
#include "log.hpp"
#include "policy/policy.hpp"
#include "service.hpp"
#include "stats_server.hpp"
#include "util/pool.hpp"
#include "util/version.hpp"

namespace regmilter::daemon {

namespace {

using Clock = std::chrono::steady_clock;

// Reload on "reload", and look at the bulk table file every few seconds,
// off the channel and signal threads.
class Reloader {
public:
    explicit Reloader(Service& service) : service_(service), thread_([this] { loop(); }) {}
    ~Reloader() {
        {
            std::lock_guard<std::mutex> lock(mu_);
            stop_ = true;
        }
        cv_.notify_one();
        thread_.join();
    }
    void request() {
        {
            std::lock_guard<std::mutex> lock(mu_);
            pending_ = true;
        }
        cv_.notify_one();
    }
    void request_table_check() {
        {
            std::lock_guard<std::mutex> lock(mu_);
            table_check_ = true;
        }
        cv_.notify_one();
    }

private:
    void loop() {
        std::unique_lock<std::mutex> lock(mu_);
        for (;;) {
            cv_.wait(lock, [this] { return pending_ || table_check_ || stop_; });
            if (stop_) return;
            bool full = pending_;
            pending_ = table_check_ = false;
            lock.unlock();
            if (full)
                service_.reload();
            else
                service_.poll_table(Clock::now());
            lock.lock();
        }
    }

    Service& service_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool table_check_ = false;  // guarded by mu_
    bool pending_ = false;      // guarded by mu_
    bool stop_ = false;         // guarded by mu_
    std::thread thread_;
};

std::vector<std::string> split_tabs(const std::string& s) {
    std::vector<std::string> out;
    size_t start = 0;
    for (;;) {
        size_t tab = s.find('\t', start);
        out.push_back(s.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
        if (tab == std::string::npos) return out;
        start = tab + 1;
    }
}

// The lookups of a held MAIL FROM, ahead of its callback: SPF of the HELO
// and MAIL FROM identities and the registry answers of the client, each
// answer left in the shared DNS cache. The callback's budget is the one
// these ran under (Environment::stage_deadline). On threads of its own, not
// the pool's: a burst of sessions on slow DNS fills the pool, and what a
// full pool cannot take would wait for the very MAIL FROM that is held.
class Prefetcher {
public:
    // At most this many at once; more are answered "ready" at once (their
    // callback then looks up by itself, as without a master). Kept threads:
    // a warm transaction's prefetch takes microseconds, less than starting
    // a thread would.
    static constexpr size_t max_threads = 512;

    Prefetcher(Service& service, int channel) : service_(service), channel_(channel) {}

    void start(const std::string& id, const std::string& address, const std::string& helo,
               const std::string& mail) {
        std::shared_ptr<const policy::Runtime> rt = service_.current();
        dns::Deadline deadline = policy::stage_deadline(*rt->config);
        {
            std::lock_guard<std::mutex> lock(mu_);
            if (deadlines_.size() > 100000) deadlines_.clear();  // sessions that never came: bounded
            deadlines_[id] = deadline;
        }
        // A warm session: everything is in the cache already; "ready" from
        // this thread, with no handoff to another (half the hold's cost).
        if (answered_by_cache(*rt, address, helo, mail)) {
            ready(id);
            return;
        }
        bool taken = threads_.run([this, rt, id, address, helo, mail, deadline] {
            run(*rt, address, helo, mail, deadline);
            ready(id);
        });
        if (!taken) ready(id);
    }

    // Environment::stage_deadline: the deadline of session `id`'s prefetch, once.
    std::optional<dns::Deadline> deadline_of(policy::Stage stage, const std::string& id) {
        if (stage != policy::Stage::mail) return std::nullopt;
        std::lock_guard<std::mutex> lock(mu_);
        auto it = deadlines_.find(id);
        if (it == deadlines_.end()) return std::nullopt;
        dns::Deadline d = it->second;
        deadlines_.erase(it);
        return d;
    }

private:
    // What the session's MAIL FROM callback will look up with; false when it
    // looks up nothing (a unix or unknown client, a trusted network).
    static bool prepare(const policy::Runtime& rt, const std::string& address, const std::string& helo,
                        const std::string& mail, policy::Context& ctx, policy::Facts& facts) {
        ctx.ip = net::Address::parse(address);
        if (!ctx.ip) return false;
        ctx.helo = helo;
        ctx.mail_from = policy::envelope_address(mail);
        facts.authserv_id = rt.authserv_id;
        facts.connect.ip = ctx.ip->unmapped();
        facts.connect.network_trusted = rt.config->trust.networks.contains(*facts.connect.ip);
        return !facts.connect.network_trusted;
    }

    // True when the registry's answers (A, TXT, FCrDNS) and both SPF
    // evaluations come from the cache alone (a CacheOnlyResolver: it never waits), or nothing is
    // looked up at all. Stale by the time the callback runs only if an
    // entry expires in between: then the callback asks that one itself.
    static bool answered_by_cache(const policy::Runtime& rt, const std::string& address,
                                  const std::string& helo, const std::string& mail) noexcept {
        try {
            policy::Context ctx;
            policy::Facts facts;
            if (!prepare(rt, address, helo, mail, ctx, facts)) return true;
            if (!rt.cache) return false;
            dns::CacheOnlyResolver cached(*rt.cache);
            policy::gather_connect(ctx, *rt.config, cached, dns::Deadline::max());  // A, TXT, FCrDNS
            if (cached.missed()) return false;
            policy::gather_mail(ctx, facts, *rt.config, cached, dns::Deadline::max());
            return !cached.missed();
        } catch (...) {
            return false;  // the pool's prefetch finds out
        }
    }

    void run(const policy::Runtime& rt, const std::string& address, const std::string& helo,
             const std::string& mail, dns::Deadline deadline) noexcept {
        try {
            policy::Context ctx;
            policy::Facts facts;
            if (!prepare(rt, address, helo, mail, ctx, facts)) return;  // no DNS at all
            const config::Config& cfg = *rt.config;
            policy::ResolverFactory make = [&rt] { return rt.make_resolver(); };
            // The registry answers, beside SPF. The session asked them at
            // connect on the pool; a question still in flight is joined, not
            // asked twice (the cache's single flight), and one that the session
            // could not start because the pool was full (it would run in the
            // callback of this very MAIL FROM, which is held for this prefetch)
            // is asked here. When they are in, so are their answers.
            // On a thread of this pool; when it has none free, after SPF here.
            // It uses this frame: waited for before the frame ends, whatever
            // SPF does.
            std::future<void> registry;
            if (!rt.cache || !policy::registry_cached(*rt.cache, *facts.connect.ip, cfg))
                registry =
                    threads_.submit([&] { policy::gather_connect(ctx, cfg, make, deadline, rt.pool); });
            try {
                // HELO's evaluation beside MAIL FROM's on the process's pool,
                // as a session does (the longer of the two, not their sum).
                if (std::unique_ptr<dns::Resolver> resolver = rt.make_resolver())
                    policy::gather_mail(ctx, facts, cfg, *resolver, deadline, {}, rt.pool, make);
            } catch (...) {
            }
            if (registry.valid()) registry.wait();
        } catch (...) {
            // The callback looks up by itself; nothing is lost but time.
        }
    }

    void ready(const std::string& id) { send_message(channel_, "ready\t" + id); }

    Service& service_;
    int channel_;
    std::mutex mu_;
    std::map<std::string, dns::Deadline> deadlines_;  // guarded by mu_
    util::Pool threads_{
        util::Pool::Options{max_threads, std::chrono::seconds(30)}};  // last: its jobs use the rest
};

pthread_t g_main_thread;
std::atomic<int> g_milter_result{MI_SUCCESS};

void* milter_main(void*) {
    g_milter_result = smfi_main();
    pthread_kill(g_main_thread, SIGUSR2);
    return nullptr;
}

// Reads the master's prefetch requests until the hold channel ends (the
// channel's end ends the process).
void read_holds(int fd, Prefetcher& prefetcher) {
    std::string m;
    while (receive_message(fd, m, true) == Received::message) {
        std::vector<std::string> f = split_tabs(m);
        if (f[0] == "prefetch" && f.size() == 5)
            prefetcher.start(f[1], f[2], f[3], f[4]);
        else
            log_line(LOG_WARNING, "worker: unknown message on the hold channel ignored");
    }
}

// Reads the master's messages until the channel ends, then saves the state
// snapshot and ends the process.
void read_channel(int fd, Reloader& reloader, StateKeeper& state) {
    std::string m;
    while (receive_message(fd, m, true) == Received::message) {
        if (m == "reload") {
            reloader.request();
        } else {
            log_line(LOG_WARNING, "worker: unknown message from the master ignored");
        }
    }
    // The master is gone or stopping: sessions it relayed are gone with it.
    state.stop();  // the last snapshot
    std::fflush(nullptr);
    _exit(0);
}

}  // namespace

namespace {

// A descriptor number up to the next ':' from `pos` (moved past the ':').
bool parse_fd(const std::string& value, size_t& pos, int& fd) {
    size_t colon = value.find(':', pos);
    if (colon == std::string::npos || colon == pos) return false;
    fd = 0;
    for (size_t i = pos; i < colon; ++i) {
        if (value[i] < '0' || value[i] > '9' || fd > 100000) return false;
        fd = fd * 10 + (value[i] - '0');
    }
    pos = colon + 1;
    return true;
}

}  // namespace

bool parse_worker_env(const std::string& value, WorkerPlace& out) {
    size_t pos = 0;
    if (!parse_fd(value, pos, out.channel) || !parse_fd(value, pos, out.hold)) return false;
    out.dir = value.substr(pos);
    return !out.dir.empty() && out.dir.front() == '/';
}

std::string worker_socket(const std::string& dir) {
    return dir + "/worker.sock";
}

int run_worker(const std::string& config_path, bool foreground, const WorkerPlace& place) {
    // Every signal blocked before any thread exists: each thread inherits the mask.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    log_open(foreground);
    dns::set_local_error_log([](const std::string& line) { log_line(LOG_ERR, line); });
    Service service(config_path);
    auto problems = service.start();
    if (!problems.empty()) {
        for (const auto& p : problems) log_line(LOG_ERR, "worker: " + p.str());
        log_line(LOG_ERR, "worker: " + std::to_string(problems.size()) + " problem(s) in " + config_path +
                              ", not starting");
        return 1;
    }
    log_facility(service.current()->config->milter.syslog_facility);
    service.state().start(*service.current()->config);  // reads the snapshot
    std::string conn = "unix:" + worker_socket(place.dir);
    if (smfi_register(filter_description(service)) != MI_SUCCESS) {
        log_line(LOG_ERR, "worker: smfi_register failed");
        return 1;
    }
    if (smfi_setconn(const_cast<char*>(conn.c_str())) != MI_SUCCESS ||
        smfi_setbacklog(SOMAXCONN) != MI_SUCCESS) {
        log_line(LOG_ERR, "worker: smfi_setconn " + conn + " failed");
        return 1;
    }
    umask(077);
    // true: a socket left by a worker that died is replaced.
    if (smfi_opensocket(true) != MI_SUCCESS) {
        log_line(LOG_ERR, "worker: cannot open " + conn);
        return 1;
    }
    stats::Metrics metrics;
    std::string stats_error;
    std::unique_ptr<StatsServer> stats = open_stats(service, stats_error);
    if (!stats_error.empty()) log_line(LOG_ERR, "worker: " + stats_error + "; no statistics");
    if (stats) serve_stats(*stats, service, metrics);

    Prefetcher prefetcher(service, place.hold);
    set_rcpt_hints(place.hold);
    service.set_stage_deadline(
        [&prefetcher](policy::Stage st, const std::string& id) { return prefetcher.deadline_of(st, id); });

    g_main_thread = pthread_self();
    pthread_t milter_thread;
    if (pthread_create(&milter_thread, nullptr, milter_main, nullptr) != 0) {
        log_line(LOG_ERR, "worker: cannot start the milter thread");
        return 1;
    }
    Reloader reloader(service);
    service.state().start_saver();
    HealthMonitor health(service);  // the registry zones' RFC 5782 §5 checks; ends with the process
    std::thread channel([&] { read_channel(place.channel, reloader, service.state()); });
    channel.detach();
    std::thread holds([&] { read_holds(place.hold, prefetcher); });
    holds.detach();
    log_line(LOG_INFO, "worker: serving on " + conn);
    if (!send_message(place.channel, "up")) {
        std::fflush(nullptr);
        _exit(0);
    }

    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGHUP, SIGTERM, SIGINT, SIGUSR2}) sigaddset(&set, s);
    constexpr int table_check_ticks = 10;  // 10 x 200 ms: the bulk table file is looked at every 2 s
    int ticks = 0;
    for (;;) {
        timespec tick{0, 200 * 1000 * 1000};
        siginfo_t info{};
        int sig = sigtimedwait(&set, &info, &tick);
        if (sig < 0) {
            if (++ticks >= table_check_ticks) {
                ticks = 0;
                reloader.request_table_check();
            }
            continue;
        }
        if (sig == SIGUSR2) {
            log_line(LOG_ERR, "worker: the milter stopped by itself (socket trouble?); exiting");
            service.state().stop();
            break;
        }
        log_line(LOG_WARNING, std::string("worker: ") + strsignal(sig) + " from pid " +
                                  std::to_string(info.si_pid) + " ignored: signals go to the master (pid " +
                                  std::to_string(getppid()) + ")");
    }
    std::fflush(nullptr);
    _exit(g_milter_result == MI_SUCCESS ? 0 : 1);
}

}  // namespace regmilter::daemon
