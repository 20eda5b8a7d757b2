// regmilter: the milter daemon. Reads the configuration, opens the socket,
// leaves root, then runs as the master (master.hpp): it relays every MTA
// connection to a worker, this same program executed again
// (REGMILTER_WORKER, worker.hpp), which serves it through libmilter; the
// master restarts a worker that dies. Signals go to the master.
//
//   regmilter -c FILE [-f] [-p SOCKET] [-u USER] [-P PIDFILE]   run
//   regmilter -c FILE -t                                          check the configuration
// Exit status: 0 after SIGTERM/SIGINT or a clean -t; 1 on a configuration or
// start-up error (every problem printed); 2 on a bad command line.
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "log.hpp"
#include "master.hpp"
#include "net/endpoint.hpp"
#include "process.hpp"
#include "service.hpp"
#include "stats_server.hpp"
#include "util/cli.hpp"
#include "util/version.hpp"
#include "worker.hpp"

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
        if (std::string e = check_socket_dir(dir, as); !e.empty())
            c.errors.push_back("[milter] socket: " + e);
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

// Postfix's milter_command_timeout in seconds, when postconf says it; 0 when unknown.
int postfix_command_timeout() {
    FILE* p = popen("postconf -h milter_command_timeout 2>/dev/null", "r");
    if (!p) return 0;
    char buf[64] = "";
    bool got = std::fgets(buf, sizeof buf, p) != nullptr;
    pclose(p);
    if (!got) return 0;
    // "30s", "30", "2m", "1h" (Postfix time units; seconds by default).
    char* end = nullptr;
    long v = std::strtol(buf, &end, 10);
    if (v <= 0 || end == buf) return 0;
    switch (*end) {
        case 'm':
            return int(v * 60);
        case 'h':
            return int(v * 3600);
        case 'd':
            return int(v * 86400);
        case 'w':
            return int(v * 604800);
        default:
            return int(v);
    }
}

// The budgets against what waits for them: the MTA's milter timeout (known
// for Postfix where postconf runs) and the unit's stop timeout.
std::vector<std::string> timeout_warnings(const config::Config& c) {
    std::vector<std::string> w;
    const int stage = c.resolver.stage_timeout_ms;
    if (int postfix = postfix_command_timeout(); postfix > 0 && stage + 5000 > postfix * 1000)
        w.push_back("[resolver] stage_timeout_ms = " + std::to_string(stage) +
                    " leaves less than 5 s below Postfix's milter_command_timeout (" +
                    std::to_string(postfix) +
                    " s): Postfix may give up on the milter first and apply milter_default_action");
    if (c.milter.drain_timeout > 25)
        w.push_back("[milter] drain_timeout = " + std::to_string(c.milter.drain_timeout) +
                    ": the stop takes up to drain_timeout + 4 s, over the packaged unit's TimeoutStopSec=30");
    return w;
}

// regmilter -t: every problem of the configuration, its table, the socket and the user.
int check_configuration(const Args& args) {
    Service service(args.config);
    auto problems = service.start();
    for (const auto& p : problems) std::cout << p.str() << "\n";
    if (!problems.empty()) return 1;
    PlaceCheck place = check_place(args, service.current()->config->milter);
    for (auto& w : timeout_warnings(*service.current()->config)) place.warnings.push_back(std::move(w));
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
    std::unique_ptr<StatsServer> stats;  // [stats] listen, bound to check it; the worker serves it
    int listen_fd = -1;                  // the public socket, listening
    std::string private_dir;             // the worker's socket directory
};

// Makes sure the socket can be taken without taking it from anyone: a unix
// socket that answers is another regmilter (or something else) at work —
// exit, and leave it alone; a stale one is removed; an inet address already
// served is refused the same way. Every failure says why.
void claim_socket(const net::SocketSpec& sock, const User* owner) {
    if (sock.kind != net::SocketSpec::Kind::unix_path) {
        int family = sock.kind == net::SocketSpec::Kind::inet6 ? AF_INET6 : AF_INET;
        if (inet_answers(sock.host, sock.port, family))
            fail("already running: something answers on " + sock.conn());
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
            if (unlink(sock.path.c_str()) != 0)
                fail("stale socket " + sock.path + ": " + std::strerror(errno));
            log_line(LOG_INFO, "removed the stale socket " + sock.path + " (nothing listened on it)");
            break;
        case SocketProbe::absent:
            break;
    }
    std::string dir = sock.path.substr(0, std::max<size_t>(sock.path.rfind('/'), 1));
    if (std::string e = check_socket_dir(dir, geteuid() == 0 ? nullptr : owner); !e.empty()) fail(e);
}

