// An environment variable that holds a whole number (LISTEN_FDS, LISTEN_PID,
// WATCHDOG_USEC, WATCHDOG_PID, FDSTORE): nothing else in it, no sign, no overflow
// (strtoull alone would take "12abc" and "-1").
#pragma once

#include <cerrno>
#include <cstdlib>
#include <optional>

namespace fdsup {

inline std::optional<unsigned long long> env_number(const char* name) {
    const char* text = std::getenv(name);
    if (text == nullptr || *text < '0' || *text > '9') return std::nullopt;
    errno = 0;
    char* end = nullptr;
    unsigned long long value = std::strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0') return std::nullopt;
    return value;
}

}  // namespace fdsup
