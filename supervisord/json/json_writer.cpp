#include "json/json_writer.h"

#include <charconv>
#include <cmath>
#include <utility>

#include "json/utf8.h"

namespace fdsup {
namespace {

// ASCII that stands for itself inside a JSON string.
bool needs_no_escape(unsigned char c) { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; }

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += '"';
    size_t i = 0;
    while (i < text.size()) {
        // Most text needs no escaping: appended a run at a time, not byte by byte (a
        // status of 10,000 instances is megabytes of names and keys).
        size_t plain = i;
        while (plain < text.size() && needs_no_escape(static_cast<unsigned char>(text[plain]))) ++plain;
        if (plain > i) {
            out.append(text.data() + i, plain - i);
            i = plain;
            continue;
        }
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

JsonWriter& JsonWriter::key(std::string_view name) {
    separate();
    append_json_string(out_, name);
    out_ += ':';
    comma_due_ = false;  // the member's value follows its colon
    return *this;
}

JsonWriter& JsonWriter::value(std::string_view text) {
    separate();
    append_json_string(out_, text);
    comma_due_ = true;
    return *this;
}

JsonWriter& JsonWriter::value(double d) {
    if (!std::isfinite(d)) return null();
    char buffer[32];
    auto end = std::to_chars(buffer, buffer + sizeof buffer - 2, d).ptr;
    // "3" would read back as an integer: a double keeps its fraction (as nlohmann's does).
    if (std::string_view(buffer, static_cast<size_t>(end - buffer)).find_first_of(".eE") == std::string_view::npos) {
        *end++ = '.';
        *end++ = '0';
    }
    return literal(std::string_view(buffer, static_cast<size_t>(end - buffer)));
}

JsonWriter JsonWriter::array_elements() {
    return JsonWriter();  // as if just inside the array: no comma before the first element
}

JsonWriter& JsonWriter::splice_elements(const JsonWriter& part) {
    if (part.out_.empty()) return *this;
    separate();  // the comma after this array's own elements, if it has any
    out_ += part.out_;
    comma_due_ = true;
    return *this;
}

std::string JsonWriter::line() && {
    out_ += '\n';
    return std::move(out_);
}

}  // namespace fdsup