// Opens the socket (as root when started so) and the worker's directory,
// then detaches, writes the pid file and leaves root. Any failure ends the
// process with its reason.
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
    int family = p.socket.kind == net::SocketSpec::Kind::inet6 ? AF_INET6 : AF_INET;
    p.listen_fd = open_listener(p.socket.path, p.socket.host, p.socket.port, family, mc.socket_mode, error);
    if (p.listen_fd < 0) fail("cannot open socket " + conn + ": " + error);
    if (!p.socket.path.empty()) {
        if (std::string e = set_socket_access(p.socket.path, mc.socket_mode, owner); !e.empty()) fail(e);
        p.socket_file = file_id(p.socket.path);
    }
    if (p.socket.reachable_from_network())
        log_line(LOG_WARNING, "socket " + conn +
                                  " is reachable from the network: bind it to a loopback address "
                                  "or use a unix socket");
    // The worker's socket, where only this user can reach it.
    p.private_dir = make_private_dir(p.socket.path, p.pid_file, owner, error);
    if (p.private_dir.empty()) {
        if (!p.socket.path.empty()) remove_if_same(p.socket.path, p.socket_file);
        fail("cannot make a directory for the worker's socket: " + error);
    }
    std::string stats_error;
    if (p.stats = open_stats(service, stats_error); !stats_error.empty()) {
        if (!p.socket.path.empty())
            remove_if_same(p.socket.path, p.socket_file);  // just made by us: leave none behind
        remove_private_dir(p.private_dir);
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
    if (const char* w = std::getenv(worker_env)) {
        WorkerPlace wp;
        if (!parse_worker_env(w, wp)) {
            std::fprintf(stderr, "regmilter: %s: malformed (internal)\n", worker_env);
            return 2;
        }
        unsetenv(worker_env);
        return run_worker(args.config, args.foreground, wp);
    }

    log_open(args.foreground);
    // The worker reads the file after the master has left the directory it started in.
    std::error_code ec;
    std::string config_path = std::filesystem::absolute(args.config, ec).lexically_normal();
    if (ec) config_path = args.config;
    auto service = std::make_unique<Service>(config_path);
    auto problems = service->start();
    if (!problems.empty()) {
        for (const auto& p : problems) report(LOG_ERR, p.str());
        fail(args.config + ": " + std::to_string(problems.size()) + " problem(s), not starting");
    }
    log_facility(service->current()->config->milter.syslog_facility);
    Placement place = take_place(args, *service);
    place.stats.reset();  // bindable: checked; the worker binds it again

    // Every signal blocked before any thread exists, so every thread inherits
    // the mask; run_master takes SIGHUP, SIGTERM and SIGINT on this thread.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    signal(SIGPIPE, SIG_IGN);

    std::shared_ptr<const config::Config> cfg = service->current()->config;
    const config::Milter& mc = cfg->milter;
    log_line(LOG_INFO, std::string("starting: regmilter ") + util::version + ", config " + args.config +
                           ", socket " + place.socket.conn() + ", mode " + util::name_of(mc.mode) +
                           (place.user ? ", user " + place.user->name : std::string()) + ", authserv_id " +
                           service->current()->authserv_id);
    service.reset();  // the master decides nothing: the worker loads its own

    MasterPlace mp;
    mp.listen_fd = place.listen_fd;
    mp.unix_path = place.socket.path;
    mp.socket_file = place.socket_file;
    mp.private_dir = place.private_dir;
    mp.config_path = config_path;
    mp.foreground = args.foreground;
    int status = run_master(mp, *cfg);

    remove_private_dir(place.private_dir);
    remove_pid_file(place.pid_file);
    log_line(LOG_INFO, "stopped");
    std::fflush(nullptr);
    return status;
}
