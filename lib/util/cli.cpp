#include "util/cli.hpp"

#include <getopt.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "util/version.hpp"

namespace regmilter::util {

namespace {
constexpr int help_id = -1000, version_id = -1001;
}

void Cli::fail(const std::string& why) const {
    if (!why.empty()) std::fprintf(stderr, "%s: %s\n", program_.c_str(), why.c_str());
    std::fputs(usage_.c_str(), stderr);
    std::exit(2);
}

long Cli::number(const std::string& option, const char* text, long lo, long hi) const {
    char* end = nullptr;
    errno = 0;
    long v = std::strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi)
        fail(option + ": \"" + text + "\" is not a number from " + std::to_string(lo) + " to " +
             std::to_string(hi));
    return v;
}

std::vector<std::string> Cli::parse(int argc, char** argv, const std::vector<CliOption>& options,
                                    const std::function<void(int, const char*)>& on) const {
    std::vector<option> longs;
    std::string shorts = ":hV";  // ':' first: a missing value is told apart from an unknown option
    for (const auto& o : options) {
        longs.push_back({o.long_name, o.has_value ? required_argument : no_argument, nullptr, o.id});
        if (o.short_name) {
            shorts += o.short_name;
            if (o.has_value) shorts += ':';
        }
    }
    longs.push_back({"help", no_argument, nullptr, help_id});
    longs.push_back({"version", no_argument, nullptr, version_id});
    longs.push_back({nullptr, 0, nullptr, 0});
    opterr = 0;
    optind = 1;
    for (;;) {
        int index = -1;
        int c = getopt_long(argc, argv, shorts.c_str(), longs.data(), &index);
        if (c == -1) break;
        const char* seen = argv[optind - 1];
        if (c == 'h' || c == help_id) {
            std::fputs(usage_.c_str(), stdout);
            std::exit(0);
        }
        if (c == 'V' || c == version_id) {
            std::printf("%s %s\n", program_.c_str(), version);
            std::exit(0);
        }
        if (c == ':' || c == '?') {
            // The option as written: "--name" (without "=value"), or "-x".
            std::string name =
                std::strncmp(seen, "--", 2) == 0 ? std::string(seen) : std::string("-") + char(optopt);
            name = name.substr(0, name.find('='));
            fail(c == ':' ? name + " needs a value" : "unknown option \"" + name + "\"");
        }
        int id = c;
        for (const auto& o : options)
            if (o.short_name == c) id = o.id;
        on(id, optarg);
    }
    return std::vector<std::string>(argv + optind, argv + argc);
}

}  // namespace regmilter::util
