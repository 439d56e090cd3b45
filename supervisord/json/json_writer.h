// A JSON text written straight into a string, for what grows with the process table
// (the `status` reply and the upgrade state: thousands of instances). Building an
// nlohmann document first costs a dozen allocations per instance; this costs none
// beyond the string's growth.
// Strings are escaped as nlohmann's dump does with error_handler_t::replace (invalid
// UTF-8 becomes U+FFFD), so every reply reads the same whichever way it was made.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fdsup {

class JsonWriter {
public:
    JsonWriter& begin_object();
    JsonWriter& end_object();
    JsonWriter& begin_array();
    JsonWriter& end_array();
    // In an object: the next member's name (its value follows).
    JsonWriter& key(std::string_view name);

    JsonWriter& value(std::string_view text);
    JsonWriter& value(const char* text) { return value(std::string_view(text)); }
    JsonWriter& value(const std::string& text) { return value(std::string_view(text)); }
    JsonWriter& value(bool b);
    JsonWriter& value(int n) { return value(static_cast<int64_t>(n)); }
    JsonWriter& value(int64_t n);
    JsonWriter& value(uint64_t n);
    JsonWriter& value(double d);  // shortest text that reads back the same; NaN/inf: null
    JsonWriter& null();

    // key(name).value(v), for brevity.
    template <class T>
    JsonWriter& member(std::string_view name, const T& v) {
        key(name);
        return value(v);
    }

    // Elements of an array written apart from it (another thread's share of a long
    // array), to be appended to the array with splice_elements.
    static JsonWriter array_elements();
    // The elements `part` (made by array_elements()) holds, appended as this array's next.
    JsonWriter& splice_elements(const JsonWriter& part);

    // Room for `bytes` of text in all, allocated now (the text grows without copying).
    void reserve(size_t bytes) { out_.reserve(bytes); }

    // The text so far plus a newline: one protocol line.
    std::string line() &&;
    const std::string& text() const { return out_; }

private:
    void separate();  // the comma before an element, if it is not the first

    std::string out_;
    std::vector<bool> first_;  // per open object/array: nothing written in it yet
    bool after_key_ = false;
};

// `text` as a JSON string literal (quotes included), appended to `out`.
void append_json_string(std::string& out, std::string_view text);

}  // namespace fdsup
