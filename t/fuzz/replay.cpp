// t/fuzz replay driver: runs one fuzz target (its LLVMFuzzerTestOneInput)
// once on each file named, and on every file below each directory named,
// without libFuzzer -- how make check replays the corpora with any compiler
// (and, built with SANITIZE=address,undefined, sanitized). Each input is
// handed over in a buffer of exactly its size, so a read past its end is
// caught by ASan as under libFuzzer.
//   NAME [-v] FILE|DIR...    -v: print each file before running it
// Exit 0 when every input ran (a failed property or a sanitizer report
// aborts the process), 2 when a file cannot be read.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
    namespace fs = std::filesystem;
    bool verbose = false;
    std::vector<std::string> files;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "-v") {
            verbose = true;
            continue;
        }
        std::error_code ec;
        if (fs::is_directory(a, ec)) {
            for (const auto& e : fs::recursive_directory_iterator(a, ec))
                if (e.is_regular_file()) files.push_back(e.path().string());
        } else {
            files.push_back(a);
        }
    }
    std::sort(files.begin(), files.end());
    for (const std::string& f : files) {
        std::ifstream in(f, std::ios::binary);
        if (!in) {
            std::fprintf(stderr, "%s: cannot read %s\n", argv[0], f.c_str());
            return 2;
        }
        std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (verbose) std::fprintf(stderr, "%s: %s (%zu bytes)\n", argv[0], f.c_str(), bytes.size());
        auto buf = std::make_unique<uint8_t[]>(bytes.size() + (bytes.empty() ? 1 : 0));
        std::memcpy(buf.get(), bytes.data(), bytes.size());
        LLVMFuzzerTestOneInput(buf.get(), bytes.size());
    }
    std::printf("%s: %zu inputs replayed\n", fs::path(argv[0]).filename().c_str(), files.size());
    return 0;
}
