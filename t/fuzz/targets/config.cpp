// Fuzz target: the configuration parser and validator (lib/config) -- the
// input is an ini file. Properties: never a throw or an abort; a file is
// either a Config or problems, each with a message, a line of the file
// (0 = the file as a whole) and the file's name first.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "config/config.hpp"
#include "t/fuzz/fuzz.hpp"

using namespace regmilter;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text = fuzz::as_text(data, size);
    config::LoadResult r = config::load_string(text, "fuzz.ini");
    FUZZ_CHECK(bool(r.value) == r.problems.empty(), std::to_string(r.problems.size()) + " problems");
    int lines = int(std::count(text.begin(), text.end(), '\n')) + 1;
    for (const util::Problem& p : r.problems) {
        FUZZ_CHECK(!p.message.empty(), p.str());
        FUZZ_CHECK(p.line >= 0 && p.line <= lines, p.str());
        FUZZ_CHECK(p.file == "fuzz.ini", p.str());
    }
    if (r.value) {
        for (const auto& reg : r.value->registries)
            FUZZ_CHECK(!reg.zone.empty(), "[registry " + reg.name + "]");
        FUZZ_CHECK(r.value->source == "fuzz.ini", r.value->source);
    }
    return 0;
}
