// A JSON text read into an nlohmann document, for the one big document fdsupd reads: the
// upgrade state (megabytes at 10,000 instances, read while nothing is served). It
// accepts and refuses exactly what nlohmann::json::parse does and builds the same
// document (same value types: a negative integer int64, any other integer uint64, a
// fraction or an integer out of range a double), in about a third of the time (10,000
// instances' state: 8.9 against 26.0 ms of CPU): it scans a
// contiguous buffer, and builds each array at its final size (nlohmann's grows
// element by element, reallocating: a dozen allocations per instance record).
// It also says whether the text held any fractional number, which a state may not:
// the check then needs no walk over the whole document.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string_view>

namespace fdsup {

struct ReadJson {
    nlohmann::json document;
    bool integers_only = true;  // no number in the text became a double
};

// nullopt where nlohmann::json::parse(text) would throw (no comments allowed).
std::optional<ReadJson> read_json(std::string_view text);

}  // namespace fdsup
