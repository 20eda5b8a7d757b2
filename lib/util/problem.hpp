// util: the one shape every file parser returns: a value, or every problem
// found, each with FILE:LINE. Decides nothing; values are immutable once
// returned (share them between threads).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace regmilter::util {

// One problem in a file. line 0: about the file as a whole (cannot be read).
struct Problem {
    std::string file;
    int line = 0;
    std::string message;
    // "FILE:LINE: message" ("FILE: message" for line 0).
    std::string str() const {
        return file + (line > 0 ? ":" + std::to_string(line) : std::string()) + ": " + message;
    }
};

// A parse result: `value` is set exactly when `problems` is empty.
template <class T>
struct Parsed {
    std::shared_ptr<const T> value;
    std::vector<Problem> problems;

    bool ok() const { return value != nullptr; }
};

}  // namespace regmilter::util
