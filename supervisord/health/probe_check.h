// One check of a worker's probe ([workers.NAME.ready_probe], .liveness_probe): what every
// kind (http_check.h, connect_check.h, exec_check.h) reports, and the handle that keeps
// a check in flight. The supervisor decides what a result means (ready, one failure in
// a row); a check only says whether it passed, why, and how long it took.
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace fdsup::health {

struct ProbeResult {
    bool passed = false;
    // For status and logs, short and specific: "GET http://127.0.0.1:9000/healthz: 503",
    // "connect 127.0.0.1:9000: Connection refused", "exit status 1", "killed by SIGTERM",
    // "timed out after 1.0s".
    std::string detail;
    std::chrono::microseconds latency{};  // from the start of the check to its result
};

// Called at most once, and never from inside the start_* call that made the check
// (always from a later loop callback), so the caller's state machine stays simple.
// It may destroy the check.
using ProbeDone = std::function<void(const ProbeResult&)>;

// One check in flight. Destroying it cancels the check: the callback is never called
// after that, and everything the check holds is released (fds closed; an exec check's
// process killed, and reaped later by ExecChecks).
class ProbeCheck {
public:
    virtual ~ProbeCheck() = default;
};

}  // namespace fdsup::health
