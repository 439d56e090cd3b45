#include "table/restart_policy.h"

#include <algorithm>
#include <string>

namespace fdsup {

bool should_restart(const config::WorkerConfig& worker, const ExitStatus& status) {
    switch (worker.restart) {
        case config::RestartPolicy::always: return true;
        case config::RestartPolicy::never: return false;
        case config::RestartPolicy::on_failure:
            if (status.signaled) return true;
            return std::find(worker.success_exit_codes.begin(), worker.success_exit_codes.end(),
                             status.code) == worker.success_exit_codes.end();
    }
    return false;
}

config::Duration Backoff::next_delay(const config::WorkerConfig& worker, config::Duration run_time) {
    if (run_time >= worker.healthy_after) {
        last_ = config::Duration::zero();
        return last_;
    }
    return next_failure_delay(worker);
}

config::Duration Backoff::next_failure_delay(const config::WorkerConfig& worker) {
    last_ = last_ == config::Duration::zero() ? worker.backoff : std::min(last_ * 2, worker.backoff_max);
    last_ = std::min(last_, worker.backoff_max);
    return last_;
}

bool StartLimiter::try_start(const config::WorkerConfig& worker, Clock::time_point now) {
    auto recent = std::find_if(starts_.begin(), starts_.end(),
                               [&](Clock::time_point t) { return now - t < worker.start_limit_interval; });
    starts_.erase(starts_.begin(), recent);
    if (starts_.size() >= static_cast<size_t>(worker.start_limit_burst)) return false;
    starts_.push_back(now);
    return true;
}

bool StartLimiter::note_permanent_failure(const config::WorkerConfig& worker) {
    ++permanent_failures_;
    return permanent_failures_ >= worker.start_limit_burst;
}

std::string cannot_start_reason(int failures, const Error& last) {
    std::string times = failures == 1 ? "" : " " + std::to_string(failures) + " times in a row";
    return "could not be started" + times + ": " + last.text();
}

}  // namespace fdsup
