// util: the command-line conventions of every regmilter program, once:
// getopt_long with "--opt VALUE" and "--opt=VALUE", "-h"/"--help" (usage on
// stdout, exit 0), "-V"/"--version" (exit 0), and usage errors as
// "PROGRAM: what is wrong" plus the usage on stderr with exit status 2.
// Not thread-safe (getopt's globals): call from main() only.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace regmilter::util {

struct CliOption {
    const char* long_name;  // "config" for --config
    char short_name;        // 'c' for -c; 0 for none
    bool has_value;
    int id;  // handed to the callback
};

class Cli {
public:
    Cli(std::string program, std::string usage) : program_(std::move(program)), usage_(std::move(usage)) {}

    // Calls `on(id, value)` for each option in order (value null for flags)
    // and returns the other arguments in order. --help and --version are
    // answered here; a bad option ends the program with status 2.
    std::vector<std::string> parse(int argc, char** argv, const std::vector<CliOption>& options,
                                   const std::function<void(int id, const char* value)>& on) const;

    // "PROGRAM: why" and the usage on stderr, exit 2.
    [[noreturn]] void fail(const std::string& why) const;
    // A whole number in lo..hi, or fail() naming the option.
    long number(const std::string& option, const char* text, long lo, long hi) const;

private:
    std::string program_, usage_;
};

}  // namespace regmilter::util
