#include "control/json_skim.h"

#include <string>

namespace fdsup::control {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

class Skimmer {
public:
    explicit Skimmer(std::string_view text) : text_(text) {}

    void whitespace() {
        while (at_ < text_.size() && (text_[at_] == ' ' || text_[at_] == '\t' || text_[at_] == '\n' || text_[at_] == '\r'))
            ++at_;
    }
    bool next_is(char c) const { return at_ < text_.size() && text_[at_] == c; }
    bool done() const { return at_ == text_.size(); }
    size_t at() const { return at_; }
    void skip() { ++at_; }

    // At a '"': the string, up to and past its closing '"'.
    bool string() {
        ++at_;
        while (at_ < text_.size()) {
            auto byte = static_cast<unsigned char>(text_[at_]);
            if (byte == '"') {
                ++at_;
                return true;
            }
            if (byte < 0x20) return false;
            if (byte == '\\') {
                if (!escape()) return false;
            } else if (byte >= 0x80) {
                if (!utf8()) return false;
            } else {
                ++at_;
            }
        }
        return false;
    }

    bool scalar() {
        if (at_ >= text_.size()) return false;
        char c = text_[at_];
        if (c == '"') return string();
        if (c == '-' || is_digit(c)) return number();
        return word("true") || word("false") || word("null");
    }

private:
    bool word(std::string_view w) {
        if (text_.substr(at_, w.size()) != w) return false;
        at_ += w.size();
        return true;
    }

    bool digits() {
        size_t began = at_;
        while (at_ < text_.size() && is_digit(text_[at_])) ++at_;
        return at_ > began;
    }

    bool number() {
        if (next_is('-')) ++at_;
        if (next_is('0')) ++at_;
        else if (!digits()) return false;
        if (next_is('.')) {
            ++at_;
            if (!digits()) return false;
        }
        if (next_is('e') || next_is('E')) {
            ++at_;
            if (next_is('+') || next_is('-')) ++at_;
            if (!digits()) return false;
        }
        return true;
    }

    // \uXXXX's code unit, or nullopt.
    std::optional<unsigned> code_unit() {
        if (at_ + 6 > text_.size() || text_[at_] != '\\' || text_[at_ + 1] != 'u') return std::nullopt;
        unsigned unit = 0;
        for (size_t i = at_ + 2; i < at_ + 6; ++i) {
            if (!is_hex(text_[i])) return std::nullopt;
            unit = unit * 16 + static_cast<unsigned>(is_digit(text_[i]) ? text_[i] - '0' : (text_[i] | 0x20) - 'a' + 10);
        }
        at_ += 6;
        return unit;
    }

    bool escape() {
        if (at_ + 1 >= text_.size()) return false;
        char c = text_[at_ + 1];
        if (c != 'u') {
            at_ += 2;
            return std::string_view("\"\\/bfnrt").find(c) != std::string_view::npos;
        }
        auto unit = code_unit();
        if (!unit || (*unit >= 0xDC00 && *unit <= 0xDFFF)) return false;  // a low surrogate alone
        if (*unit < 0xD800 || *unit > 0xDBFF) return true;
        auto low = code_unit();  // a high surrogate: a low one must follow
        return low && *low >= 0xDC00 && *low <= 0xDFFF;
    }

    // One UTF-8 sequence (RFC 3629: no overlong forms, no surrogates, none above U+10FFFF).
    bool utf8() {
        auto byte = [&](size_t i) { return i < text_.size() ? static_cast<unsigned char>(text_[i]) : 0u; };
        auto in = [](unsigned b, unsigned low, unsigned high) { return b >= low && b <= high; };
        unsigned lead = byte(at_), b1 = byte(at_ + 1), b2 = byte(at_ + 2), b3 = byte(at_ + 3);
        size_t length = 0;
        if (in(lead, 0xC2, 0xDF)) length = in(b1, 0x80, 0xBF) ? 2 : 0;
        else if (lead == 0xE0) length = in(b1, 0xA0, 0xBF) && in(b2, 0x80, 0xBF) ? 3 : 0;
        else if (in(lead, 0xE1, 0xEC) || in(lead, 0xEE, 0xEF)) length = in(b1, 0x80, 0xBF) && in(b2, 0x80, 0xBF) ? 3 : 0;
        else if (lead == 0xED) length = in(b1, 0x80, 0x9F) && in(b2, 0x80, 0xBF) ? 3 : 0;
        else if (lead == 0xF0) length = in(b1, 0x90, 0xBF) && in(b2, 0x80, 0xBF) && in(b3, 0x80, 0xBF) ? 4 : 0;
        else if (in(lead, 0xF1, 0xF3)) length = in(b1, 0x80, 0xBF) && in(b2, 0x80, 0xBF) && in(b3, 0x80, 0xBF) ? 4 : 0;
        else if (lead == 0xF4) length = in(b1, 0x80, 0x8F) && in(b2, 0x80, 0xBF) && in(b3, 0x80, 0xBF) ? 4 : 0;
        at_ += length;
        return length > 0;
    }

    std::string_view text_;
    size_t at_ = 0;
};

}  // namespace

Skimmed skim_json(std::string_view text, std::string_view key) {
    Skimmed skimmed;
    Skimmer s(text);
    std::string open;  // the containers around the value being read, '{' or '[' (no recursion: any depth)
    size_t member_began = std::string_view::npos;  // of the value of a top-level `key`
    auto member_key = [&] {
        s.whitespace();
        if (!s.next_is('"')) return false;
        size_t began = s.at();
        if (!s.string()) return false;
        bool wanted = open.size() == 1 && text.substr(began + 1, s.at() - began - 2) == key;
        s.whitespace();
        if (!s.next_is(':')) return false;
        s.skip();
        s.whitespace();
        if (open.size() == 1) member_began = wanted ? s.at() : std::string_view::npos;
        return true;
    };
    s.whitespace();
    skimmed.object = s.next_is('{');
    for (;;) {
        // A value.
        s.whitespace();
        if (s.next_is('{') || s.next_is('[')) {
            char opening = text[s.at()];
            s.skip();
            s.whitespace();
            if (!s.next_is(opening == '{' ? '}' : ']')) {
                open.push_back(opening);
                if (opening == '{' && !member_key()) return skimmed;
                continue;
            }
            s.skip();  // {} or []
        } else if (!s.scalar()) {
            return skimmed;
        }
        // After a value: close what ends here, until a ',' calls for the next value.
        for (;;) {
            if (open.size() == 1 && member_began != std::string_view::npos) {
                skimmed.member = std::pair{member_began, s.at()};
                member_began = std::string_view::npos;
            }
            s.whitespace();
            if (open.empty()) {
                skimmed.valid = s.done();
                return skimmed;
            }
            if (s.done()) return skimmed;
            char c = text[s.at()];
            s.skip();
            if (c == ',') {
                if (open.back() == '{' && !member_key()) return skimmed;
                break;
            }
            if (c != (open.back() == '{' ? '}' : ']')) return skimmed;
            open.pop_back();
        }
    }
}

}  // namespace fdsup::control
