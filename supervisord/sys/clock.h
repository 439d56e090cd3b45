// The supervisor's one clock: CLOCK_MONOTONIC, which goes on across an in-place
// upgrade's execve (a deadline carried in the state stays a deadline).
#pragma once

#include <algorithm>
#include <time.h>

#include <chrono>

namespace fdsup {

using Clock = std::chrono::steady_clock;

// CPU time this thread has used: what a piece of work cost the loop.
inline std::chrono::nanoseconds thread_cpu_time() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

// The time left until `deadline`, for a timer: rounded up, never negative.
inline std::chrono::milliseconds until(Clock::time_point deadline) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    return std::max(left, std::chrono::milliseconds(0));
}

}  // namespace fdsup
