// util: a file written whole or not at all. The text goes to a temporary file
// in the target's directory; commit() flushes it to disk and renames it over
// the target, so a reader (NSD, rbldnsd, a zone transfer) sees the old file or
// the new one, never a part. Without commit() the temporary is removed.
// One AtomicFile per thread; no shared state.
#pragma once

#include <memory>
#include <ostream>
#include <string>

namespace regmilter::util {

class AtomicFile {
public:
    // Creates "PATH.tmp.XXXXXX" beside PATH (mode 0666 less the umask, as a
    // plain new file). ok() is false and error() says why when it cannot.
    explicit AtomicFile(std::string path);
    ~AtomicFile();  // removes the temporary unless committed
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    bool ok() const { return error_.empty(); }
    const std::string& error() const { return error_; }
    // Buffered; a write error is reported by commit().
    std::ostream& stream();
    // Flush, fsync, close and rename over PATH. False (and error() set, the
    // temporary removed, PATH untouched) on any failure.
    bool commit();

private:
    class Buf;
    std::string path_, tmp_;
    std::string error_;
    std::unique_ptr<Buf> buf_;
    std::unique_ptr<std::ostream> stream_;
    int fd_ = -1;
    bool committed_ = false;
};

}  // namespace regmilter::util
