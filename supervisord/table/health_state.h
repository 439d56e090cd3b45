// What the health checks (health/) found about an instance, kept in the process table
// so that status, metrics and an in-place upgrade see it.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "sys/histogram.h"

namespace fdsup {

// One probe check's result.
struct ProbeOutcome {
    bool passed = false;
    std::string detail;  // "GET http://127.0.0.1:9000/healthz: 503", "exit status 1", ...
    std::chrono::microseconds latency{};
    std::chrono::system_clock::time_point at{};  // wall clock: shown to operators, carried across an upgrade
};

struct InstanceHealth {
    // The current process's: reset at every start.
    std::optional<ProbeOutcome> last;  // its last ready or liveness check
    int failures = 0;                  // liveness checks failed in a row
    std::string accepting;             // ready = "accepting": how it was seen ("epoll, pid 12 fd 3")
    // Kept across the slot's restarts and replacements: why the liveness probe had its
    // last process replaced, and when ("" if it never did).
    std::string replaced;
    std::chrono::system_clock::time_point replaced_at{};

    void reset_for_start() {
        last.reset();
        failures = 0;
        accepting.clear();
    }
};

// A worker's probe checks for the metrics (this fdsupd image's: an upgrade starts
// them again, as it does the spawn histogram).
struct ProbeCounters {
    uint64_t passed = 0;
    uint64_t failed = 0;
    Histogram latency{kProbeBounds};
};
struct WorkerProbeCounters {
    ProbeCounters ready;     // ready = "probe"
    ProbeCounters liveness;
    uint64_t replacements = 0;  // instances replaced after failing their liveness probe

    ProbeCounters& of(bool liveness_probe) { return liveness_probe ? liveness : ready; }
    const ProbeCounters& of(bool liveness_probe) const { return liveness_probe ? liveness : ready; }
};

}  // namespace fdsup
