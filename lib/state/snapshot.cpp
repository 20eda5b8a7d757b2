// state: MemoryStore's snapshot file — save (temporary file, fsync, rename)
// and load (all or nothing, every refusal with FILE:LINE).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <limits>
#include <string_view>
#include <vector>

#include "state/memory_store.hpp"

namespace regmilter::state {

namespace {

constexpr std::string_view header = "regmilter-state 1";
constexpr size_t max_line = 255;

std::string errno_text(int e) {
    return std::strerror(e);
}

// A file descriptor closed at scope exit.
struct Fd {
    int fd = -1;
    explicit Fd(int f) : fd(f) {}
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int release() {
        int f = fd;
        fd = -1;
        return f;
    }
};

bool write_all(int fd, const char* p, size_t n) {
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        p += w;
        n -= size_t(w);
    }
    return true;
}

void append_number(std::string& out, int64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

// Reads a file line by line in large chunks; a line longer than max_line is
// reported as such instead of being buffered whole.
class LineReader {
public:
    explicit LineReader(int fd) : fd_(fd) {}
    enum class Got { line, eof, too_long, error };
    Got next(std::string_view& line) {
        for (;;) {
            const char* start = buf_.data() + pos_;
            const char* nl = static_cast<const char*>(std::memchr(start, '\n', len_ - pos_));
            if (nl) {
                line = std::string_view(start, size_t(nl - start));
                pos_ = size_t(nl - buf_.data()) + 1;
                if (line.size() > max_line) return Got::too_long;
                return Got::line;
            }
            if (len_ - pos_ > max_line) return Got::too_long;
            if (eof_) {
                if (pos_ == len_) return Got::eof;
                line = std::string_view(start, len_ - pos_);  // a last line without '\n'
                pos_ = len_;
                return Got::line;
            }
            // Keep the partial line, read more behind it.
            std::memmove(buf_.data(), start, len_ - pos_);
            len_ -= pos_;
            pos_ = 0;
            if (buf_.size() < len_ + chunk) buf_.resize(len_ + chunk);
            ssize_t r;
            do {
                r = ::read(fd_, buf_.data() + len_, chunk);
            } while (r < 0 && errno == EINTR);
            if (r < 0) return Got::error;
            if (r == 0) eof_ = true;
            len_ += size_t(r);
        }
    }

private:
    static constexpr size_t chunk = 1 << 20;
    int fd_;
    std::vector<char> buf_ = std::vector<char>(chunk);
    size_t pos_ = 0, len_ = 0;
    bool eof_ = false;
};

std::vector<std::string_view> fields_of(std::string_view line) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        size_t j = i;
        while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
        if (j > i) out.push_back(line.substr(i, j - i));
        i = j;
    }
    return out;
}

bool number_of(std::string_view s, int64_t& v) {
    if (s.empty() || s.size() > 19 || s[0] < '0' || s[0] > '9') return false;
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    return r.ec == std::errc() && r.ptr == s.data() + s.size() && v >= 0;
}

std::string quoted(std::string_view s) {
    std::string out = "\"";
    for (unsigned char c : s.substr(0, 40)) {
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            out += char(c);
        } else {
            char b[5];
            std::snprintf(b, sizeof b, "\\x%02x", c);
            out += b;
        }
    }
    if (s.size() > 40) out += "...";
    return out + "\"";
}

}  // namespace

std::string SnapshotResult::str() const {
    return file + (line > 0 ? ":" + std::to_string(line) : std::string()) + ": " + message;
}

SnapshotResult MemoryStore::save(const std::string& path, UnixTime now) {
    SnapshotResult res;
    res.file = path;
    // Copy under the lock; format and write without it.
    std::vector<std::pair<Key, Entry>> copy;
    {
        auto t = table_.lock();
        copy.reserve(t->size());
        for (const auto& [k, e] : t->entries())
            if (e.expires >= now) copy.emplace_back(k, e);
    }
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (fd.fd < 0) {
        res.status = SnapshotResult::Status::io_error;
        res.message = "cannot create " + tmp + ": " + errno_text(errno);
        return res;
    }
    auto fail = [&](const char* what) {
        int e = errno;
        ::unlink(tmp.c_str());
        res.status = SnapshotResult::Status::io_error;
        res.message = std::string("cannot ") + what + " " + tmp + ": " + errno_text(e);
        return res;
    };
    std::string out;
    out.reserve(1 << 20);
    out.append(header).append("\n# regmilter greylisting and rate-limit state; times are unix seconds\n");
    for (const auto& [k, e] : copy) {
        static const char digits[] = "0123456789abcdef";
        out += char(k.kind);
        out += ' ';
        for (uint8_t byte : k.digest) {
            out += digits[byte >> 4];
            out += digits[byte & 15];
        }
        out += ' ';
        append_number(out, e.a);
        out += ' ';
        if (k.kind == KeyKind::triplet) {
            append_number(out, e.b);
            out += ' ';
        }
        append_number(out, e.expires);
        out += '\n';
        if (out.size() >= (1 << 20) - 128) {
            if (!write_all(fd.fd, out.data(), out.size())) return fail("write");
            out.clear();
        }
    }
    out += "end ";
    append_number(out, int64_t(copy.size()));
    out += '\n';
    if (!write_all(fd.fd, out.data(), out.size())) return fail("write");
    if (::fsync(fd.fd) != 0) return fail("sync");
    if (::close(fd.release()) != 0) return fail("close");
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        res.status = SnapshotResult::Status::io_error;
        res.message = "cannot rename " + tmp + " to " + path + ": " + errno_text(e);
        return res;
    }
    res.entries = copy.size();
    return res;
}

