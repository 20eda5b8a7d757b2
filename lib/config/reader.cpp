#include "config/reader.hpp"

#include <ini.h>

#include <cstring>

#include "util/strings.hpp"

namespace regmilter::config {

namespace {

struct Line {
    int no;
    std::string text;
};

struct ReadState {
    std::vector<Line> lines;
    size_t next = 0;
    int current = 0;            // line number last handed to inih
    bool continuation = false;  // that line continues the previous key
    bool have_key = false;      // a key was seen in this section (continuations are possible)
    std::string section;        // the current section as we parsed it (inih cuts long names)
    IniFile out;
    std::string file;

    void problem(int line, std::string message) { out.problems.push_back({file, line, std::move(message)}); }
};

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r';
}

// Section text as compared: trimmed, inner blanks collapsed to one space.
std::string norm_section(std::string_view s) {
    std::string out;
    bool space = false;
    for (char c : util::trim(s)) {
        if (is_space(c)) {
            space = true;
            continue;
        }
        if (space) out += ' ';
        space = false;
        out += c;
    }
    return out;
}

// Looks at one line before inih does. Returns the text inih gets: the line
// itself, or "" for a line already reported (inih then sees a blank line).
std::string classify(ReadState& st, const Line& l, size_t room) {
    std::string text = l.text;
    std::string t(util::trim(text));
    bool blank = t.empty() || t[0] == '#' || t[0] == ';';
    if (text.size() + 2 > room) {
        if (blank) return {};
        st.problem(l.no, "line is longer than " + std::to_string(room - 2) +
                             " characters; continue a long list on indented lines");
        if (t[0] == '[') {  // a section all the same: its keys are not another section's
            st.section = "line " + std::to_string(l.no);
            st.out.sections.push_back({st.section, l.no, true});
            st.have_key = false;
        }
        return {};
    }
    if (blank) return text;
    if (is_space(text[0]) && st.have_key) {
        st.continuation = true;
        return text;
    }
    if (t[0] == '[') {
        auto close = t.find(']');
        if (close == std::string::npos) {
            st.problem(l.no, "section header without ']'");
            return {};
        }
        IniSection sec{norm_section(std::string_view(t).substr(1, close - 1)), l.no};
        if (sec.name.size() > max_section_length) {
            st.problem(l.no, "section name \"" + sec.name.substr(0, max_section_length) +
                                 "...\" is longer than " + std::to_string(max_section_length) +
                                 " characters");
            sec.name = "line " + std::to_string(l.no);
            sec.reported = true;
        }
        st.section = sec.name;
        st.out.sections.push_back(std::move(sec));
        st.have_key = false;
        return text;
    }
    if (t.find('=') == std::string::npos && t.find(':') == std::string::npos) {
        st.problem(l.no, (st.section.empty() ? "" : "[" + st.section + "]: ") + "\"" + t +
                             "\" is not a `key = value` line");
        return {};
    }
    return text;
}

// fgets-style reader for ini_parse_stream: hands inih one line at a time so
// the handler knows the line number.
char* reader(char* str, int num, void* stream) {
    auto* st = static_cast<ReadState*>(stream);
    if (st->next >= st->lines.size()) return nullptr;
    const Line& l = st->lines[st->next++];
    st->current = l.no;
    st->continuation = false;
    std::string text = classify(*st, l, size_t(num));
    std::memcpy(str, text.data(), text.size());
    str[text.size()] = '\n';
    str[text.size() + 1] = '\0';
    return str;
}

int handler(void* user, const char*, const char* name, const char* value) {
    auto* st = static_cast<ReadState*>(user);
    if (st->continuation && !st->out.entries.empty()) {
        st->out.entries.back().values.push_back(value);
    } else {
        st->out.entries.push_back(IniEntry{st->section, name, {value}, st->current});
        st->have_key = true;
    }
    return 1;
}

}  // namespace

IniFile read_ini(std::string_view text, const std::string& file) {
    ReadState st;
    st.file = file;
    int no = 0;
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t nl = text.find('\n', pos);
        std::string_view l =
            text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        ++no;
        if (l.find('\0') != std::string_view::npos) {
            st.problem(no, "NUL byte in line");
            l = {};
        }
        if (!(nl == std::string_view::npos && l.empty())) st.lines.push_back({no, std::string(l)});
        if (nl == std::string_view::npos) break;
        pos = nl + 1;
    }
    ini_parse_stream(reader, &st, handler, &st);
    return std::move(st.out);
}

}  // namespace regmilter::config
