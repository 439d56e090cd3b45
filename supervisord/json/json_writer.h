// A JSON text written straight into a string, for what grows with the process table
// (the `status` reply and the upgrade state: thousands of instances). Building an
// nlohmann document first costs a dozen allocations per instance; this costs none
// beyond the string's growth.
// Strings are escaped as nlohmann's dump does with error_handler_t::replace (invalid
// UTF-8 becomes U+FFFD), so every reply reads the same whichever way it was made.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace fdsup {

class JsonWriter {
public:
    // The structural parts and the numbers are here, inline: a state or a status of
    // 10,000 instances is hundreds of thousands of them, and a call each showed in the
    // profile of an upgrade.
    JsonWriter& begin_object() { return open('{'); }
    JsonWriter& end_object() { return close('}'); }
    JsonWriter& begin_array() { return open('['); }
    JsonWriter& end_array() { return close(']'); }
    // In an object: the next member's name (its value follows).
    JsonWriter& key(std::string_view name);

    JsonWriter& value(std::string_view text);
    JsonWriter& value(const char* text) { return value(std::string_view(text)); }
    JsonWriter& value(const std::string& text) { return value(std::string_view(text)); }
    JsonWriter& value(bool b) { return literal(b ? std::string_view("true") : std::string_view("false")); }
    JsonWriter& value(int n) { return value(static_cast<int64_t>(n)); }
    JsonWriter& value(int64_t n) { return integer(n); }
    JsonWriter& value(uint64_t n) { return integer(n); }
    JsonWriter& value(double d);  // shortest text that reads back the same; NaN/inf: null
    JsonWriter& null() { return literal("null"); }

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
    // The comma before a value, an object's member or an array's element, unless it is
    // the first in its container (or the value of a member, after its name's colon).
    void separate() {
        if (comma_due_) out_ += ',';
    }
    JsonWriter& open(char bracket) {
        separate();
        out_ += bracket;
        comma_due_ = false;
        return *this;
    }
    JsonWriter& close(char bracket) {
        out_ += bracket;
        comma_due_ = true;
        return *this;
    }
    JsonWriter& literal(std::string_view text) {
        separate();
        out_ += text;
        comma_due_ = true;
        return *this;
    }
    template <class Integer>
    JsonWriter& integer(Integer n) {
        char buffer[24];
        auto end = std::to_chars(buffer, buffer + sizeof buffer, n).ptr;
        return literal(std::string_view(buffer, static_cast<size_t>(end - buffer)));
    }

    std::string out_;
    // Whether something was written in the innermost open container (and no member's
    // name since): the next value there takes a comma first. Nothing more is needed of
    // the nesting: a container's end is a value written in the one around it.
    bool comma_due_ = false;
};

// `text` as a JSON string literal (quotes included), appended to `out`.
void append_json_string(std::string& out, std::string_view text);

}  // namespace fdsup
