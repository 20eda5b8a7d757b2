#include "process.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <vector>

namespace regmilter::daemon {

namespace {

std::string errno_text(const std::string& what) {
    return what + ": " + std::strerror(errno);
}

}  // namespace

User find_user(const std::string& name, std::string& error) {
    error.clear();
    errno = 0;
    struct passwd* pw = getpwnam(name.c_str());
    if (!pw) {
        error = "user \"" + name + "\": " + (errno ? std::strerror(errno) : "no such user");
        return {};
    }
    return User{name, pw->pw_uid, pw->pw_gid};
}

std::string set_socket_access(const std::string& path, unsigned mode, const User* owner) {
    if (owner && chown(path.c_str(), owner->uid, owner->gid) != 0)
        return errno_text("chown " + path + " to " + owner->name);
    if (chmod(path.c_str(), static_cast<mode_t>(mode)) != 0) return errno_text("chmod " + path);
    return "";
}

std::string drop_privileges(const User& user) {
    if (initgroups(user.name.c_str(), user.gid) != 0) return errno_text("initgroups " + user.name);
    if (setgid(user.gid) != 0) return errno_text("setgid " + std::to_string(user.gid));
    if (setuid(user.uid) != 0) return errno_text("setuid " + std::to_string(user.uid));
    if (user.uid != 0 && (setuid(0) == 0 || geteuid() == 0))
        return "setuid " + std::to_string(user.uid) + ": root privileges could be regained";
    return "";
}

std::string detach() {
    pid_t pid = fork();
    if (pid < 0) return errno_text("fork");
    if (pid > 0) _exit(0);
    if (setsid() < 0) return errno_text("setsid");
    pid = fork();
    if (pid < 0) return errno_text("fork");
    if (pid > 0) _exit(0);
    if (chdir("/") != 0) return errno_text("chdir /");
    int fd = open("/dev/null", O_RDWR);
    if (fd < 0) return errno_text("open /dev/null");
    for (int target = 0; target <= 2; ++target)
        if (dup2(fd, target) < 0) return errno_text("dup2");
    if (fd > 2) close(fd);
    return "";
}

std::string write_pid_file(const std::string& path, const User* owner) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return errno_text("pid file " + path);
    std::string text = std::to_string(getpid()) + "\n";
    bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    int saved = errno;
    if (owner && fchown(fd, owner->uid, owner->gid) != 0) {
        saved = errno;
        ok = false;
    }
    close(fd);
    errno = saved;
    return ok ? "" : errno_text("pid file " + path);
}

void remove_pid_file(const std::string& path) {
    if (!path.empty()) unlink(path.c_str());
}

}  // namespace regmilter::daemon
