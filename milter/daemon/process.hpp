// daemon process: socket address forms, socket file mode and owner, the
// switch from root to the configured user, the pid file, detaching.
// Decides nothing about mail. Called from main() before any thread starts,
// except remove_pid_file() (at exit). Errors are returned as text, never thrown.
#pragma once

#include <sys/types.h>
#include <string>

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
// chown it to owner:owner's group, so the MTA's user can connect when it is
// in that group (DESIGN "Sockets"). Returns an error text or "".
std::string set_socket_access(const std::string& path, unsigned mode, const User* owner);

// initgroups + setgid + setuid, then a check that root cannot be regained.
std::string drop_privileges(const User& user);

// fork, setsid, fork again, chdir("/"), stdin/stdout/stderr to /dev/null.
// Only the grandchild returns. Returns an error text or "".
std::string detach();

// Writes "PID\n" (O_CREAT|O_TRUNC, mode 0644), chowned to `owner` when set so
// the process can still remove it after dropping root. "" on success.
std::string write_pid_file(const std::string& path, const User* owner);
void remove_pid_file(const std::string& path);

}  // namespace regmilter::daemon
