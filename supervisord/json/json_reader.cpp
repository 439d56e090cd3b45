#include "json/json_reader.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <string>
#include <vector>

#include "json/utf8.h"

namespace fdsup {
namespace {

using Json = nlohmann::json;

// One pass over the text, without recursion (a deeply nested text must not overflow
// the stack; nlohmann's parser has no depth limit either): finished values wait on a
// stack until their container closes, and each container is then built at once from
// its elements, moved.
class Reader {
public:
    explicit Reader(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

    std::optional<ReadJson> read() {
        // A UTF-8 byte order mark is skipped, as nlohmann does; a broken one is an error.
        if (p_ != end_ && static_cast<unsigned char>(*p_) == 0xEF) {
            if (end_ - p_ < 3 || static_cast<unsigned char>(p_[1]) != 0xBB || static_cast<unsigned char>(p_[2]) != 0xBF)
                return std::nullopt;
            p_ += 3;
        }
        skip_space();
        for (;;) {
            if (!value()) return std::nullopt;
            // After a value: the next member or element, or the end of containers.
            for (;;) {
                skip_space();
                if (open_.empty()) {
                    // nlohmann's lexer takes a NUL byte for the end of the input.
                    if (p_ != end_ && *p_ != '\0') return std::nullopt;
                    return ReadJson{std::move(values_.back()), integers_only_};
                }
                if (p_ == end_) return std::nullopt;
                const bool object = open_.back().object;
                if (*p_ == ',') {
                    ++p_;
                    skip_space();
                    if (object && !member_name()) return std::nullopt;
                    break;  // the next value
                }
                if (*p_ != (object ? '}' : ']')) return std::nullopt;
                ++p_;
                close();
            }
        }
    }

private:
    struct Open {
        bool object;
        size_t first_value;  // its elements' (or members' values') place in values_
        size_t first_key;    // its members' names' in keys_
    };

    void skip_space() {
        while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
    }

    // One value, or the opening of a container (whose first value, if any, follows).
    bool value() {
        for (;;) {
            if (p_ == end_) return false;
            switch (*p_) {
                case '[':
                case '{': {
                    const bool object = *p_ == '{';
                    ++p_;
                    open_.push_back({object, values_.size(), keys_.size()});
                    skip_space();
                    if (p_ != end_ && *p_ == (object ? '}' : ']')) {
                        ++p_;
                        close();
                        return true;
                    }
                    if (object && !member_name()) return false;
                    continue;  // its first value
                }
                case '"': {
                    std::string text;
                    if (!string(text)) return false;
                    values_.emplace_back(std::move(text));
                    return true;
                }
                case 't': return literal("true", Json(true));
                case 'f': return literal("false", Json(false));
                case 'n': return literal("null", Json(nullptr));
                default: return number();
            }
        }
    }

    // A member's name and its colon (at the name's opening quote).
    bool member_name() {
        if (p_ == end_ || *p_ != '"') return false;
        std::string name;
        if (!string(name)) return false;
        skip_space();
        if (p_ == end_ || *p_ != ':') return false;
        ++p_;
        skip_space();
        keys_.push_back(std::move(name));
        return true;
    }

    // The container open last is complete: built from its values, which it replaces.
    void close() {
        Open open = open_.back();
        open_.pop_back();
        auto first = values_.begin() + static_cast<std::ptrdiff_t>(open.first_value);
        Json container;
        if (open.object) {
            Json::object_t members;
            auto key = keys_.begin() + static_cast<std::ptrdiff_t>(open.first_key);
            // A name given twice keeps its last value, as in nlohmann's document.
            for (auto it = first; it != values_.end(); ++it, ++key)
                members.insert_or_assign(std::move(*key), std::move(*it));
            keys_.resize(open.first_key);
            container = Json(std::move(members));
        } else {
            container = Json(Json::array_t(std::make_move_iterator(first), std::make_move_iterator(values_.end())));
        }
        values_.resize(open.first_value);
        values_.push_back(std::move(container));
    }

    bool literal(std::string_view word, Json value) {
        if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) return false;
        p_ += word.size();
        values_.push_back(std::move(value));
        return true;
    }

    static bool digit(char c) { return c >= '0' && c <= '9'; }

