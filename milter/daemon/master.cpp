#include "master.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include "channel.hpp"
#include "log.hpp"
#include "policy/replies.hpp"
#include "proxy.hpp"
#include "worker.hpp"

extern char** environ;

namespace regmilter::daemon {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// What the master takes from the configuration (again at SIGHUP).
struct MasterSettings {
    policy::OnInternalError on_internal_error = policy::OnInternalError::tempfail;
    int drain_timeout = 20;  // seconds
    int stage_timeout_ms = 10000;
};

MasterSettings settings_of(const config::Config& c) {
    MasterSettings s;
    s.on_internal_error = c.milter.on_internal_error;
    s.drain_timeout = c.milter.drain_timeout;
    s.stage_timeout_ms = c.resolver.stage_timeout_ms;
    return s;
}

std::string exit_text(int status) {
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return std::string("was killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
               strsignal(WTERMSIG(status)) + ")" + (WCOREDUMP(status) ? ", core dumped" : "");
    return "ended (status " + std::to_string(status) + ")";
}

// The worker process: started, watched, restarted after a backoff when it
// dies, and asked over its channel to reload, drain or prefetch.
class Supervisor {
public:
    Supervisor(Proxy& proxy, const MasterPlace& place) : proxy_(proxy), place_(place) {
        wake_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (wake_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    }
    ~Supervisor() {
        stop();
        ::close(wake_);
    }

    void start() {
        thread_ = std::thread([this] { loop(); });
    }

    // Ends the worker (its channel closes; SIGKILL after 2 s) and the thread.
    void stop() {
        if (!thread_.joinable()) return;
        stopping_ = true;
        poke();
        thread_.join();
    }

    void reload() { send("reload"); }

    // The Proxy's hold hook (relay thread): holds a MAIL FROM while the
    // worker prefetches its answers, asked on the hold channel, which the
    // Proxy reads the worker's "ready" from; never when the channel cannot
    // take the request at once.
    static bool hold(const HoldRequest& h) {
        if (h.command != 'M' || h.channel < 0) return false;
        std::string mail(h.data.data(), strnlen(h.data.data(), h.data.size()));
        std::string m = "prefetch\t" + std::to_string(h.id) + "\t" + clean(h.client_address) + "\t" +
                        clean(h.helo) + "\t" + clean(mail);
        if (m.size() > 4000) return false;
        return send_message(h.channel, m, false);
    }

private:
    static std::string clean(std::string_view s) {
        std::string out(s);
        std::replace(out.begin(), out.end(), '\t', ' ');
        return out;
    }

    void poke() {
        uint64_t one = 1;
        ssize_t ignored = ::write(wake_, &one, sizeof one);
        (void)ignored;
    }

    void send(const std::string& m) {
        std::lock_guard<std::mutex> lock(mu_);
        if (channel_ >= 0) send_message(channel_, m, false);
    }

    // The channel is gone. (What is held waits on the hold channel, which
    // ended with the worker: the Proxy releases it.)
    void channel_gone() {
        std::lock_guard<std::mutex> lock(mu_);
        if (channel_ >= 0) ::close(channel_);
        channel_ = -1;
    }

    // fork + exec of this binary as a worker. The child does nothing but
    // async-signal-safe calls before execve.
    pid_t spawn() {
        int sv[2], hv[2];  // the channel, the hold channel
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
            log_line(LOG_ERR, std::string("cannot start a worker: socketpair: ") + std::strerror(errno));
            return -1;
        }
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, hv) != 0) {
            log_line(LOG_ERR, std::string("cannot start a worker: socketpair: ") + std::strerror(errno));
            for (int fd : sv) ::close(fd);
            return -1;
        }
        std::string env_value = std::string(worker_env) + "=" + std::to_string(sv[1]) + ":" +
                                std::to_string(hv[1]) + ":" + place_.private_dir;
        std::vector<std::string> args = {"regmilter", "-c", place_.config_path};
        if (place_.foreground) args.push_back("-f");
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        std::vector<char*> envp;
        const std::string prefix = std::string(worker_env) + "=";
        for (char** e = environ; e && *e; ++e)
            if (std::strncmp(*e, prefix.c_str(), prefix.size()) != 0) envp.push_back(*e);
        envp.push_back(env_value.data());
        envp.push_back(nullptr);
        pid_t pid = fork();
        if (pid == 0) {
            fcntl(sv[1], F_SETFD, 0);  // the worker's ends survive execve
            fcntl(hv[1], F_SETFD, 0);
            setsid();  // a terminal's signals are the master's alone
            execve("/proc/self/exe", argv.data(), envp.data());
            _exit(127);
        }
        ::close(sv[1]);
        ::close(hv[1]);
        if (pid < 0) {
            log_line(LOG_ERR, std::string("cannot start a worker: fork: ") + std::strerror(errno));
            ::close(sv[0]);
            ::close(hv[0]);
            return -1;
        }
        proxy_.hold_channel(hv[0]);
        std::lock_guard<std::mutex> lock(mu_);
        channel_ = sv[0];
        return pid;
    }

