// util: the names of an enum's values, written once beside the enum and used
// for parsing (config), printing (logs, JSON) and documentation (allowed
// values). An enum E opts in with a constexpr array in its own namespace and
//     constexpr util::Names names_of(E) { return e_names; }
// in index order of its values (0, 1, 2, ...). Header-only; thread-safe.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "util/strings.hpp"

namespace regmilter::util {

struct Names {
    const char* const* items = nullptr;
    size_t count = 0;

    constexpr Names() = default;
    template <size_t N>
    constexpr Names(const char* const (&a)[N]) : items(a), count(N) {}

    // "a|b|c" (sep "|"), for "allowed:" texts and man pages.
    std::string joined(std::string_view sep = "|") const {
        std::string out;
        for (size_t i = 0; i < count; ++i) out += (i ? std::string(sep) : std::string()) + items[i];
        return out;
    }
    // The index of `name`, or count when it is not one of them.
    size_t find(std::string_view name) const {
        for (size_t i = 0; i < count; ++i)
            if (name == items[i]) return i;
        return count;
    }
    // The same, ignoring ASCII case.
    size_t find_ignoring_case(std::string_view name) const {
        for (size_t i = 0; i < count; ++i)
            if (iequals(name, items[i])) return i;
        return count;
    }
};

// The name of a value; "?" for a value outside the list (never expected).
template <class E>
const char* name_of(E e) {
    constexpr Names n = names_of(E{});
    size_t i = static_cast<size_t>(e);
    return i < n.count ? n.items[i] : "?";
}

// The value named `name`, or nullopt.
template <class E>
std::optional<E> from_name(std::string_view name) {
    constexpr Names n = names_of(E{});
    size_t i = n.find(name);
    if (i == n.count) return std::nullopt;
    return static_cast<E>(i);
}

}  // namespace regmilter::util
