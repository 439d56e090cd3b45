// Parsers for the scalar value formats used in the config: durations and octal modes
// (signal names: sys/signal_names.h). Each returns std::nullopt for anything it does not accept.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include <chrono>
#include <cstdint>

#include "config/model.h"

namespace fdsup::config {

// The longest duration accepted: 100 years.
constexpr uint64_t kMaxDurationHours = 100ULL * 365 * 24;

// "250ms", "10s", "5m", "1h" (a non-negative integer and exactly one unit), at most
// kMaxDurationHours.
std::optional<Duration> parse_duration(std::string_view text);

// "0600", "660", "0o755": octal digits, at most 07777.
std::optional<mode_t> parse_mode(std::string_view text);

// For messages: "250ms" below a second, else "1.5s".
std::string format_duration(std::chrono::steady_clock::duration d);

}  // namespace fdsup::config