    // Waits up to `d` for the wakeup; true when stopping.
    bool sleep_for(milliseconds d) {
        pollfd p{wake_, POLLIN, 0};
        auto until = Clock::now() + d;
        while (!stopping_) {
            auto left = std::chrono::duration_cast<milliseconds>(until - Clock::now()).count();
            if (left <= 0) break;
            poll(&p, 1, int(left));
            uint64_t n;
            ssize_t ignored = ::read(wake_, &n, sizeof n);
            (void)ignored;
        }
        return stopping_;
    }

    void loop() {
        milliseconds backoff{100};
        const std::string sock = worker_socket(place_.private_dir);
        while (!stopping_) {
            pid_t pid = spawn();
            if (pid < 0) {
                if (sleep_for(backoff)) return;
                backoff = std::min(backoff * 2, milliseconds(5000));
                continue;
            }
            Clock::time_point started = Clock::now();
            int status = 0;
            bool exited = false;
            while (!stopping_ && !exited) {
                int ch;
                {
                    std::lock_guard<std::mutex> lock(mu_);
                    ch = channel_;
                }
                pollfd p[2] = {{wake_, POLLIN, 0}, {ch, POLLIN, 0}};
                poll(p, ch >= 0 ? 2 : 1, 100);
                if (p[0].revents) {
                    uint64_t n;
                    ssize_t ignored = ::read(wake_, &n, sizeof n);
                    (void)ignored;
                }
                if (ch >= 0 && p[1].revents) read_channel(ch, pid, sock);
                pid_t w = waitpid(pid, &status, WNOHANG);
                if (w == pid) exited = true;
            }
            if (!exited) {
                end_worker(pid);
                return;
            }
            proxy_.worker_down();
            channel_gone();
            log_line(LOG_ERR, "worker pid " + std::to_string(pid) + " " + exit_text(status) +
                                  "; its sessions are answered by the master; starting another in " +
                                  std::to_string(backoff.count()) + " ms");
            if (sleep_for(backoff)) return;
            // A worker that ran a while resets the backoff; one that dies at
            // once (a broken configuration) doubles it, up to 5 s.
            backoff = Clock::now() - started > std::chrono::seconds(30)
                          ? milliseconds(100)
                          : std::min(backoff * 2, milliseconds(5000));
        }
    }

    void read_channel(int ch, pid_t pid, const std::string& sock) {
        std::string m;
        for (;;) {
            Received r = receive_message(ch, m, false);
            if (r == Received::nothing) return;
            if (r == Received::ended) {
                channel_gone();
                return;
            }
            if (m == "up") {
                log_line(LOG_INFO, "worker pid " + std::to_string(pid) + " up");
                proxy_.worker_up(sock);
            }
        }
    }

    // Stopping: the channel closes (the worker saves its state snapshot and
    // leaves); SIGKILL if it is still there after 2 s.
    void end_worker(pid_t pid) {
        channel_gone();
        int status = 0;
        for (int i = 0; i < 200; ++i) {
            if (waitpid(pid, &status, WNOHANG) == pid) return;
            std::this_thread::sleep_for(milliseconds(10));
        }
        log_line(LOG_WARNING, "worker pid " + std::to_string(pid) + " did not leave in 2 s: killed");
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }

    Proxy& proxy_;
    const MasterPlace& place_;
    int wake_ = -1;
    std::atomic<bool> stopping_{false};
    std::mutex mu_;
    int channel_ = -1;  // guarded by mu_
    std::thread thread_;
};

ProxySettings proxy_settings(const MasterSettings& m) {
    ProxySettings s;
    s.on_internal_error = m.on_internal_error;
    // A held MAIL FROM is released by the worker's answer within
    // stage_timeout_ms; the limit is a backstop. A connection waits as long
    // for a worker that is starting.
    s.hold_limit = milliseconds(std::max(5000, m.stage_timeout_ms + 500));
    s.hold = [](const HoldRequest& h) { return Supervisor::hold(h); };
    return s;
}

}  // namespace

