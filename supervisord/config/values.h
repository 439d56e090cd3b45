// Parsers for the scalar value formats used in the config: durations, sizes and octal
// modes (signal names: sys/signal_names.h). Each returns std::nullopt for anything it does not accept.
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

// The largest size accepted: what a signed 64-bit byte count holds (8388607T and a bit),
// so that a sum of two (memory_max + memory_swap_max) stays within 64 bits.
constexpr uint64_t kMaxSize = 0x7fff'ffff'ffff'ffffULL;

// "512K", "64M", "2G", "1T" (K, M, G, T: powers of 1024, as systemd's MemoryMax= reads
// them) or a bare number of bytes ("1048576"): a non-negative integer and at most one
// suffix, upper case, at most kMaxSize. No "B", "MB" or "MiB", and no fractions.
std::optional<uint64_t> parse_size(std::string_view text);

// A size as it would be written in the file: the largest suffix that divides it exactly
// ("2G", "1536M"), else the bare number of bytes.
std::string size_text(uint64_t bytes);

// "0600", "660", "0o755": octal digits, at most 07777.
std::optional<mode_t> parse_mode(std::string_view text);

// For messages: "250ms" below a second, else "1.5s".
std::string format_duration(std::chrono::steady_clock::duration d);

}  // namespace fdsup::config
