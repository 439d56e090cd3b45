// The state an in-place upgrade hands from one fdsupd image to the next travels in a
// memfd: the old image writes it, passes its fd number on the new image's command
// line, and the new image reads it (with pread, so that a rollback can read it again).
// The document is JSON text, written directly (JsonWriter) and parsed by
// nlohmann. (nlohmann's CBOR was measured too: it decodes no faster, since building the
// document, not reading the text, is what costs.)
#pragma once

#include <nlohmann/json.hpp>

#include <string_view>
#include <type_traits>

#include "json/json_reader.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace fdsup::upgrade {

// A field of the state, or `fallback` if it is missing or of another type: never an
// exception, because a damaged state must end in a rollback, not std::terminate.
// (A fractional number for an integer field is "another type" too: nlohmann's cast of
// one out of range would be undefined behaviour.)
template <class T>
T field_or(const nlohmann::json& state, const char* key, T fallback) {
    auto it = state.find(key);
    if (it == state.end()) return fallback;
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
        if (!it->is_number_integer()) return fallback;
    }
    try {
        return it->get<T>();
    } catch (const std::exception&) {
        return fallback;
    }
}

// `text`: the JSON document.
Result<UniqueFd> write_state_file(std::string_view text);
// An error if the file cannot be read or is not a JSON object. (With whether it holds
// fractional numbers, which a state may not: state::restore_state need not look.)
Result<ReadJson> read_state_file(int fd);

}  // namespace fdsup::upgrade
