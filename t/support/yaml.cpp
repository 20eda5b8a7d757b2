#include "yaml.hpp"

#include <stdexcept>

namespace regmilter::yaml {

const Node* Node::get(std::string_view key) const {
    if (kind != Kind::map) return nullptr;
    for (const auto& e : entries)
        if (e.first == key) return &e.second;
    return nullptr;
}

namespace {

struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

void append_utf8(std::string& out, unsigned long cp) {
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xc0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out += char(0xe0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3f));
        out += char(0x80 | (cp & 0x3f));
    } else {
        out += char(0xf0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3f));
        out += char(0x80 | ((cp >> 6) & 0x3f));
        out += char(0x80 | (cp & 0x3f));
    }
}

int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

class Parser {
public:
    explicit Parser(std::vector<std::string> lines, size_t first_line)
        : lines_(std::move(lines)), first_line_(first_line) {}

    Node document() {
        Node n = node(0);
        skip_insignificant();
        if (pos_ < lines_.size()) fail("unexpected content");
        return n;
    }

private:
    [[noreturn]] void fail(const std::string& why) const {
        throw Error("line " + std::to_string(first_line_ + pos_) + ": " + why);
    }

    static size_t indent_of(const std::string& l) {
        size_t i = 0;
        while (i < l.size() && l[i] == ' ') ++i;
        return i;
    }

    static bool insignificant(const std::string& l) {
        std::string_view t = trim(l);
        return t.empty() || t.front() == '#';
    }

    void skip_insignificant() {
        while (pos_ < lines_.size() && insignificant(lines_[pos_])) ++pos_;
    }

    static bool is_seq_line(std::string_view content) {
        return content == "-" || (content.size() >= 2 && content[0] == '-' && content[1] == ' ');
    }

    // A block node whose lines are indented at least `min_indent`.
    Node node(size_t min_indent) {
        skip_insignificant();
        if (pos_ >= lines_.size()) return Node{};
        size_t ind = indent_of(lines_[pos_]);
        if (ind < min_indent) return Node{};
        std::string_view content = std::string_view(lines_[pos_]).substr(ind);
        if (is_seq_line(content)) return seq(ind);
        return map(ind);
    }

    Node seq(size_t ind) {
        Node n;
        n.kind = Node::Kind::seq;
        for (;;) {
            skip_insignificant();
            if (pos_ >= lines_.size()) break;
            std::string& line = lines_[pos_];
            if (indent_of(line) != ind || !is_seq_line(std::string_view(line).substr(ind))) break;
            std::string_view rest = trim(std::string_view(line).substr(ind + 1));
            if (rest.empty() || rest.front() == '#') {
                ++pos_;
                n.items.push_back(node(ind + 1));
                continue;
            }
            size_t col = line.find_first_not_of(' ', ind + 1);
            if (looks_like_map_entry(rest)) {
                // "- key: value": the item is a map starting at the key's column.
                line.replace(ind, col - ind, col - ind, ' ');
                n.items.push_back(map(col));
                continue;
            }
            ++pos_;
            n.items.push_back(value(rest, ind));
        }
        return n;
    }

    // s starts with ' or ": the position of its closing quote, or npos.
    // Double quotes escape with a backslash, single quotes by doubling.
    static size_t closing_quote(std::string_view s) {
        char q = s.front();
        for (size_t i = 1; i < s.size(); ++i) {
            if (q == '"' && s[i] == '\\') {
                ++i;
                continue;
            }
            if (s[i] == q) {
                if (q == '\'' && i + 1 < s.size() && s[i + 1] == '\'') {
                    ++i;
                    continue;
                }
                return i;
            }
        }
        return std::string_view::npos;
    }

    // Position of the ':' ending a plain or quoted key, or npos.
    static size_t key_end(std::string_view s) {
        if (s.empty()) return std::string_view::npos;
        if (s.front() == '"' || s.front() == '\'') {
            size_t j = closing_quote(s);
            if (j == std::string_view::npos) return j;
            ++j;
            while (j < s.size() && s[j] == ' ') ++j;
            return j < s.size() && s[j] == ':' ? j : std::string_view::npos;
        }
        if (s.front() == '[' || s.front() == '{') return std::string_view::npos;
        for (size_t i = 0; i < s.size(); ++i) {
            if (s[i] == '#' && i > 0 && s[i - 1] == ' ') return std::string_view::npos;
            if (s[i] == ':' && (i + 1 == s.size() || s[i + 1] == ' ')) return i;
        }
        return std::string_view::npos;
    }

    static bool looks_like_map_entry(std::string_view s) { return key_end(s) != std::string_view::npos; }

    std::string key_text(std::string_view k) {
        k = trim(k);
        if (!k.empty() && (k.front() == '"' || k.front() == '\'')) {
            size_t used = 0;
            std::string out = quoted(k, used);
            return out;
        }
        return std::string(k);
    }

