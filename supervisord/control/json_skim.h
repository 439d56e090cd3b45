// Checks that a text is one JSON value (RFC 8259, as strictly as nlohmann's parser: UTF-8
// inside strings, \u escapes with their surrogates paired) without building anything,
// and finds where one top-level member's value lies. For fdsupctl, which prints a
// status reply of megabytes as it came and reads only its small members: nlohmann's
// lexer reads a character at a time, this a few times faster. Where it differs from
// nlohmann (none of which fdsupd sends): it refuses a byte order mark and a NUL that
// ends the text early, and takes a number too large for a double; only the skipped
// member is judged by it alone (nlohmann still reads the rest of the line).
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>
#include <utility>

namespace fdsup::control {

struct Skimmed {
    bool valid = false;   // the whole text is one JSON value, with only whitespace around it
    bool object = false;  // ... and that value is an object
    // [begin, end) of the value of the top-level member `key` (its last, if repeated).
    std::optional<std::pair<size_t, size_t>> member;
};

Skimmed skim_json(std::string_view text, std::string_view key);

}  // namespace fdsup::control
