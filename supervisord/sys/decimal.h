// Decimal numbers as the config and the command line write them: a whole string of
// digits, no sign, no spaces, no overflow.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace fdsup {

inline bool is_decimal_digit(char c) { return c >= '0' && c <= '9'; }

// The value of `text`, at most `max`; nothing for anything else.
inline std::optional<uint64_t> parse_decimal(std::string_view text, uint64_t max) {
    if (text.empty()) return std::nullopt;
    uint64_t value = 0;
    for (char c : text) {
        if (!is_decimal_digit(c)) return std::nullopt;
        uint64_t digit = static_cast<uint64_t>(c - '0');
        if (value > (max - digit) / 10) return std::nullopt;
        value = value * 10 + digit;
    }
    return value;
}

}  // namespace fdsup
