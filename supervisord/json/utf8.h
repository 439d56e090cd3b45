// The one check of UTF-8 that the JSON writer (which replaces invalid sequences, as
// nlohmann's dump does) and the JSON reader (which refuses them, as nlohmann's parser
// does) share.
#pragma once

#include <cstddef>
#include <string_view>
#include <utility>

namespace fdsup {

// The UTF-8 sequence at the start of `s` (RFC 3629: no overlongs, no surrogates,
// nothing above U+10FFFF): {its length, true}, or, if it is invalid, {the bytes it
// spans, false}: up to the first byte that cannot continue it, which then starts the
// next sequence. That is how nlohmann's replace handler cuts invalid input, one
// U+FFFD per cut.
inline std::pair<size_t, bool> utf8_sequence(std::string_view s) {
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


}  // namespace fdsup