namespace {

// What is wrong with the first line, or nothing.
std::string check_header(std::string_view line) {
    if (line == header) return {};
    auto f = fields_of(line);
    if (f.size() == 2 && f[0] == "regmilter-state")
        return "snapshot version " + quoted(f[1]) + " is not supported (this program reads \"" +
               std::string(header) + "\")";
    return "not a regmilter state snapshot (the first line must be \"" + std::string(header) + "\")";
}

// One record's fields (f[0] is t, c or r) into `key`, `a`, `b` (triplets
// only) and `expires`; what is wrong with them, or nothing.
std::string parse_record(const std::vector<std::string_view>& f, Key& key, int64_t& a, int64_t& b,
                         int64_t& expires) {
    const std::string_view type = f[0];
    size_t want;
    const char* form;
    if (type == "t") {
        want = 5;
        form = "t KEY FIRST_SEEN PASSED_AT EXPIRES";
    } else if (type == "c") {
        want = 4;
        form = "c KEY PASSES EXPIRES";
    } else if (type == "r") {
        want = 4;
        form = "r KEY VALUE EXPIRES";
    } else {
        return "unknown record type " + quoted(type) + " (want t, c, r or end)";
    }
    if (f.size() != want)
        return "a record has " + std::to_string(want) + " fields: " + form + "; this one has " +
               std::to_string(f.size());
    char text[34];
    text[0] = type[0];
    text[1] = ':';
    if (f[1].size() != 32 || (std::memcpy(text + 2, f[1].data(), 32), !Key::parse({text, 34}, key)))
        return "bad key " + quoted(f[1]) + " (want 32 lower-case hex digits)";
    int64_t nums[3] = {0, 0, 0};
    for (size_t i = 2; i < want; ++i)
        if (!number_of(f[i], nums[i - 2]))
            return "bad number " + quoted(f[i]) + " in field " + std::to_string(i + 1) +
                   " (want a decimal 0..9223372036854775807)";
    a = nums[0];
    b = 0;
    expires = nums[1];
    if (key.kind == KeyKind::triplet) {
        b = nums[1];
        expires = nums[2];
        if (b > int64_t(std::numeric_limits<uint32_t>::max()))
            return "passed time " + std::to_string(b) + " is out of range (below 2^32)";
        if (b != 0 && b < a)
            return "passed time " + std::to_string(b) + " is before the first-seen time " + std::to_string(a);
    }
    return {};
}

}  // namespace

SnapshotResult MemoryStore::load(const std::string& path, UnixTime now) {
    SnapshotResult res;
    res.file = path;
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.fd < 0) {
        res.status = errno == ENOENT ? SnapshotResult::Status::missing : SnapshotResult::Status::io_error;
        res.message = "cannot open: " + errno_text(errno);
        return res;
    }
    auto bad = [&](int line, std::string message) {
        res.status = SnapshotResult::Status::malformed;
        res.line = line;
        res.message = std::move(message);
        res.entries = 0;
        res.expired = 0;
        return res;
    };

    Table table(options_.max_entries);
    struct stat st;
    if (::fstat(fd.fd, &st) == 0 && st.st_size > 0)  // a record is at least 40 bytes: no rehash on the way
        table.reserve(std::min<size_t>(options_.max_entries, size_t(st.st_size) / 40));
    LineReader reader(fd.fd);
    std::string_view line;
    int lineno = 0;
    size_t records = 0;
    bool ended = false;
    for (;;) {
        auto got = reader.next(line);
        if (got == LineReader::Got::eof) break;
        ++lineno;
        if (got == LineReader::Got::error) {
            res.status = SnapshotResult::Status::io_error;
            res.line = lineno;
            res.message = "read error: " + errno_text(errno);
            return res;
        }
        if (got == LineReader::Got::too_long)
            return bad(lineno, "line longer than " + std::to_string(max_line) + " bytes");
        if (line.find('\0') != std::string_view::npos) return bad(lineno, "NUL byte in the line");
        if (lineno == 1) {
            std::string why = check_header(line);
            if (!why.empty()) return bad(1, why);
            continue;
        }
        auto f = fields_of(line);
        if (f.empty() || f[0][0] == '#') continue;
        if (ended) return bad(lineno, "text after the end line");
        if (f[0] == "end") {
            int64_t n;
            if (f.size() != 2 || !number_of(f[1], n)) return bad(lineno, "the end line is \"end COUNT\"");
            if (uint64_t(n) != records)
                return bad(lineno, "the end line counts " + std::to_string(n) + " records, the file has " +
                                       std::to_string(records) + ": the snapshot is damaged");
            ended = true;
            continue;
        }
        Key key;
        int64_t a, b, expires;
        std::string why = parse_record(f, key, a, b, expires);
        if (!why.empty()) return bad(lineno, why);
        ++records;
        if (expires < now) {
            ++res.expired;
            continue;
        }
        // (A duplicate of an expired or evicted entry goes unnoticed: harmless.)
        if (!table.add(key, expires, a, uint32_t(b)))
            return bad(lineno, "duplicate key " + std::string(f[1]));
    }
    if (lineno == 0) return bad(1, "empty file (the first line must be \"" + std::string(header) + "\")");
    if (!ended) return bad(lineno + 1, "no end line: the snapshot is truncated");
    res.entries = table.size();
    *table_.lock() = std::move(table);
    return res;
}

}  // namespace regmilter::state
