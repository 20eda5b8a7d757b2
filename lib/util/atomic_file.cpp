#include "util/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <streambuf>
#include <vector>

namespace regmilter::util {

// An output streambuf over a file descriptor; remembers the first write error.
class AtomicFile::Buf : public std::streambuf {
public:
    explicit Buf(int fd) : fd_(fd), buf_(1 << 20) { setp(buf_.data(), buf_.data() + buf_.size()); }
    int error() const { return errno_; }
    bool drain() {
        char* p = pbase();
        while (p < pptr() && errno_ == 0) {
            ssize_t n = ::write(fd_, p, size_t(pptr() - p));
            if (n < 0) {
                if (errno == EINTR) continue;
                errno_ = errno;
            } else {
                p += n;
            }
        }
        setp(buf_.data(), buf_.data() + buf_.size());
        return errno_ == 0;
    }

protected:
    int_type overflow(int_type c) override {
        if (!drain()) return traits_type::eof();
        if (!traits_type::eq_int_type(c, traits_type::eof())) {
            *pptr() = traits_type::to_char_type(c);
            pbump(1);
        }
        return traits_type::not_eof(c);
    }
    int sync() override { return drain() ? 0 : -1; }

private:
    int fd_;
    std::vector<char> buf_;
    int errno_ = 0;
};

namespace {

// The process umask without changing it (umask(2) would, for every thread):
// the "Umask:" line of /proc/self/status (Linux 4.7 on), else 022.
mode_t current_umask() {
    std::FILE* f = std::fopen("/proc/self/status", "r");
    mode_t mask = 022;
    if (!f) return mask;
    char line[256];
    while (std::fgets(line, sizeof line, f)) {
        unsigned m = 0;
        if (std::sscanf(line, "Umask: %o", &m) == 1) {
            mask = mode_t(m);
            break;
        }
    }
    std::fclose(f);
    return mask;
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
    std::vector<char> tmpl(path_.begin(), path_.end());
    const char suffix[] = ".tmp.XXXXXX";
    tmpl.insert(tmpl.end(), suffix, suffix + sizeof suffix);  // with the NUL
    fd_ = ::mkstemp(tmpl.data());
    if (fd_ < 0) {
        error_ = "cannot create a temporary file beside " + path_ + ": " + std::strerror(errno);
        stream_ = std::make_unique<std::ostream>(nullptr);
        return;
    }
    tmp_ = tmpl.data();
    ::fchmod(fd_, 0666 & ~current_umask());
    buf_ = std::make_unique<Buf>(fd_);
    stream_ = std::make_unique<std::ostream>(buf_.get());
}

AtomicFile::~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_ && !tmp_.empty()) ::unlink(tmp_.c_str());
}

std::ostream& AtomicFile::stream() {
    return *stream_;
}

bool AtomicFile::commit() {
    if (!ok() || committed_) return ok() && committed_;
    auto fail = [&](const char* what, int err) {
        error_ = std::string(what) + " " + tmp_ + ": " + std::strerror(err);
        return false;
    };
    stream_->flush();
    if (!buf_->drain() || buf_->error() != 0)
        return fail("cannot write", buf_->error() ? buf_->error() : EIO);
    if (::fsync(fd_) != 0) return fail("cannot sync", errno);
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return fail("cannot close", errno);
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
        error_ = "cannot rename " + tmp_ + " to " + path_ + ": " + std::strerror(errno);
        return false;
    }
    committed_ = true;
    return true;
}

}  // namespace regmilter::util
