#include "json/json_writer.h"

#include <charconv>
#include <cmath>
#include <utility>

namespace fdsup {
namespace {

// The UTF-8 sequence at the start of `s` (RFC 3629: no overlongs, no surrogates,
// nothing above U+10FFFF): {its length, true}, or, if it is invalid, {the bytes it
// spans, false}: up to the first byte that cannot continue it, which then starts the
// next sequence. That is how nlohmann's replace handler cuts invalid input, one
// U+FFFD per cut.
std::pair<size_t, bool> utf8_sequence(std::string_view s) {
    auto b = static_cast<unsigned char>(s[0]);
    if (b < 0x80) return {1, true};
    size_t continuations = 0;
    unsigned char low = 0x80, high = 0xBF;  // the allowed range of the first continuation
    if (b >= 0xC2 && b <= 0xDF) {
        continuations = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
        continuations = 2;
        if (b == 0xE0) low = 0xA0;   // overlong
        if (b == 0xED) high = 0x9F;  // surrogates
    } else if (b >= 0xF0 && b <= 0xF4) {
        continuations = 3;
        if (b == 0xF0) low = 0x90;   // overlong
        if (b == 0xF4) high = 0x8F;  // above U+10FFFF
    } else {
        return {1, false};
    }
    for (size_t k = 1; k <= continuations; ++k) {
        if (k >= s.size()) return {k, false};  // the text ends inside it
        auto c = static_cast<unsigned char>(s[k]);
        if (c < (k == 1 ? low : 0x80) || c > (k == 1 ? high : 0xBF)) return {k, false};
    }
    return {continuations + 1, true};
}

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += '"';
    size_t i = 0;
    while (i < text.size()) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        if (c >= 0x80) {
            auto [length, valid] = utf8_sequence(text.substr(i));
            if (valid) out.append(text.data() + i, length);
            else out += "\xEF\xBF\xBD";  // U+FFFD
            i += length;
            continue;
        }
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) {
                    out += "\\u00";
                    out += kHex[c >> 4];
                    out += kHex[c & 0xF];
                } else {
                    out += static_cast<char>(c);
                }
        }
        ++i;
    }
    out += '"';
}

void JsonWriter::separate() {
    if (after_key_) {
        after_key_ = false;
        return;
    }
    if (first_.empty()) return;
    if (!first_.back()) out_ += ',';
    first_.back() = false;
}

JsonWriter& JsonWriter::begin_object() {
    separate();
    out_ += '{';
    first_.push_back(true);
    return *this;
}

JsonWriter& JsonWriter::end_object() {
    out_ += '}';
    first_.pop_back();
    return *this;
}

JsonWriter& JsonWriter::begin_array() {
    separate();
    out_ += '[';
    first_.push_back(true);
    return *this;
}

JsonWriter& JsonWriter::end_array() {
    out_ += ']';
    first_.pop_back();
    return *this;
}

JsonWriter& JsonWriter::key(std::string_view name) {
    separate();
    append_json_string(out_, name);
    out_ += ':';
    after_key_ = true;
    return *this;
}

JsonWriter& JsonWriter::value(std::string_view text) {
    separate();
    append_json_string(out_, text);
    return *this;
}

JsonWriter& JsonWriter::value(bool b) {
    separate();
    out_ += b ? "true" : "false";
    return *this;
}

JsonWriter& JsonWriter::value(int64_t n) {
    separate();
    char buffer[24];
    auto end = std::to_chars(buffer, buffer + sizeof buffer, n).ptr;
    out_.append(buffer, end);
    return *this;
}

JsonWriter& JsonWriter::value(uint64_t n) {
    separate();
    char buffer[24];
    auto end = std::to_chars(buffer, buffer + sizeof buffer, n).ptr;
    out_.append(buffer, end);
    return *this;
}

JsonWriter& JsonWriter::value(double d) {
    if (!std::isfinite(d)) return null();
    separate();
    char buffer[32];
    auto end = std::to_chars(buffer, buffer + sizeof buffer, d).ptr;
    std::string_view text(buffer, static_cast<size_t>(end - buffer));
    out_ += text;
    // "3" would read back as an integer: a double keeps its fraction (as nlohmann's does).
    if (text.find_first_of(".eE") == std::string_view::npos) out_ += ".0";
    return *this;
}

JsonWriter& JsonWriter::null() {
    separate();
    out_ += "null";
    return *this;
}

std::string JsonWriter::line() && {
    out_ += '\n';
    return std::move(out_);
}

}  // namespace fdsup
