// t/support/yaml: reads the YAML subset of the openspf suite (documents, block
// maps and sequences, flow sequences, quoted/plain/block scalars, comments).
// Test support only: no anchors, tags or flow maps. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace regmilter::yaml {

struct Node {
    enum class Kind { null, scalar, seq, map };
    Kind kind = Kind::null;
    std::string value;                                  // scalar
    std::vector<Node> items;                            // seq
    std::vector<std::pair<std::string, Node>> entries;  // map, in document order

    bool is_null() const { return kind == Kind::null; }
    bool is_scalar() const { return kind == Kind::scalar; }
    bool is_seq() const { return kind == Kind::seq; }
    bool is_map() const { return kind == Kind::map; }
    // The value of `key` in a map, or nullptr (also for non-maps).
    const Node* get(std::string_view key) const;
};

struct Documents {
    std::vector<Node> docs;
    std::string error;  // "line N: why" when the text could not be read
    bool ok() const { return error.empty(); }
};

Documents parse(std::string_view text);

}  // namespace regmilter::yaml
