#include "health/probe_report.h"

#include <utility>

#include "config/values.h"

namespace fdsup::health {

ProbeReport::ProbeReport(uv_loop_t* loop, ProbeDone done) : done_(std::move(done)), timer_(loop) {}

void ProbeReport::arm_timeout(std::chrono::milliseconds timeout, std::function<void()> on_timeout) {
    timeout_ = timeout;
    timer_.start(timeout, std::move(on_timeout));
}

std::string ProbeReport::timed_out() const { return "timed out after " + config::format_duration(timeout_); }

void ProbeReport::report(bool passed, std::string detail) {
    if (!done_) return;
    timer_.stop();
    ProbeResult result{passed, std::move(detail),
                       std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_)};
    // Moved out first: the callback may destroy this report along with its check.
    auto done = std::move(done_);
    done_ = nullptr;
    done(result);
}

void ProbeReport::cancel() {
    timer_.stop();
    done_ = nullptr;
}

void ProbeReport::report_later(bool passed, std::string detail) {
    timer_.start(std::chrono::milliseconds(0),
                 [this, passed, detail = std::move(detail)]() mutable { report(passed, std::move(detail)); });
}

}  // namespace fdsup::health
