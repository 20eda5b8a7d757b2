// util: a whole file into memory, with the reason when it cannot be read
// (a directory, a permission, an I/O error: never an empty text instead).
// No state; thread-safe.
#pragma once

#include <string>

namespace regmilter::util {

// True and `text` set to the file's bytes; false and `error` set to
// strerror's text ("Is a directory", "No such file or directory") otherwise.
bool read_file(const std::string& path, std::string& text, std::string& error);

}  // namespace regmilter::util
