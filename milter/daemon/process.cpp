#include "process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
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

std::string parent_of(const std::string& path) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

std::string set_socket_access(const std::string& path, unsigned mode, const User* owner) {
    struct stat dir {};
    bool setgid_dir = stat(parent_of(path).c_str(), &dir) == 0 && (dir.st_mode & S_ISGID);
    gid_t group = setgid_dir ? static_cast<gid_t>(-1) : (owner ? owner->gid : static_cast<gid_t>(-1));
    if (owner && chown(path.c_str(), owner->uid, group) != 0)
        return errno_text("chown " + path + " to " + owner->name);
    if (chmod(path.c_str(), static_cast<mode_t>(mode)) != 0) return errno_text("chmod " + path);
    return "";
}

SocketProbe probe_unix_socket(const std::string& path) {
    SocketProbe p;
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) return p;
        p.state = SocketProbe::unusable;
        p.error = errno_text(path);
        return p;
    }
    if (!S_ISSOCK(st.st_mode)) {
        p.state = SocketProbe::unusable;
        p.error = path + " exists and is not a socket";
        return p;
    }
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof sa.sun_path) {
        p.state = SocketProbe::unusable;
        p.error = path + ": path too long for a unix socket";
        return p;
    }
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        p.state = SocketProbe::unusable;
        p.error = errno_text("socket");
        return p;
    }
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
        p.state = SocketProbe::running;
        ucred cred{};
        socklen_t len = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) p.pid = cred.pid;
    } else if (errno == ECONNREFUSED) {
        p.state = SocketProbe::stale;
    } else if (errno == EAGAIN) {
        p.state = SocketProbe::running;  // a full backlog: someone listens
    } else {
        p.state = SocketProbe::unusable;
        p.error = errno_text("connect " + path);
    }
    close(fd);
    return p;
}

namespace {

// HOST:PORT as a socket address; an empty host is `any` (the wildcard, or
// loopback to connect to). False for a host that is not an address.
bool inet_address(const std::string& host, int port, int family, bool any_is_loopback, sockaddr_storage& ss,
                  socklen_t& len) {
    ss = {};
    if (family == AF_INET6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(static_cast<uint16_t>(port));
        a->sin6_addr = host.empty() ? (any_is_loopback ? in6addr_loopback : in6addr_any) : in6_addr{};
        if (!host.empty() && inet_pton(AF_INET6, host.c_str(), &a->sin6_addr) != 1) return false;
        len = sizeof *a;
    } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        a->sin_family = AF_INET;
        a->sin_port = htons(static_cast<uint16_t>(port));
        a->sin_addr.s_addr = htonl(any_is_loopback ? INADDR_LOOPBACK : INADDR_ANY);
        if (!host.empty() && inet_pton(AF_INET, host.c_str(), &a->sin_addr) != 1) return false;
        len = sizeof *a;
    }
    return true;
}

}  // namespace

bool inet_answers(const std::string& host, int port, int family) {
    sockaddr_storage ss;
    socklen_t len = 0;
    if (!inet_address(host, port, family, true, ss, len)) return false;
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0;
    close(fd);
    return ok;
}

std::string try_bind(const std::string& host, int port, int family) {
    sockaddr_storage ss;
    socklen_t len = 0;
    if (!inet_address(host, port, family, false, ss, len)) return "";
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno_text("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // as libmilter binds
    std::string where =
        (family == AF_INET6 ? "inet6:" : "inet:") + std::to_string(port) + (host.empty() ? "" : "@" + host);
    std::string error =
        bind(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0 ? "" : errno_text("bind " + where);
    close(fd);
    return error;
}

FileId file_id(const std::string& path) {
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0) return {};
    return FileId{st.st_dev, st.st_ino, true};
}

void remove_if_same(const std::string& path, const FileId& id) {
    FileId now = file_id(path);
    if (id.known && now.known && now.dev == id.dev && now.ino == id.ino) unlink(path.c_str());
}

std::string check_socket_dir(const std::string& dir, const User* user) {
    struct stat st {};
    if (stat(dir.c_str(), &st) != 0) return errno_text("socket directory " + dir);
    if (!S_ISDIR(st.st_mode)) return "socket directory " + dir + " is not a directory";
    if (!user || geteuid() != 0) {
        if (access(dir.c_str(), W_OK | X_OK) != 0)
            return errno_text("socket directory " + dir + " (as " +
                              (user ? user->name : std::string("this user")) + ")");
        return "";
    }
    // As root for another user: ask as that user, in a child that becomes it.
    pid_t pid = fork();
    if (pid < 0) return errno_text("fork");
    if (pid == 0) {
        bool ok = initgroups(user->name.c_str(), user->gid) == 0 && setgid(user->gid) == 0 &&
                  setuid(user->uid) == 0 && access(dir.c_str(), W_OK | X_OK) == 0;
        _exit(ok ? 0 : errno == EACCES || errno == EROFS ? 1 : 2);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
    return "socket directory " + dir + " is not writable by " + user->name;
}

std::vector<std::string> writable_by_others(const std::string& path) {
    std::vector<std::string> out;
    for (std::string dir = parent_of(path);; dir = parent_of(dir)) {
        struct stat st {};
        if (stat(dir.c_str(), &st) == 0 && (st.st_mode & (S_IWGRP | S_IWOTH))) out.push_back(dir);
        if (dir == "/" || dir == ".") break;
    }
    return out;
}

int open_listener(const std::string& unix_path, const std::string& host, int port, int family, unsigned mode,
                  std::string& error) {
    if (!unix_path.empty()) {
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        if (unix_path.size() >= sizeof sa.sun_path) {
            error = unix_path + ": path too long for a unix socket";
            return -1;
        }
        std::memcpy(sa.sun_path, unix_path.c_str(), unix_path.size() + 1);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            error = errno_text("socket");
            return -1;
        }
        mode_t old = umask(static_cast<mode_t>(~mode & 0777));
        int rc = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
        int saved = errno;
        umask(old);
        errno = saved;
        if (rc != 0 || listen(fd, SOMAXCONN) != 0) {
            error = errno_text("bind unix:" + unix_path);
            close(fd);
            return -1;
        }
        return fd;
    }
    std::string where =
        (family == AF_INET6 ? "inet6:" : "inet:") + std::to_string(port) + (host.empty() ? "" : "@" + host);
    addrinfo hints{};
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    std::string service = std::to_string(port);
    if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res); rc != 0) {
        error = where + ": " + gai_strerror(rc);
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error = errno_text("socket");
        freeaddrinfo(res);
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
        error = errno_text("bind " + where);
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
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
