// util: a small streaming JSON writer for regmilter-query --json and reports.
// Produces one line of valid JSON from arbitrary bytes: control characters and
// bytes >= 0x80 are escaped as \u00XX (DNS text is bytes, not UTF-8).
// A JsonWriter is used by one thread; no I/O besides appending to a string.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace regmilter::util {

// The quoted, escaped JSON string for `s`.
std::string json_quote(std::string_view s);

class JsonWriter {
public:
    JsonWriter& begin_object();
    JsonWriter& end_object();
    JsonWriter& begin_array();
    JsonWriter& end_array();
    JsonWriter& key(std::string_view k);  // inside an object, before a value
    JsonWriter& value(std::string_view s);
    JsonWriter& value(const char* s) { return value(std::string_view(s)); }
    JsonWriter& value(bool b);
    JsonWriter& value(long long n);
    JsonWriter& value(int n) { return value(static_cast<long long>(n)); }
    JsonWriter& null();
    // Raw, already-valid JSON (e.g. a nested document rendered elsewhere).
    JsonWriter& raw(std::string_view json);

    const std::string& str() const { return out_; }

private:
    void separate();
    std::string out_;
    std::vector<bool> first_;  // per open container: no element written yet
    bool after_key_ = false;
};

}  // namespace regmilter::util
