// util: small file helpers every reader of a file shares — a file's identity
// stamp (to notice a change) and reading a whole file (a directory or an I/O
// error is an error, never an empty text). Writing a file whole or not at
// all is util::AtomicFile (atomic_file.hpp). Errors are values (strerror
// text), never exceptions. Thread-safe (no shared state).
#pragma once

#include <string>

namespace regmilter::util {

// A file's identity and version, to notice that it was replaced or changed.
struct FileStamp {
    unsigned long long inode = 0, size = 0;
    long long mtime_ns = 0;
    bool exists = false;
    int error = 0;  // errno of stat() when !exists
    bool operator==(const FileStamp& o) const {
        return inode == o.inode && size == o.size && mtime_ns == o.mtime_ns && exists == o.exists;
    }
    bool operator!=(const FileStamp& o) const { return !(*this == o); }
};
FileStamp stamp_of(const std::string& path);

// The whole file into `out`. False and `error` set to strerror's text ("No
// such file or directory", "Is a directory") otherwise; `out` is then
// unchanged.
bool read_file(const std::string& path, std::string& out, std::string& error);

}  // namespace regmilter::util
