// How a check reports: the ProbeDone contract of probe_check.h kept in one place. The
// callback runs at most once, never from inside start_* (report_later defers it to the
// next loop turn), and with the latency since the check began. The timeout is here too:
// every kind of check has one.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <string>

#include "health/probe_check.h"
#include "loop/uv_handles.h"
#include "sys/clock.h"

namespace fdsup::health {

class ProbeReport {
public:
    ProbeReport(uv_loop_t* loop, ProbeDone done);

    // `on_timeout` runs once `timeout` has passed without a report; it releases what
    // the check holds and reports (timed_out() says it).
    void arm_timeout(std::chrono::milliseconds timeout, std::function<void()> on_timeout);
    // "timed out after 1.0s"
    std::string timed_out() const;

    // Reports now: from a loop callback only. `done` may destroy the check that owns
    // this report, so the caller must return at once, touching nothing of its own.
    void report(bool passed, std::string detail);
    // Reports on a later loop turn: for results known inside start_*.
    void report_later(bool passed, std::string detail);

    // No report will be made (the timeout is disarmed, `done` dropped).
    void cancel();

private:
    Clock::time_point started_ = Clock::now();
    std::chrono::milliseconds timeout_{};
    ProbeDone done_;
    Timer timer_;  // the timeout, or the deferred report (which replaces it)
};

}  // namespace fdsup::health
