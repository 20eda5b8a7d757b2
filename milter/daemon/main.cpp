// regmilter: the milter daemon. Reads the configuration, opens the socket,
// leaves root, then serves the MTA through libmilter until SIGTERM.
// Signals: the main thread is the only one that takes SIGHUP/SIGTERM/SIGINT
// (see run_signals); libmilter runs in its own thread.
//
//   regmilter -c FILE [-f] [-p SOCKET] [-u USER] [-P PIDFILE]   run
//   regmilter -c FILE -t                                          check the configuration
// Exit status: 0 after SIGTERM/SIGINT or a clean -t; 1 on a configuration or
// start-up error (every problem printed); 2 on a bad command line.
#include <libmilter/mfapi.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "callbacks.hpp"
#include "log.hpp"
#include "process.hpp"
#include "net/endpoint.hpp"
#include "health_monitor.hpp"
#include "service.hpp"
#include "stats_server.hpp"
#include "util/cli.hpp"
#include "util/version.hpp"

namespace {

using namespace regmilter;
using namespace regmilter::daemon;


const char usage_text[] =
    "usage: regmilter [-c FILE] [-f] [-p SOCKET] [-u USER] [-P PIDFILE]\n"
    "       regmilter [-c FILE] -t\n"
    "       regmilter --help | --version\n"
    "  -c, --config FILE      configuration file (default " SYSCONFDIR
    "/regmilter/regmilter.ini)\n"
    "  -f, --foreground       stay in the foreground and log to stderr as well as syslog\n"
    "  -p, --socket SOCKET    listen here instead of [milter] socket (unix:/PATH, inet:PORT@HOST,\n"
    "                         inet6:PORT@HOST)\n"
    "  -u, --user USER        run as USER instead of [milter] user (when started as root)\n"
    "  -P, --pid-file PIDFILE write the pid here instead of [milter] pid_file (\"\" for none)\n"
    "  -t, --check            check the configuration and the bulk table, print every problem,\n"
    "                         exit 0 or 1\n"
    "  -V, --version          print the version\n";

struct Args {
    std::string config = SYSCONFDIR "/regmilter/regmilter.ini";
    bool foreground = false;
    bool check = false;
    std::optional<std::string> socket;
    std::optional<std::string> user;
    std::optional<std::string> pid_file;
};

Args parse_args(int argc, char** argv) {
    enum { o_config = 256, o_foreground, o_socket, o_user, o_pid_file, o_check };
    const util::Cli cli("regmilter", usage_text);
    Args a;
    auto rest = cli.parse(argc, argv,
                          {{"config", 'c', true, o_config},
                           {"foreground", 'f', false, o_foreground},
                           {"socket", 'p', true, o_socket},
                           {"user", 'u', true, o_user},
                           {"pid-file", 'P', true, o_pid_file},
                           {"check", 't', false, o_check}},
                          [&](int id, const char* v) {
                              switch (id) {
                                  case o_config:
                                      a.config = v;
                                      break;
                                  case o_foreground:
                                      a.foreground = true;
                                      break;
                                  case o_socket:
                                      a.socket = v;
                                      break;
                                  case o_user:
                                      a.user = v;
                                      break;
                                  case o_pid_file:
                                      a.pid_file = v;
                                      break;
                                  case o_check:
                                      a.check = true;
                                      break;
                              }
                          });
    if (!rest.empty()) cli.fail("unexpected argument \"" + rest.front() + "\"");
    return a;
}

// A start-up line that the administrator must see: in the log, and on
// stderr too when the log does not copy it there (not -f), except into the
// systemd journal, which already has syslog's copy.
void report(int priority, const std::string& what) {
    log_line(priority, what);
    if (!log_to_stderr() && !stderr_is_journal()) std::fprintf(stderr, "regmilter: %s\n", what.c_str());
}

[[noreturn]] void fail(const std::string& what) {
    report(LOG_ERR, "fatal: " + what);
    std::exit(1);
}

// Reload on SIGHUP, and look at the bulk table file every few seconds, off
// the signal thread so that it goes straight back to sigwait (a signal
// arriving while no one waits could reach libmilter's thread, which stops
// the milter on SIGHUP).
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
                service_.poll_table(std::chrono::steady_clock::now());
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

sigset_t handled_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR2);  // from the milter thread: smfi_main returned by itself
    return set;
}

