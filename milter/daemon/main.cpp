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
#include "runtime.hpp"

namespace {

using namespace regmilter;
using namespace regmilter::daemon;

// How long SIGTERM waits for open MTA sessions to finish before exiting.
constexpr auto drain_limit = std::chrono::seconds(25);

const char usage_text[] =
    "usage: regmilter [-c FILE] [-f] [-p SOCKET] [-u USER] [-P PIDFILE]\n"
    "       regmilter [-c FILE] -t\n"
    "  -c FILE     configuration file (default " SYSCONFDIR
    "/regmilter/regmilter.ini)\n"
    "  -f          stay in the foreground and log to stderr as well as syslog\n"
    "  -p SOCKET   listen here instead of [milter] socket (unix:/PATH, inet:PORT@HOST, inet6:PORT@HOST)\n"
    "  -u USER     run as USER instead of [milter] user (when started as root)\n"
    "  -P PIDFILE  write the pid here instead of [milter] pid_file (\"\" for none)\n"
    "  -t          check the configuration and the bulk table, print every problem, exit 0 or 1\n";

struct Args {
    std::string config = SYSCONFDIR "/regmilter/regmilter.ini";
    bool foreground = false;
    bool check = false;
    std::optional<std::string> socket;
    std::optional<std::string> user;
    std::optional<std::string> pid_file;
};

[[noreturn]] void usage(const std::string& why) {
    if (!why.empty()) std::fprintf(stderr, "regmilter: %s\n", why.c_str());
    std::fputs(usage_text, stderr);
    std::exit(2);
}

Args parse_args(int argc, char** argv) {
    Args a;
    int opt;
    opterr = 0;
    while ((opt = getopt(argc, argv, ":c:fp:u:P:th")) != -1) {
        switch (opt) {
            case 'c':
                a.config = optarg;
                break;
            case 'f':
                a.foreground = true;
                break;
            case 'p':
                a.socket = optarg;
                break;
            case 'u':
                a.user = optarg;
                break;
            case 'P':
                a.pid_file = optarg;
                break;
            case 't':
                a.check = true;
                break;
            case 'h':
                usage("");
            case ':':
                usage(std::string("-") + char(optopt) + " needs a value");
            default:
                usage(std::string("unknown option -") + char(optopt));
        }
    }
    if (optind != argc) usage(std::string("unexpected argument \"") + argv[optind] + "\"");
    return a;
}

[[noreturn]] void fail(const std::string& what) {
    log_line(LOG_ERR, "fatal: " + what);
    std::exit(1);
}

// Reload on SIGHUP, off the signal thread so that it goes straight back to
// sigwait (a signal arriving while no one waits could reach libmilter's
// thread, which stops the milter on SIGHUP).
class Reloader {
public:
    explicit Reloader(std::string path) : path_(std::move(path)), thread_([this] { loop(); }) {}
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
    // Look whether the bulk table file changed (called every few seconds).
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
                reload();
            else
                check_table();
            lock.lock();
        }
    }
    void reload() noexcept {
        try {
            std::shared_ptr<const Runtime> old = current();
            Loaded next = load_runtime(path_, old);
            if (!next.runtime) {
                for (const auto& p : next.problems) log_line(LOG_ERR, "reload refused: " + p);
                log_line(LOG_ERR, "reload refused: " + std::to_string(next.problems.size()) +
                                      " problem(s) in " + path_ +
                                      " or its bulk table; keeping configuration generation " +
                                      std::to_string(old ? old->generation : 0));
                return;
            }
            const config::Config& oc = *old->config;
            const config::Config& nc = *next.runtime->config;
            if (oc.milter.socket != nc.milter.socket || oc.milter.user != nc.milter.user ||
                oc.milter.socket_mode != nc.milter.socket_mode || oc.milter.pid_file != nc.milter.pid_file)
                log_line(LOG_WARNING,
                         "reload: [milter] socket, socket_mode, user and pid_file take effect at restart");
            install(next.runtime);
            log_line(LOG_INFO, "reloaded " + path_ + ": configuration generation " +
                                   std::to_string(next.runtime->generation) + ", bulk table " +
                                   (next.runtime->bulk_table
                                        ? std::to_string(next.runtime->bulk_table->size()) + " entries"
                                        : std::string("none")));
        } catch (const std::exception& e) {
            log_line(LOG_ERR, std::string("reload failed: ") + e.what() + "; old configuration kept");
        }
    }

    // The bulk table is reloaded when its file changes (no signal needed); a
    // broken file is refused once, logged with FILE:LINE, and the old table kept.
    void check_table() noexcept {
        try {
            std::shared_ptr<const Runtime> rt = current();
            if (!rt || rt->config->bulk.table.empty()) return;
            const std::string& path = rt->config->bulk.table;
            FileStamp now = stamp_of(path);
            if (now == rt->bulk_stamp || now == refused_) return;
            Loaded next = reload_table_if_changed(rt);
            if (next.runtime) {
                install(next.runtime);
                refused_ = FileStamp{};
                log_line(LOG_INFO, "bulk table " + path + " changed: " +
                                       std::to_string(next.runtime->bulk_table->size()) +
                                       " entries, configuration generation " +
                                       std::to_string(next.runtime->generation));
            } else if (!next.problems.empty()) {
                refused_ = now;
                for (const auto& p : next.problems) log_line(LOG_ERR, "bulk table reload refused: " + p);
                log_line(LOG_ERR, "bulk table reload refused: keeping the table of " +
                                      std::to_string(rt->bulk_table ? rt->bulk_table->size() : 0) + " entries");
            }
        } catch (const std::exception& e) {
            log_line(LOG_ERR, std::string("bulk table check failed: ") + e.what() + "; old table kept");
        }
    }

    std::string path_;
    std::mutex mu_;
    std::condition_variable cv_;
    FileStamp refused_;     // a broken table file already reported (Reloader thread only)
    bool table_check_ = false;  // guarded by mu_
    bool pending_ = false;  // guarded by mu_
    bool stop_ = false;     // guarded by mu_
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
void drain(const std::string& unix_path) {
    begin_drain();
    if (!unix_path.empty()) unlink(unix_path.c_str());
    auto until = std::chrono::steady_clock::now() + drain_limit;
    while (open_sessions() > 0 && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (open_sessions() > 0)
        log_line(LOG_WARNING, "exiting with " + std::to_string(open_sessions()) + " session(s) still open");
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
void run_signals(const std::string& config_path, const std::string& unix_path) {
    constexpr auto stop_limit = std::chrono::seconds(10);
    Reloader reloader(config_path);
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
                               ": no new connections, waiting for " + std::to_string(open_sessions()) +
                               " open session(s)");
        drainer = std::thread([&drained, &give_up, unix_path, stop_limit] {
            drain(unix_path);
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

}  // namespace

int main(int argc, char** argv) {
    Args args = parse_args(argc, argv);

    if (args.check) {
        Loaded l = load_runtime(args.config, nullptr);
        for (const auto& p : l.problems) std::cout << p << "\n";
        if (l.runtime) {
            std::string error;
            parse_socket(args.socket.value_or(l.runtime->config->milter.socket), error);
            if (!error.empty()) {
                std::cout << args.config << ": [milter] " << error << "\n";
                return 1;
            }
            std::cout << args.config << ": OK\n";
            return 0;
        }
        return 1;
    }

    log_open(args.foreground);
    Loaded loaded = load_runtime(args.config, nullptr);
    if (!loaded.runtime) {
        for (const auto& p : loaded.problems) log_line(LOG_ERR, p);
        if (!args.foreground)
            for (const auto& p : loaded.problems) std::fprintf(stderr, "regmilter: %s\n", p.c_str());
        fail(args.config + ": " + std::to_string(loaded.problems.size()) + " problem(s), not starting");
    }
    install(loaded.runtime);
    const config::Milter& mc = loaded.runtime->config->milter;

    std::string error;
    SocketSpec sock = parse_socket(args.socket.value_or(mc.socket), error);
    if (!error.empty()) fail(error);
    std::string user_name = args.user.value_or(mc.user);
    std::string pid_file = args.pid_file.value_or(mc.pid_file);

    std::optional<User> user;
    if (geteuid() == 0) {
        if (user_name.empty()) {
            log_line(LOG_WARNING, "running as root: set [milter] user");
        } else {
            user = find_user(user_name, error);
            if (!error.empty()) fail(error);
        }
    }

    if (smfi_register(filter_description()) != MI_SUCCESS) fail("smfi_register failed");
    if (smfi_setconn(const_cast<char*>(sock.conn.c_str())) != MI_SUCCESS)
        fail("smfi_setconn " + sock.conn + " failed");
    // The socket file appears with the umask's mode; tighten before, set exactly after.
    mode_t old_umask = umask(static_cast<mode_t>(~mc.socket_mode & 0777));
    if (smfi_opensocket(true) != MI_SUCCESS) fail("cannot open socket " + sock.conn);
    umask(old_umask);
    if (!sock.unix_path.empty()) {
        std::string e = set_socket_access(sock.unix_path, mc.socket_mode, user ? &*user : nullptr);
        if (!e.empty()) fail(e);
    }

    if (!args.foreground) {
        std::string e = detach();
        if (!e.empty()) fail(e);
    }
    if (!pid_file.empty()) {
        std::string e = write_pid_file(pid_file, user ? &*user : nullptr);
        if (!e.empty()) fail(e);
    }
    if (user) {
        std::string e = drop_privileges(*user);
        if (!e.empty()) fail(e);
    }

    // Block the signals before any thread exists, so every thread inherits the mask.
    sigset_t set = handled_signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    signal(SIGPIPE, SIG_IGN);

    log_line(LOG_INFO, "starting: config " + args.config + ", socket " + sock.conn + ", mode " +
                           util::name_of(mc.mode) + (user ? ", user " + user->name : std::string()) +
                           ", authserv_id " + mc.authserv_id);
    g_main_thread = pthread_self();
    pthread_t milter_thread;
    if (pthread_create(&milter_thread, nullptr, milter_main, nullptr) != 0)
        fail("cannot start the milter thread");
    run_signals(args.config, sock.unix_path);
    if (g_milter_done) pthread_join(milter_thread, nullptr);

    remove_pid_file(pid_file);
    log_line(LOG_INFO, "stopped");
    int status = g_milter_result == MI_SUCCESS ? 0 : 1;
    // Sessions still open after the drain limit run on libmilter threads:
    // leave without running destructors under their feet.
    std::fflush(nullptr);
    if (open_sessions() > 0) _exit(status);
    std::exit(status);
}
