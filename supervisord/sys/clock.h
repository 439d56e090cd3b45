// The supervisor's one clock: CLOCK_MONOTONIC, which goes on across an in-place
// upgrade's execve (a deadline carried in the state stays a deadline).
#pragma once

#include <algorithm>
#include <chrono>

namespace fdsup {

using Clock = std::chrono::steady_clock;

// The time left until `deadline`, for a timer: rounded up, never negative.
inline std::chrono::milliseconds until(Clock::time_point deadline) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    return std::max(left, std::chrono::milliseconds(0));
}

}  // namespace fdsup