std::string make_private_dir(const std::string& socket_path, const std::string& pid_file, const User* owner,
                             std::string& error) {
    auto dir_of = [](const std::string& p) {
        auto slash = p.rfind('/');
        return slash == std::string::npos ? std::string(".")
               : slash == 0               ? std::string("/")
                                          : p.substr(0, slash);
    };
    std::vector<std::string> bases;
    if (const char* rd = std::getenv("RUNTIME_DIRECTORY"); rd && *rd == '/')
        bases.push_back(std::string(rd).substr(0, std::string(rd).find(':')));
    if (!socket_path.empty()) bases.push_back(dir_of(socket_path));
    if (!pid_file.empty() && pid_file.front() == '/') bases.push_back(dir_of(pid_file));
    bases.push_back("/tmp");
    for (const std::string& base : bases) {
        std::string templ = base + "/regmilter-worker.XXXXXX";
        // sun_path holds 107 bytes: the worker's socket must fit.
        if (worker_socket(templ).size() >= 107) continue;
        std::vector<char> buf(templ.begin(), templ.end());
        buf.push_back('\0');
        if (!mkdtemp(buf.data())) {
            error = base + ": " + std::strerror(errno);
            continue;
        }
        std::string dir(buf.data());
        chmod(dir.c_str(), 0700);  // a set-group-ID parent adds nothing for others
        if (owner && chown(dir.c_str(), owner->uid, owner->gid) != 0) {
            error = "chown " + dir + ": " + std::strerror(errno);
            rmdir(dir.c_str());
            continue;
        }
        error.clear();
        return dir;
    }
    if (error.empty()) error = "no directory for the worker's socket (paths too long)";
    return "";
}

void remove_private_dir(const std::string& dir) {
    if (dir.empty()) return;
    unlink(worker_socket(dir).c_str());
    rmdir(dir.c_str());
}

int run_master(const MasterPlace& place, const config::Config& cfg) {
    MasterSettings settings = settings_of(cfg);
    Proxy proxy(place.listen_fd, proxy_settings(settings));
    Supervisor sup(proxy, place);
    std::thread relay([&proxy] {
        try {
            proxy.run();
        } catch (const std::exception& e) {
            log_line(LOG_ERR, std::string("proxy: ") + e.what() + "; exiting");
            kill(getpid(), SIGTERM);
        }
    });
    sup.start();

    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGHUP, SIGTERM, SIGINT}) sigaddset(&set, s);
    bool draining = false, idle_closed = false, listen_closed = false;
    Clock::time_point drain_deadline{}, give_up{};
    auto close_listen = [&] {
        if (listen_closed || !proxy.drained_listen()) return;
        shutdown(place.listen_fd, SHUT_RDWR);  // the backlog is refused, not left hanging
        ::close(place.listen_fd);
        if (!place.unix_path.empty()) remove_if_same(place.unix_path, place.socket_file);
        listen_closed = true;
    };
    for (;;) {
        timespec tick{0, 100 * 1000 * 1000};
        int sig = sigtimedwait(&set, nullptr, &tick);
        if (sig == SIGHUP && !draining) {
            config::LoadResult r = config::load_file(place.config_path);
            if (r.ok()) {
                settings = settings_of(*r.value);
                proxy.set_answers(settings.on_internal_error, policy::replies::internal_error_text);
            }  // else the worker logs every problem and keeps its configuration; so does the master
            sup.reload();
            continue;
        }
        if ((sig == SIGTERM || sig == SIGINT) && !draining) {
            log_line(LOG_INFO, std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") +
                                   ": no new connections, waiting for " +
                                   std::to_string(proxy.counters().open) + " open session(s)");
            draining = true;
            // No new connection finds the socket; those already in its
            // backlog are taken and served like the open ones.
            if (!place.unix_path.empty()) remove_if_same(place.unix_path, place.socket_file);
            proxy.begin_drain(true);
            for (int i = 0; i < 200 && !proxy.drained_listen(); ++i)
                std::this_thread::sleep_for(milliseconds(5));
            close_listen();
            drain_deadline = Clock::now() + std::chrono::seconds(settings.drain_timeout);
        } else if (sig > 0 && draining) {
            log_line(LOG_INFO, "shutting down: signal " + std::to_string(sig) + " ignored");
        }
        if (!draining) continue;
        close_listen();
        Clock::time_point now = Clock::now();
        uint64_t open = proxy.counters().open;
        if (open == 0) break;
        if (!idle_closed && now >= drain_deadline) {
            log_line(LOG_INFO, "drain_timeout: closing the session(s) between transactions; " +
                                   std::to_string(open) + " open");
            proxy.close_idle();
            idle_closed = true;
            give_up = now + stop_grace;
        }
        if (idle_closed && now >= give_up) {
            log_line(LOG_WARNING, "exiting with " + std::to_string(open) + " session(s) still open");
            break;
        }
    }
    proxy.stop();
    relay.join();
    sup.stop();
    ProxyCounters c = proxy.counters();
    log_line(LOG_INFO, "relayed " + std::to_string(c.accepted) + " session(s): " +
                           std::to_string(c.master_answers) + " answer(s) in a worker's place, " +
                           std::to_string(c.early_rcpts) + " RCPT TO answered at once on the worker's hint");
    return 0;
}

}  // namespace regmilter::daemon
