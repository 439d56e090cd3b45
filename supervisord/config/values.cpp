#include "config/values.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>

#include "sys/decimal.h"

namespace fdsup::config {

std::optional<Duration> parse_duration(std::string_view text) {
    size_t digits = 0;
    while (digits < text.size() && is_decimal_digit(text[digits])) ++digits;
    std::string_view number = text.substr(0, digits), unit = text.substr(digits);

    int64_t ms_per_unit = 0;
    if (unit == "ms") ms_per_unit = 1;
    else if (unit == "s") ms_per_unit = 1000;
    else if (unit == "m") ms_per_unit = 60 * 1000;
    else if (unit == "h") ms_per_unit = 60 * 60 * 1000;
    else return std::nullopt;

    // Bounded (100 years) so that nothing done with it overflows: doubling a backoff,
    // or adding it to the steady clock's nanoseconds for a deadline (which
    // overflow past ~292 years).
    const uint64_t max_ms = kMaxDurationHours * 3600 * 1000;
    auto value = parse_decimal(number, max_ms / static_cast<uint64_t>(ms_per_unit));
    if (!value) return std::nullopt;
    return Duration(static_cast<int64_t>(*value) * ms_per_unit);
}

namespace {

struct SizeSuffix {
    char letter;
    unsigned shift;
};
// Largest first, for size_text.
constexpr SizeSuffix kSizeSuffixes[] = {{'T', 40}, {'G', 30}, {'M', 20}, {'K', 10}};

}  // namespace

std::optional<uint64_t> parse_size(std::string_view text) {
    unsigned shift = 0;
    if (!text.empty() && !is_decimal_digit(text.back())) {
        const auto* suffix = std::find_if(std::begin(kSizeSuffixes), std::end(kSizeSuffixes),
                                          [&](const SizeSuffix& s) { return s.letter == text.back(); });
        if (suffix == std::end(kSizeSuffixes)) return std::nullopt;
        shift = suffix->shift;
        text.remove_suffix(1);
    }
    auto value = parse_decimal(text, kMaxSize >> shift);
    if (!value) return std::nullopt;
    return *value << shift;
}

std::string size_text(uint64_t bytes) {
    for (const auto& s : kSizeSuffixes)
        if (bytes != 0 && bytes % (uint64_t{1} << s.shift) == 0) return std::to_string(bytes >> s.shift) + s.letter;
    return std::to_string(bytes);
}

std::optional<mode_t> parse_mode(std::string_view text) {
    if (text.starts_with("0o")) text.remove_prefix(2);
    if (text.empty() || text.size() > 4) return std::nullopt;
    mode_t mode = 0;
    for (char c : text) {
        if (c < '0' || c > '7') return std::nullopt;
        mode = mode * 8 + static_cast<mode_t>(c - '0');
    }
    return mode;  // four octal digits cannot exceed 07777
}

std::string format_duration(std::chrono::steady_clock::duration d) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    if (ms < 1000) return std::to_string(ms) + "ms";
    char text[32];
    std::snprintf(text, sizeof text, "%.1fs", static_cast<double>(ms) / 1000.0);
    return text;
}

}  // namespace fdsup::config
