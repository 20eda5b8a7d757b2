// daemon process: socket address forms, socket file mode and owner, the
// switch from root to the configured user, the pid file, detaching.
// Decides nothing about mail. Called from main() before any thread starts,
// except remove_pid_file() (at exit). Errors are returned as text, never thrown.
#pragma once

#include <pthread.h>
#include <signal.h>
#include <sys/types.h>

#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace regmilter::daemon {

// The account to run as. Looked up before the switch (getpwnam needs files
// that a chroot or a dropped privilege may hide).
struct User {
    std::string name;
    uid_t uid = 0;
    gid_t gid = 0;
};
// Empty `error` on success. An unknown user is an error.
User find_user(const std::string& name, std::string& error);

// chmod the socket file to `mode` and, when `owner` is set (running as root),
// chown it to the owner and owner's group — but keep the group the socket got
// from a set-group-ID directory (/var/spool/postfix/regmilter, group postfix),
// so the MTA's user can connect (DESIGN "Sockets"). Returns an error text or "".
std::string set_socket_access(const std::string& path, unsigned mode, const User* owner);

// What is at a unix socket path before the milter takes it.
struct SocketProbe {
    enum State { absent, stale, running, unusable } state = absent;
    pid_t pid = 0;      // running: the listening process (SO_PEERCRED), 0 when unknown
    std::string error;  // unusable: why the path cannot be used ("... is not a socket", strerror)
};
// Looks at `path` without changing it: absent, a socket nobody listens on
// (stale), one that answers (running), or something else (unusable).
SocketProbe probe_unix_socket(const std::string& path);
// The same for inet:PORT@HOST / inet6: something accepts connections there.
bool inet_answers(const std::string& host, int port, int family);

// Binds a TCP socket to HOST:PORT (empty host: every address) and closes it
// again: "" when the milter could listen there, else why ("... Address
// already in use"). A host name is not checked ("" ).
std::string try_bind(const std::string& host, int port, int family);

// The file that is now at `path`, to tell later whether it is still ours.
struct FileId {
    dev_t dev = 0;
    ino_t ino = 0;
    bool known = false;
};
FileId file_id(const std::string& path);
// Removes `path` only when it is still the file `id` (a second copy started
// by hand must not delete the running milter's socket, nor the other way round).
void remove_if_same(const std::string& path, const FileId& id);

// Can `user` (null: this process) create a socket in `dir`: it exists, is a
// directory, and grants write and search to that user. "" when it can, else
// the reason ("... : No such file or directory", "... not writable by regmilter").
std::string check_socket_dir(const std::string& dir, const User* user);
// Directories on the way to `path` that are group- or world-writable (Sendmail
// refuses a socket below one).
std::vector<std::string> writable_by_others(const std::string& path);

// Binds and listens on a unix socket path (made with `mode`: the umask is
// set around bind) or on inet/inet6 PORT@HOST (SO_REUSEADDR; HOST an
// address or a name, empty for every address), close-on-exec, backlog
// SOMAXCONN. Returns the descriptor, or -1 and `error` ("bind
// inet:10025@127.0.0.1: Address already in use").
int open_listener(const std::string& unix_path, const std::string& host, int port, int family, unsigned mode,
                  std::string& error);

// initgroups + setgid + setuid, then a check that root cannot be regained.
std::string drop_privileges(const User& user);

// fork, setsid, fork again, chdir("/"), stdin/stdout/stderr to /dev/null.
// Only the grandchild returns. Returns an error text or "".
std::string detach();

// Writes "PID\n" (O_CREAT|O_TRUNC, mode 0644), chowned to `owner` when set so
// the process can still remove it after dropping root. "" on success.
std::string write_pid_file(const std::string& path, const User* owner);
void remove_pid_file(const std::string& path);

// A thread running `f`, born with every signal blocked: the signals are the
// main thread's sigwait loop's, and one taken elsewhere could reach libmilter's
// handler (which stops the milter on SIGHUP). The caller's mask is unchanged.
template <class F>
std::thread quiet_thread(F&& f) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    try {
        std::thread t(std::forward<F>(f));
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
        return t;
    } catch (...) {
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
        throw;
    }
}

}  // namespace regmilter::daemon
