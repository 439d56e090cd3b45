// The supervisor's one clock: CLOCK_MONOTONIC, which goes on across an in-place
// upgrade's execve (a deadline carried in the state stays a deadline).
#pragma once

#include <chrono>

namespace fdsup {

using Clock = std::chrono::steady_clock;

}  // namespace fdsup
