// regmilter: the milter daemon. Reads the configuration, opens the socket,
// leaves root, then serves the MTA through libmilter until SIGTERM.
// Signals: the main thread is the only one that takes SIGHUP/SIGTERM/SIGINT
// (see run_signals); libmilter runs in its own thread; the state snapshot's
// saver (state.hpp) blocks every signal.
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
#include "service.hpp"
#include "util/cli.hpp"
#include "util/version.hpp"

namespace {

using namespace regmilter;
using namespace regmilter::daemon;

// How long SIGTERM waits for open MTA sessions to finish before exiting.
constexpr auto drain_limit = std::chrono::seconds(25);

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

[[noreturn]] void fail(const std::string& what) {
    log_line(LOG_ERR, "fatal: " + what);
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
// drain_limit), then stops libmilter. Runs on its own thread so that the main
// thread keeps taking the signals meanwhile.
void drain(Service& service, const std::string& unix_path) {
    service.begin_drain();
    if (!unix_path.empty()) unlink(unix_path.c_str());
    auto until = std::chrono::steady_clock::now() + drain_limit;
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
void run_signals(Service& service, const std::string& unix_path) {
    constexpr auto stop_limit = std::chrono::seconds(10);
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
        drainer = std::thread([&service, &drained, &give_up, unix_path, stop_limit] {
            drain(service, unix_path);
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

// regmilter -t: every problem of the configuration, its table and the socket.
int check_configuration(const Args& args) {
    Service service(args.config);
    auto problems = service.start();
    for (const auto& p : problems) std::cout << p.str() << "\n";
    if (!problems.empty()) return 1;
    std::string error;
    if (!net::parse_socket(args.socket.value_or(service.current()->config->milter.socket), error)) {
        std::cout << args.config << ": [milter] " << error << "\n";
        return 1;
    }
    std::cout << args.config << ": OK\n";
    return 0;
}

// What start-up settled: where the milter listens and as whom it runs.
struct Placement {
    net::SocketSpec socket;
    std::optional<User> user;
    std::string pid_file;
};

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
    std::string conn = p.socket.conn();
    if (smfi_register(filter_description(service)) != MI_SUCCESS) fail("smfi_register failed");
    if (smfi_setconn(const_cast<char*>(conn.c_str())) != MI_SUCCESS) fail("smfi_setconn " + conn + " failed");
    // The socket file appears with the umask's mode; tighten before, set exactly after.
    mode_t old_umask = umask(static_cast<mode_t>(~mc.socket_mode & 0777));
    if (smfi_opensocket(true) != MI_SUCCESS) fail("cannot open socket " + conn);
    umask(old_umask);
    if (!p.socket.path.empty())
        if (std::string e = set_socket_access(p.socket.path, mc.socket_mode, owner); !e.empty()) fail(e);
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
    Service service(args.config);
    auto problems = service.start();
    if (!problems.empty()) {
        for (const auto& p : problems) log_line(LOG_ERR, p.str());
        if (!args.foreground)
            for (const auto& p : problems) std::fprintf(stderr, "regmilter: %s\n", p.str().c_str());
        fail(args.config + ": " + std::to_string(problems.size()) + " problem(s), not starting");
    }
    Placement place = take_place(args, service);
    service.state().start(*service.current()->config);  // as the user that saves it later

    // Block the signals before any thread exists, so every thread inherits the mask.
    sigset_t set = handled_signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    signal(SIGPIPE, SIG_IGN);

    const config::Milter& mc = service.current()->config->milter;
    log_line(LOG_INFO, std::string("starting: regmilter ") + util::version + ", config " + args.config + ", socket " +
                           place.socket.conn() + ", mode " + util::name_of(mc.mode) +
                           (place.user ? ", user " + place.user->name : std::string()) + ", authserv_id " +
                           service.current()->authserv_id);
    service.state().start_saver();
    g_main_thread = pthread_self();
    pthread_t milter_thread;
    if (pthread_create(&milter_thread, nullptr, milter_main, nullptr) != 0) fail("cannot start the milter thread");
    run_signals(service, place.socket.path);
    if (g_milter_done) pthread_join(milter_thread, nullptr);
    service.state().stop();  // the last snapshot, after the drain

    remove_pid_file(place.pid_file);
    log_line(LOG_INFO, "stopped");
    int status = g_milter_result == MI_SUCCESS ? 0 : 1;
    // Sessions still open after the drain limit run on libmilter threads:
    // leave without running destructors under their feet.
    std::fflush(nullptr);
    if (service.open_sessions() > 0) _exit(status);
    std::exit(status);
}