std::atomic<int> g_milter_result{MI_SUCCESS};
std::atomic<bool> g_milter_done{false};

// Turns new connections away, waits for the open sessions (at most
// [milter] drain_timeout), then stops libmilter. Runs on its own thread so that the main
// thread keeps taking the signals meanwhile.
void drain(Service& service, const std::string& unix_path, const FileId& socket_file) {
    service.begin_drain();
    if (!unix_path.empty()) remove_if_same(unix_path, socket_file);
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(service.current()->config->milter.drain_timeout);
    while (service.open_sessions() > 0 && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (service.open_sessions() > 0)
        log_line(LOG_WARNING,
                 "exiting with " + std::to_string(service.open_sessions()) + " session(s) still open");
    smfi_stop();
}

// Waits for signals on the main thread. Linux hands a process-directed signal
// to the thread-group leader first when it is waiting for it, so libmilter's
// own sigwait thread (which would end the process on SIGHUP) never sees them
// while this loop waits; the loop only hands work to other threads and goes
// straight back to waiting.
//
// SIGTERM drains: libmilter's smfi_stop() also stops serving the sessions
// already open (its worker pool ends), so first new connections are turned
// away (the unix socket file is removed; connects that still arrive are
// answered 451 4.3.2), the open sessions finish, and only then smfi_stop().
// smfi_main then returns within a few seconds (SIGUSR2 from its thread);
// after stop_limit more the process leaves anyway.
void run_signals(Service& service, const std::string& unix_path, const FileId& socket_file) {
    // drain_timeout (default 20) + 6 s stays below the unit's TimeoutStopSec=30;
    // libmilter's own threads notice smfi_stop within about 5 s.
    constexpr auto stop_limit = std::chrono::seconds(6);
    Reloader reloader(service);
    sigset_t set = handled_signals();
    std::thread drainer;
    std::atomic<bool> drained{false};
    std::chrono::steady_clock::time_point give_up{};
    constexpr int table_check_ticks = 10;  // 10 x 200 ms: the bulk table file is looked at every 2 s
    int ticks = 0;
    for (;;) {
        timespec tick{0, 200 * 1000 * 1000};
        int sig = sigtimedwait(&set, nullptr, &tick);
        if (sig < 0) {
            if (++ticks >= table_check_ticks && !drainer.joinable()) {
                ticks = 0;
                reloader.request_table_check();
            }
            if (drained && std::chrono::steady_clock::now() > give_up) {
                log_line(LOG_WARNING, "libmilter did not stop in time; exiting");
                break;
            }
            continue;
        }
        if (sig == SIGUSR2) {
            if (!drainer.joinable())
                log_line(LOG_ERR, "the milter stopped by itself (socket trouble?); exiting");
            break;
        }
        if (drainer.joinable()) {
            log_line(LOG_INFO, "shutting down: signal " + std::to_string(sig) + " ignored");
            continue;
        }
        if (sig == SIGHUP) {
            reloader.request();
            continue;
        }
        log_line(LOG_INFO, std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") +
                               ": no new connections, waiting for " + std::to_string(service.open_sessions()) +
                               " open session(s)");
        drainer = std::thread([&service, &drained, &give_up, unix_path, socket_file, stop_limit] {
            drain(service, unix_path, socket_file);
            give_up = std::chrono::steady_clock::now() + stop_limit;
            drained = true;
        });
    }
    if (drainer.joinable()) drainer.join();
}

pthread_t g_main_thread;

void* milter_main(void*) {
    g_milter_result = smfi_main();
    g_milter_done = true;
    pthread_kill(g_main_thread, SIGUSR2);
    return nullptr;
}

// What -t says about where the milter would listen and as whom: errors
// (the start would fail) and warnings (it starts, but something will bite).
struct PlaceCheck {
    std::vector<std::string> errors, warnings;
};

PlaceCheck check_place(const Args& args, const config::Milter& mc) {
    PlaceCheck c;
    std::string error;
    std::optional<net::SocketSpec> sock = net::parse_socket(args.socket.value_or(mc.socket), error);
    if (!sock) {
        c.errors.push_back("[milter] socket: " + error);
        return c;
    }
    std::optional<User> user;
    if (std::string name = args.user.value_or(mc.user); !name.empty()) {
        user = find_user(name, error);
        if (!error.empty()) {
            c.errors.push_back("[milter] user: " + error);
            user.reset();
        }
    }
    // The user the socket is made as: [milter] user when started as root.
    const User* as = geteuid() == 0 && user ? &*user : nullptr;
    if (sock->kind == net::SocketSpec::Kind::unix_path) {
        std::string dir = sock->path.substr(0, std::max<size_t>(sock->path.rfind('/'), 1));
        if (std::string e = check_socket_dir(dir, as); !e.empty()) c.errors.push_back("[milter] socket: " + e);
        for (const auto& d : writable_by_others(sock->path))
            c.warnings.push_back("[milter] socket: " + d +
                                 " is group- or world-writable: Sendmail refuses a socket below it");
    } else if (sock->reachable_from_network()) {
        c.warnings.push_back("[milter] socket: " + sock->conn() +
                             " is reachable from the network: anyone who can connect can send mail past the "
                             "policy; bind it to a loopback address or use a unix socket");
    }
    return c;
}

// regmilter -t: every problem of the configuration, its table, the socket and the user.
int check_configuration(const Args& args) {
    Service service(args.config);
    auto problems = service.start();
    for (const auto& p : problems) std::cout << p.str() << "\n";
    if (!problems.empty()) return 1;
    PlaceCheck place = check_place(args, service.current()->config->milter);
    if (const auto& listen = service.current()->config->stats.listen)
        if (std::string w = stats::listen_warning(*listen); !w.empty()) place.warnings.push_back(w);
    for (const auto& w : place.warnings) std::cout << args.config << ": warning: " << w << "\n";
    for (const auto& e : place.errors) std::cout << args.config << ": " << e << "\n";
    if (!place.errors.empty()) return 1;
    std::cout << args.config << ": OK\n";
    return 0;
}

// What start-up settled: where the milter listens and as whom it runs.
struct Placement {
    net::SocketSpec socket;
    FileId socket_file;  // the unix socket this process made: removed at exit only if still there
    std::optional<User> user;
    std::string pid_file;
    std::unique_ptr<StatsServer> stats;  // [stats] listen, bound; null when off
};

// Makes sure the socket can be taken without taking it from anyone: a unix
// socket that answers is another regmilter (or something else) at work —
// exit, and leave it alone; a stale one is removed; an inet address already
// served is refused the same way. Every failure says why.
void claim_socket(const net::SocketSpec& sock, const User* owner) {
    if (sock.kind != net::SocketSpec::Kind::unix_path) {
        int family = sock.kind == net::SocketSpec::Kind::inet6 ? AF_INET6 : AF_INET;
        if (inet_answers(sock.host, sock.port, family)) fail("already running: something answers on " + sock.conn());
        if (std::string e = try_bind(sock.host, sock.port, family); !e.empty()) fail(e);
        return;
    }
    SocketProbe probe = probe_unix_socket(sock.path);
    switch (probe.state) {
        case SocketProbe::running:
            fail(probe.pid ? "already running (pid " + std::to_string(probe.pid) + ") on " + sock.path
                           : "already running: something answers on " + sock.path);
        case SocketProbe::unusable:
            fail(probe.error);
        case SocketProbe::stale:
            if (unlink(sock.path.c_str()) != 0) fail("stale socket " + sock.path + ": " + std::strerror(errno));
            log_line(LOG_INFO, "removed the stale socket " + sock.path + " (nothing listened on it)");
            break;
        case SocketProbe::absent:
            break;
    }
    std::string dir = sock.path.substr(0, std::max<size_t>(sock.path.rfind('/'), 1));
    if (std::string e = check_socket_dir(dir, geteuid() == 0 ? nullptr : owner); !e.empty()) fail(e);
}

// Opens the socket (as root when started so), then detaches, writes the pid
// file and leaves root. Any failure ends the process with its reason.
Placement take_place(const Args& args, Service& service) {
    const config::Milter& mc = service.current()->config->milter;
    Placement p;
    std::string error;
    std::optional<net::SocketSpec> sock = net::parse_socket(args.socket.value_or(mc.socket), error);
    if (!sock) fail(error);
    p.socket = *sock;
    p.pid_file = args.pid_file.value_or(mc.pid_file);
    std::string user_name = args.user.value_or(mc.user);
    if (geteuid() == 0) {
        if (user_name.empty()) {
            log_line(LOG_WARNING, "running as root: set [milter] user");
        } else {
            p.user = find_user(user_name, error);
            if (!error.empty()) fail(error);
        }
    }
    const User* owner = p.user ? &*p.user : nullptr;
    claim_socket(p.socket, owner);
    std::string conn = p.socket.conn();
    if (smfi_register(filter_description(service)) != MI_SUCCESS) fail("smfi_register failed");
    if (smfi_setconn(const_cast<char*>(conn.c_str())) != MI_SUCCESS) fail("smfi_setconn " + conn + " failed");
    // The socket file appears with the umask's mode; tighten before, set exactly after.
    mode_t old_umask = umask(static_cast<mode_t>(~mc.socket_mode & 0777));
    // false: libmilter must not remove what is at the path (claim_socket did
    // when it was stale); it fails instead, and the reason was checked before.
    if (smfi_opensocket(false) != MI_SUCCESS) fail("cannot open socket " + conn + " (see the lines before)");
    umask(old_umask);
    if (!p.socket.path.empty()) {
        if (std::string e = set_socket_access(p.socket.path, mc.socket_mode, owner); !e.empty()) fail(e);
        p.socket_file = file_id(p.socket.path);
    }
    if (p.socket.reachable_from_network())
        log_line(LOG_WARNING, "socket " + conn + " is reachable from the network: bind it to a loopback address "
                              "or use a unix socket");
    std::string stats_error;
    if (p.stats = open_stats(service, stats_error); !stats_error.empty()) {
        if (!p.socket.path.empty()) remove_if_same(p.socket.path, p.socket_file);  // just made by us: leave none behind
        fail(stats_error);
    }
    if (!args.foreground)
        if (std::string e = detach(); !e.empty()) fail(e);
    if (!p.pid_file.empty())
        if (std::string e = write_pid_file(p.pid_file, owner); !e.empty()) fail(e);
    if (p.user)
        if (std::string e = drop_privileges(*p.user); !e.empty()) fail(e);
    return p;
}

}  // namespace

