// json-get: prints one value from the JSON document on stdin, for shell tests.
//
//   json-get PATH < file.json
//
// PATH is dot-separated keys and array indexes: "spf.result", "registry.0.status"
// (or "registry[0].status"), "verdicts.#" (the length of an array or object).
// Strings print unescaped (\u00XX back to the byte it stands for), numbers,
// true/false/null, objects and arrays as written in the input. A newline follows.
// Exit: 0 found, 1 no such path, 2 bad usage or invalid JSON.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

namespace {

struct Parser {
    explicit Parser(const std::string& text, size_t at = 0) : s(text), i(at) {}
    const std::string& s;
    size_t i;
    std::string error;

    void ws() {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
    }
    bool fail(const std::string& why) {
        if (error.empty()) error = why + " at offset " + std::to_string(i);
        return false;
    }
    static void put_utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out.push_back(char(cp));
        } else if (cp < 0x800) {
            out.push_back(char(0xc0 | (cp >> 6)));
            out.push_back(char(0x80 | (cp & 0x3f)));
        } else if (cp < 0x10000) {
            out.push_back(char(0xe0 | (cp >> 12)));
            out.push_back(char(0x80 | ((cp >> 6) & 0x3f)));
            out.push_back(char(0x80 | (cp & 0x3f)));
        } else {
            out.push_back(char(0xf0 | (cp >> 18)));
            out.push_back(char(0x80 | ((cp >> 12) & 0x3f)));
            out.push_back(char(0x80 | ((cp >> 6) & 0x3f)));
            out.push_back(char(0x80 | (cp & 0x3f)));
        }
    }
    bool hex4(unsigned& v) {
        if (i + 4 > s.size()) return fail("short \\u escape");
        v = 0;
        for (int k = 0; k < 4; ++k) {
            char c = s[i++];
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= unsigned(c - '0');
            else if (c >= 'a' && c <= 'f')
                v |= unsigned(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F')
                v |= unsigned(c - 'A' + 10);
            else
                return fail("bad \\u escape");
        }
        return true;
    }
    // A string at s[i] == '"'; its decoded text into out. \u0000-\u00ff become
    // single bytes (regmilter's writer escapes raw DNS bytes that way).
    bool string(std::string* out) {
        ++i;
        while (i < s.size() && s[i] != '"') {
            char c = s[i++];
            if (c != '\\') {
                if (out) out->push_back(c);
                continue;
            }
            if (i >= s.size()) return fail("unterminated escape");
            char e = s[i++];
            char plain = 0;
            switch (e) {
                case '"':
                    plain = '"';
                    break;
                case '\\':
                    plain = '\\';
                    break;
                case '/':
                    plain = '/';
                    break;
                case 'b':
                    plain = '\b';
                    break;
                case 'f':
                    plain = '\f';
                    break;
                case 'n':
                    plain = '\n';
                    break;
                case 'r':
                    plain = '\r';
                    break;
                case 't':
                    plain = '\t';
                    break;
                case 'u': {
                    unsigned v;
                    if (!hex4(v)) return false;
                    if (v >= 0xd800 && v < 0xdc00 && i + 6 <= s.size() && s[i] == '\\' && s[i + 1] == 'u') {
                        i += 2;
                        unsigned lo;
                        if (!hex4(lo)) return false;
                        v = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
                    }
                    if (out) {
                        if (v < 0x100)
                            out->push_back(char(v));
                        else
                            put_utf8(*out, v);
                    }
                    continue;
                }
                default:
                    return fail("bad escape");
            }
            if (out) out->push_back(plain);
        }
        if (i >= s.size()) return fail("unterminated string");
        ++i;
        return true;
    }
    // Skips (or, with path left, descends into) the value at s[i].
    // On reaching the end of the path, [begin, end) of the value is recorded.
    bool value(const std::vector<std::string>& path, size_t depth, bool& found, size_t& begin, size_t& end,
               long& count) {
        ws();
        if (i >= s.size()) return fail("unexpected end");
        const bool here = depth == path.size();
        const bool want_count = depth < path.size() && depth + 1 == path.size() && path[depth] == "#";
        const size_t start = i;
        char c = s[i];
        if (c == '{' || c == '[') {
            const bool obj = c == '{';
            ++i;
            long n = 0;
            ws();
            if (i < s.size() && s[i] == (obj ? '}' : ']')) {
                ++i;
            } else {
                for (;;) {
                    bool match = false;
                    if (obj) {
                        ws();
                        if (i >= s.size() || s[i] != '"') return fail("expected a key");
                        std::string key;
                        if (!string(&key)) return false;
                        ws();
                        if (i >= s.size() || s[i] != ':') return fail("expected ':'");
                        ++i;
                        match = depth < path.size() && !want_count && path[depth] == key;
                    } else {
                        match = depth < path.size() && !want_count && path[depth] == std::to_string(n);
                    }
                    if (!value(path, match ? depth + 1 : size_t(-1), found, begin, end, count)) return false;
                    ++n;
                    ws();
                    if (i < s.size() && s[i] == ',') {
                        ++i;
                        continue;
                    }
                    if (i < s.size() && s[i] == (obj ? '}' : ']')) {
                        ++i;
                        break;
                    }
                    return fail("expected ',' or a closing bracket");
                }
            }
            if (want_count) {
                found = true;
                count = n;
            }
        } else if (c == '"') {
            if (!string(nullptr)) return false;
        } else {
            while (i < s.size() && std::string(",]} \t\r\n").find(s[i]) == std::string::npos) ++i;
            if (i == start) return fail("unexpected character");
            const std::string word = s.substr(start, i - start);
            if (word != "true" && word != "false" && word != "null" &&
                word.find_first_not_of("-+.eE0123456789") != std::string::npos) {
                return fail("bad literal \"" + word + "\"");
            }
        }
        if (here) {
            found = true;
            begin = start;
            end = i;
        }
        return true;
    }
};

std::vector<std::string> split_path(const std::string& p) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : p) {
        if (c == '.' || c == '[' || c == ']') {
            if (!cur.empty()) out.push_back(cur);
            cur.clear();
        } else {
            cur.push_back(c);
        }
    }
    if (!cur.empty()) out.push_back(cur);
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(
            stderr,
            "usage: json-get PATH < file.json   (PATH like spf.result, registry.0.status, verdicts.#)\n");
        return 2;
    }
    const std::string doc((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    const std::vector<std::string> path = split_path(argv[1]);
    Parser p(doc);
    bool found = false;
    size_t begin = 0, end = 0;
    long count = -1;
    if (!p.value(path, 0, found, begin, end, count)) {
        std::fprintf(stderr, "json-get: invalid JSON: %s\n", p.error.c_str());
        return 2;
    }
    p.ws();
    if (p.i != doc.size()) {
        std::fprintf(stderr, "json-get: invalid JSON: trailing data at offset %zu\n", p.i);
        return 2;
    }
    if (!found) {
        std::fprintf(stderr, "json-get: no %s in the document\n", argv[1]);
        return 1;
    }
    if (count >= 0) {
        std::cout << count << '\n';
        return 0;
    }
    if (doc[begin] == '"') {
        Parser q(doc, begin);
        std::string text;
        q.string(&text);
        std::cout << text << '\n';
    } else {
        std::cout << doc.substr(begin, end - begin) << '\n';
    }
    return 0;
}
