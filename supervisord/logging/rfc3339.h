// A wall-clock time as RFC 3339 text, as fdsupd's JSON log and `fdsupctl logs --json`
// give it: UTC, microseconds ("2026-12-07T01:03:44.123456Z").
#pragma once

#include <chrono>
#include <string>

namespace fdsup {

std::string rfc3339_utc(std::chrono::system_clock::time_point time);

}  // namespace fdsup