int main(int argc, char** argv) {
    Args args = parse_args(argc, argv);
    if (args.check) return check_configuration(args);

    log_open(args.foreground);
    dns::set_local_error_log([](const std::string& line) { log_line(LOG_ERR, line); });
    Service service(args.config);
    auto problems = service.start();
    if (!problems.empty()) {
        for (const auto& p : problems) report(LOG_ERR, p.str());
        fail(args.config + ": " + std::to_string(problems.size()) + " problem(s), not starting");
    }
    log_facility(service.current()->config->milter.syslog_facility);
    Placement place = take_place(args, service);

    // Block the signals before any thread exists, so every thread inherits the mask.
    sigset_t set = handled_signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    signal(SIGPIPE, SIG_IGN);

    const config::Milter& mc = service.current()->config->milter;
    log_line(LOG_INFO, std::string("starting: regmilter ") + util::version + ", config " + args.config + ", socket " +
                           place.socket.conn() + ", mode " + util::name_of(mc.mode) +
                           (place.user ? ", user " + place.user->name : std::string()) + ", authserv_id " +
                           service.current()->authserv_id);
    stats::Metrics metrics;  // every session's observer when [stats] listen is set
    if (place.stats) serve_stats(*place.stats, service, metrics);
    g_main_thread = pthread_self();
    pthread_t milter_thread;
    if (pthread_create(&milter_thread, nullptr, milter_main, nullptr) != 0) fail("cannot start the milter thread");
    {
        HealthMonitor health(service);  // the registry zones' RFC 5782 §5 checks, until the end
        run_signals(service, place.socket.path, place.socket_file);
    }
    if (g_milter_done) pthread_join(milter_thread, nullptr);

    place.stats.reset();  // the endpoint's thread ends before the process does
    remove_pid_file(place.pid_file);
    log_line(LOG_INFO, "stopped");
    int status = g_milter_result == MI_SUCCESS ? 0 : 1;
    // Sessions still open after the drain limit run on libmilter threads:
    // leave without running destructors under their feet.
    std::fflush(nullptr);
    if (service.open_sessions() > 0) _exit(status);
    std::exit(status);
}