    Node map(size_t ind) {
        Node n;
        n.kind = Node::Kind::map;
        for (;;) {
            skip_insignificant();
            if (pos_ >= lines_.size()) break;
            const std::string& line = lines_[pos_];
            if (indent_of(line) != ind) {
                if (indent_of(line) > ind) fail("unexpected indentation");
                break;
            }
            std::string_view content = std::string_view(line).substr(ind);
            if (is_seq_line(content)) break;
            size_t colon = key_end(content);
            if (colon == std::string_view::npos) fail("expected \"key: value\"");
            std::string key = key_text(content.substr(0, colon));
            std::string_view rest = trim(content.substr(colon + 1));
            ++pos_;
            Node v;
            if (rest.empty() || rest.front() == '#') {
                skip_insignificant();
                if (pos_ < lines_.size() && indent_of(lines_[pos_]) == ind &&
                    is_seq_line(std::string_view(lines_[pos_]).substr(ind)))
                    v = seq(ind);
                else
                    v = node(ind + 1);
            } else if (rest.front() == '|' || rest.front() == '>') {
                v = block_scalar(rest, ind);
            } else {
                v = value(rest, ind);
            }
            n.entries.emplace_back(std::move(key), std::move(v));
        }
        return n;
    }

    Node block_scalar(std::string_view header, size_t parent) {
        bool folded = header.front() == '>';
        bool strip = header.find('-') != std::string_view::npos;
        bool keep = header.find('+') != std::string_view::npos;
        std::vector<std::string> body;
        size_t block_indent = 0;
        while (pos_ < lines_.size()) {
            const std::string& l = lines_[pos_];
            if (trim(l).empty()) {
                body.emplace_back();
                ++pos_;
                continue;
            }
            size_t ind = indent_of(l);
            if (ind <= parent) break;
            if (block_indent == 0) block_indent = ind;
            if (ind < block_indent) break;
            body.push_back(l.substr(block_indent));
            ++pos_;
        }
        size_t trailing = 0;
        while (!body.empty() && body.back().empty()) {
            body.pop_back();
            ++trailing;
        }
        std::string out;
        for (size_t i = 0; i < body.size(); ++i) {
            if (i > 0) {
                bool join_space = folded && !body[i].empty() && !body[i - 1].empty() &&
                                  body[i].front() != ' ' && body[i - 1].front() != ' ';
                out += join_space ? ' ' : '\n';
            }
            out += body[i];
        }
        if (!body.empty() && !strip) out += keep ? std::string(trailing + 1, '\n') : "\n";
        Node n;
        n.kind = Node::Kind::scalar;
        n.value = std::move(out);
        return n;
    }

    // A scalar or flow sequence starting with `text` (the rest of the current
    // line, already consumed); may continue on more-indented lines.
    Node value(std::string_view text, size_t parent) {
        Node n;
        if (text.front() == '[') {
            std::string flow(text);
            while (flow_open(flow)) {
                if (pos_ >= lines_.size()) fail("unterminated flow sequence");
                flow += ' ';
                flow += trim(lines_[pos_++]);
            }
            return flow_seq(flow);
        }
        n.kind = Node::Kind::scalar;
        if (text.front() == '"' || text.front() == '\'') {
            std::string joined(text);
            size_t used = 0;
            while (!quote_closed(joined)) {
                if (pos_ >= lines_.size()) fail("unterminated quoted scalar");
                joined += ' ';
                joined += trim(lines_[pos_++]);
            }
            n.value = quoted(joined, used);
            std::string_view after = trim(std::string_view(joined).substr(used));
            if (!after.empty() && after.front() != '#') fail("text after a quoted scalar");
            return n;
        }
        std::string v(plain(text));
        // A plain scalar continues on lines indented deeper than its parent.
        while (pos_ < lines_.size()) {
            const std::string& l = lines_[pos_];
            if (insignificant(l) || indent_of(l) <= parent) break;
            v += ' ';
            v += plain(trim(l));
            ++pos_;
        }
        if (v == "~" || v == "null") return Node{};
        n.value = std::move(v);
        return n;
    }

    static std::string_view plain(std::string_view s) {
        for (size_t i = 0; i < s.size(); ++i)
            if (s[i] == '#' && (i == 0 || s[i - 1] == ' ')) return trim(s.substr(0, i));
        return trim(s);
    }

    static bool quote_closed(std::string_view s) { return closing_quote(s) != std::string_view::npos; }

    static bool flow_open(std::string_view s) {
        int depth = 0;
        char q = 0;
        for (size_t i = 0; i < s.size(); ++i) {
            char c = s[i];
            if (q) {
                if (q == '"' && c == '\\')
                    ++i;
                else if (c == q)
                    q = 0;
                continue;
            }
            if (c == '"' || c == '\'')
                q = c;
            else if (c == '[')
                ++depth;
            else if (c == ']')
                --depth;
        }
        return depth > 0;
    }

