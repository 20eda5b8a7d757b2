// util: AtomicFile -- the whole file or the old one, never a part; read_file.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "util/atomic_file.hpp"
#include "util/file.hpp"

using namespace regmilter;

namespace {

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

int entries_in(const std::string& dir) {
    int n = 0;
    DIR* d = opendir(dir.c_str());
    while (dirent* e = readdir(d))
        if (e->d_name[0] != '.') ++n;
    closedir(d);
    return n;
}

struct TempDir {
    std::string path;
    TempDir() {
        char t[] = "/tmp/regmilter-atomic-XXXXXX";
        REQUIRE(mkdtemp(t));
        path = t;
    }
    ~TempDir() {
        DIR* d = opendir(path.c_str());
        while (dirent* e = readdir(d))
            if (e->d_name[0] != '.') std::remove((path + "/" + e->d_name).c_str());
        closedir(d);
        rmdir(path.c_str());
    }
};

}  // namespace

TEST_CASE("AtomicFile: commit replaces, no commit leaves the old file", "[util][atomic_file]") {
    TempDir dir;
    const std::string path = dir.path + "/zone";
    {
        util::AtomicFile f(path);
        REQUIRE(f.ok());
        f.stream() << "old\n";
        REQUIRE(f.commit());
    }
    CHECK(slurp(path) == "old\n");
    struct stat st {};
    REQUIRE(stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) != 0600);  // a plain file's mode, not mkstemp's
    {
        util::AtomicFile f(path);
        f.stream() << std::string(3 << 20, 'x');  // more than one buffer
        CHECK(entries_in(dir.path) == 2);         // the temporary beside the file
    }                                             // abandoned: removed
    CHECK(slurp(path) == "old\n");
    CHECK(entries_in(dir.path) == 1);
    {
        util::AtomicFile f(path);
        f.stream() << std::string(3 << 20, 'y');
        REQUIRE(f.commit());
    }
    CHECK(slurp(path).size() == size_t(3 << 20));
    CHECK(entries_in(dir.path) == 1);
}

TEST_CASE("AtomicFile: a directory that does not exist is an error, not a crash", "[util][atomic_file]") {
    util::AtomicFile f("/nonexistent-dir-regmilter/zone");
    CHECK_FALSE(f.ok());
    CHECK(f.error().find("cannot create a temporary file beside /nonexistent-dir-regmilter/zone") == 0);
    f.stream() << "ignored";
    CHECK_FALSE(f.commit());
}

TEST_CASE("read_file: the bytes, or why not (never an empty text for a directory)", "[util][read_file]") {
    TempDir dir;
    const std::string path = dir.path + "/f";
    {
        std::ofstream out(path, std::ios::binary);
        out << std::string("a\0b", 3) << std::string(200000, 'z');
    }
    std::string text, error;
    REQUIRE(util::read_file(path, text, error));
    CHECK(text.size() == 200003);
    CHECK(text.substr(0, 3) == std::string("a\0b", 3));
    text = "unchanged";
    CHECK_FALSE(util::read_file(dir.path, text, error));
    CHECK(error == "Is a directory");
    CHECK(text == "unchanged");
    CHECK_FALSE(util::read_file(dir.path + "/missing", text, error));
    CHECK(error == "No such file or directory");
}
