// How long each step of a restoring image took, from its main() to serving again: the
// "upgrade done" line ends with them, so that an upgrade's pause can be taken apart
// (tests/bench/upgrade.py prints them) without a profiler.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace fdsup::state {

class RestoreTimings {
public:
    using Clock = std::chrono::steady_clock;

    // From now (main() calls it first thing); forgets any steps.
    void begin();
    // The step that ends now, named (a string literal: it is kept as a pointer).
    void lap(const char* step);
    // "12.3 ms from main(): read 0.4 ms, parse 3.1 ms, ..." (nothing if begin() was not called).
    std::string summary() const;

private:
    Clock::time_point began_{}, last_{};
    std::vector<std::pair<const char*, Clock::duration>> laps_;
};

// The process's one: a restore's steps are spread over main(), the startup and the
// daemon, and there is one restore per image.
RestoreTimings& restore_timings();

}  // namespace fdsup::state