    // Unquote the quoted scalar at the start of `s`; `used` gets its length.
    std::string quoted(std::string_view s, size_t& used) {
        char q = s.front();
        std::string out;
        for (size_t i = 1; i < s.size(); ++i) {
            char c = s[i];
            if (q == '\'') {
                if (c == '\'') {
                    if (i + 1 < s.size() && s[i + 1] == '\'') {
                        out += '\'';
                        ++i;
                        continue;
                    }
                    used = i + 1;
                    return out;
                }
                out += c;
                continue;
            }
            if (c == '"') {
                used = i + 1;
                return out;
            }
            if (c != '\\') {
                out += c;
                continue;
            }
            if (++i >= s.size()) fail("backslash at the end of a quoted scalar");
            char e = s[i];
            switch (e) {
                case '0':
                    out += '\0';
                    break;
                case 'a':
                    out += '\a';
                    break;
                case 'b':
                    out += '\b';
                    break;
                case 't':
                case '\t':
                    out += '\t';
                    break;
                case 'n':
                    out += '\n';
                    break;
                case 'v':
                    out += '\v';
                    break;
                case 'f':
                    out += '\f';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case 'e':
                    out += '\x1b';
                    break;
                case ' ':
                    out += ' ';
                    break;
                case '"':
                    out += '"';
                    break;
                case '/':
                    out += '/';
                    break;
                case '\\':
                    out += '\\';
                    break;
                case 'N':
                    append_utf8(out, 0x85);
                    break;
                case '_':
                    append_utf8(out, 0xa0);
                    break;
                case 'L':
                    append_utf8(out, 0x2028);
                    break;
                case 'P':
                    append_utf8(out, 0x2029);
                    break;
                case 'x':
                case 'u':
                case 'U': {
                    size_t digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                    unsigned long v = 0;
                    for (size_t k = 0; k < digits; ++k) {
                        int h = i + 1 < s.size() ? hexval(s[i + 1]) : -1;
                        if (h < 0) fail("bad \\" + std::string(1, e) + " escape");
                        v = v << 4 | unsigned(h);
                        ++i;
                    }
                    if (e == 'x')
                        out += char(v);  // a raw byte, as the suite means it
                    else
                        append_utf8(out, v);
                    break;
                }
                default:
                    fail(std::string("unknown escape \\") + e);
            }
        }
        fail("unterminated quoted scalar");
    }

    Node flow_seq(std::string_view s) {
        Node n;
        n.kind = Node::Kind::seq;
        size_t i = 1;  // after '['
        for (;;) {
            while (i < s.size() && s[i] == ' ') ++i;
            if (i >= s.size()) fail("unterminated flow sequence");
            if (s[i] == ']') {
                std::string_view after = trim(s.substr(i + 1));
                if (!after.empty() && after.front() != '#') fail("text after a flow sequence");
                return n;
            }
            Node item;
            item.kind = Node::Kind::scalar;
            if (s[i] == '"' || s[i] == '\'') {
                size_t used = 0;
                item.value = quoted(s.substr(i), used);
                i += used;
            } else {
                size_t end = s.find_first_of(",]", i);
                if (end == std::string_view::npos) fail("unterminated flow sequence");
                item.value = std::string(trim(s.substr(i, end - i)));
                i = end;
            }
            n.items.push_back(std::move(item));
            while (i < s.size() && s[i] == ' ') ++i;
            if (i < s.size() && s[i] == ',')
                ++i;
            else if (i < s.size() && s[i] != ']')
                fail("expected \",\" or \"]\" in a flow sequence");
        }
    }

    std::vector<std::string> lines_;
    size_t first_line_;
    size_t pos_ = 0;
};

}  // namespace

Documents parse(std::string_view text) {
    Documents out;
    std::vector<std::string> lines;
    size_t first = 1, lineno = 0;
    auto finish = [&] {
        bool content = false;
        for (const auto& l : lines) {
            std::string_view t = trim(l);
            if (!t.empty() && t.front() != '#') content = true;
        }
        if (content) {
            Parser p(std::move(lines), first);
            out.docs.push_back(p.document());
        }
        lines.clear();
    };
    try {
        size_t start = 0;
        while (start <= text.size()) {
            size_t nl = text.find('\n', start);
            std::string_view line =
                text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
            ++lineno;
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            if (line == "---" || line.substr(0, 4) == "--- ") {
                finish();
                first = lineno + 1;
            } else {
                lines.emplace_back(line);
            }
            if (nl == std::string_view::npos) break;
            start = nl + 1;
        }
        finish();
    } catch (const Error& e) {
        out.error = e.what();
        out.docs.clear();
    }
    return out;
}

}  // namespace regmilter::yaml