    // -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?: a negative integer becomes an
    // int64, another integer a uint64, and one out of their range or with a fraction or
    // an exponent a double (an infinite one is an error), as nlohmann reads them.
    bool number() {
        const char* start = p_;
        const bool negative = *p_ == '-';
        if (negative) ++p_;
        if (p_ == end_ || !digit(*p_)) return false;
        uint64_t magnitude = 0;
        bool overflow = false;
        if (*p_ == '0') {
            ++p_;
        } else {
            for (; p_ != end_ && digit(*p_); ++p_) {
                auto d = static_cast<uint64_t>(*p_ - '0');
                if (magnitude > (UINT64_MAX - d) / 10) overflow = true;
                magnitude = magnitude * 10 + d;
            }
        }
        bool fraction = false;
        if (p_ != end_ && *p_ == '.') {
            fraction = true;
            ++p_;
            if (p_ == end_ || !digit(*p_)) return false;
            while (p_ != end_ && digit(*p_)) ++p_;
        }
        if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
            fraction = true;
            ++p_;
            if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
            if (p_ == end_ || !digit(*p_)) return false;
            while (p_ != end_ && digit(*p_)) ++p_;
        }
        if (!fraction && !overflow) {
            if (!negative) {
                values_.emplace_back(magnitude);
                return true;
            }
            if (magnitude <= uint64_t{1} << 63) {
                values_.emplace_back(magnitude == uint64_t{1} << 63 ? INT64_MIN : -static_cast<int64_t>(magnitude));
                return true;
            }
        }
        integers_only_ = false;
        const std::string text(start, p_);
        const double d = std::strtod(text.c_str(), nullptr);
        if (!std::isfinite(d)) return false;
        values_.emplace_back(d);
        return true;
    }

    static int hex_digit(char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }

    // \uXXXX's four digits (at the 'u'), or -1.
    int code_unit() {
        if (end_ - p_ < 5 || *p_ != 'u') return -1;
        int unit = 0;
        for (int i = 1; i <= 4; ++i) {
            int d = hex_digit(p_[i]);
            if (d < 0) return -1;
            unit = unit * 16 + d;
        }
        p_ += 5;
        return unit;
    }

    static void append_utf8(std::string& out, uint32_t cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    // A string (at its opening quote) into `out`.
    bool string(std::string& out) {
        ++p_;
        const char* run = p_;  // bytes taken as they are, not yet appended
        for (;;) {
            if (p_ == end_) return false;
            const auto c = static_cast<unsigned char>(*p_);
            if (c == '"') {
                out.append(run, p_);
                ++p_;
                return true;
            }
            if (c < 0x20) return false;
            if (c < 0x80 && c != '\\') {
                ++p_;
                continue;
            }
            if (c >= 0x80) {
                auto [length, valid] = utf8_sequence(std::string_view(p_, static_cast<size_t>(end_ - p_)));
                if (!valid) return false;
                p_ += length;
                continue;
            }
            out.append(run, p_);
            ++p_;
            if (p_ == end_) return false;
            switch (*p_) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    int unit = code_unit();
                    if (unit < 0 || (unit >= 0xDC00 && unit <= 0xDFFF)) return false;
                    uint32_t cp = static_cast<uint32_t>(unit);
                    if (unit >= 0xD800 && unit <= 0xDBFF) {  // a high surrogate: its low one must follow
                        if (end_ - p_ < 1 || *p_ != '\\') return false;
                        ++p_;
                        int low = code_unit();
                        if (low < 0xDC00 || low > 0xDFFF) return false;
                        cp = 0x10000 + ((static_cast<uint32_t>(unit) - 0xD800) << 10) + (static_cast<uint32_t>(low) - 0xDC00);
                    }
                    append_utf8(out, cp);
                    run = p_;
                    continue;
                }
                default: return false;
            }
            ++p_;
            run = p_;
        }
    }

    const char* p_;
    const char* end_;
    std::vector<Json> values_;
    std::vector<std::string> keys_;
    std::vector<Open> open_;
    bool integers_only_ = true;
};

}  // namespace

std::optional<ReadJson> read_json(std::string_view text) { return Reader(text).read(); }

}  // namespace fdsup
