// util: small file helpers every reader of a file shares — a file's identity
// stamp (to notice a change), reading a whole file, and replacing a file
// atomically (write a temporary file, fsync, rename). Errors are values
// (strerror text), never exceptions. Thread-safe (no shared state).
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

// The whole file into `out`. False and `error` ("cannot read: No such file or
// directory", "is a directory") on failure.
bool read_file(const std::string& path, std::string& out, std::string& error);

// Replaces `path` with `data`: written to a temporary file in the same
// directory, flushed to disk, renamed over `path`, so that a reader sees the
// old or the new file, never a half-written one. `mode` for a new file.
// False and `error` on failure (the temporary file is removed).
bool write_file_atomic(const std::string& path, const std::string& data, std::string& error,
                       unsigned mode = 0644);

}  // namespace regmilter::util
