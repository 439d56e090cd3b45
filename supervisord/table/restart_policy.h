// Pure restart policy: whether an exit is restarted, how long to wait first, and the
// start limit. No clocks are read here: callers pass `now`, so tests drive time.
#pragma once

#include <chrono>
#include <vector>

#include "config/model.h"
#include "sys/clock.h"
#include "sys/process.h"
#include "sys/result.h"

namespace fdsup {

// restart = always | on-failure (with success_exit_codes) | never.
bool should_restart(const config::WorkerConfig& worker, const ExitStatus& status);

// Exponential backoff for runs shorter than healthy_after: the first quick exit waits
// `backoff`, each further one twice the last, up to `backoff_max`. A run that lasted
// healthy_after or more resets it, and its restart is immediate.
class Backoff {
public:
    // The delay before restarting after a run that lasted `run_time`.
    config::Duration next_delay(const config::WorkerConfig& worker, config::Duration run_time);
    // The delay after a start that never ran (exec failed): always a quick failure,
    // whatever healthy_after says.
    config::Duration next_failure_delay(const config::WorkerConfig& worker);
    void reset() { last_ = config::Duration::zero(); }
    config::Duration last() const { return last_; }
    void restore(config::Duration last) { last_ = last; }  // an upgrade carries it over

private:
    config::Duration last_ = config::Duration::zero();  // 0: no quick exit in a row yet
};

// More than start_limit_burst starts within start_limit_interval -> refuse (the worker
// goes to "failed" until an operator starts it again).
class StartLimiter {
public:
    // Records a start at `now` if allowed; false if it would exceed the limit.
    bool try_start(const config::WorkerConfig& worker, Clock::time_point now);
    // A spawn that failed for good (Error::permanent: the program cannot be exec'd, its
    // user does not exist...). True once start_limit_burst of them came in a row, however
    // slowly (backoff_max can space them out beyond any start_limit_interval): the
    // worker goes to "failed" instead of retrying for ever. Transient failures (EAGAIN...)
    // neither count nor break the row; a spawn that execs does.
    bool note_permanent_failure(const config::WorkerConfig& worker);
    void note_exec() { permanent_failures_ = 0; }
    int permanent_failures() const { return permanent_failures_; }
    void reset() {  // an operator's start: both limits begin again
        starts_.clear();
        permanent_failures_ = 0;
    }
    size_t recent_starts() const { return starts_.size(); }
    const std::vector<Clock::time_point>& starts() const { return starts_; }
    void restore(std::vector<Clock::time_point> starts) { starts_ = std::move(starts); }

private:
    // Oldest first. A vector, not a deque: an empty deque already costs two allocations
    // (576 bytes), in every instance, and there are thousands of instances.
    std::vector<Clock::time_point> starts_;
    int permanent_failures_ = 0;  // in a row; not carried by an upgrade (it starts again)
};

// Why an instance is "failed" after `failures` permanent spawn failures in a row, the
// last being `last`: "could not be started 3 times in a row: exec /x: ... (stage: execve)".
std::string cannot_start_reason(int failures, const Error& last);

}  // namespace fdsup
