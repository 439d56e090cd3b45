// The process table's entries: a Worker (one [workers.NAME]) and its Instances.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/model.h"
#include "supervisor/restart_policy.h"
#include "supervisor/uv_handles.h"
#include "sys/process.h"
#include "sys/unique_fd.h"

namespace fdsup {

// SPEC "Worker states".
enum class InstanceState { starting, running, stopping, backoff, exited, failed, stopped };
const char* state_name(InstanceState state);

struct Worker;

struct Instance {
    Instance(uv_loop_t* loop, Worker* worker, int index) : worker(worker), index(index), timer(loop) {}

    Worker* worker;
    int index;
    InstanceState state = InstanceState::stopped;
    bool ready = false;

    // The running process, if any.
    pid_t pid = -1;
    UniqueFd pidfd;
    std::unique_ptr<FdWatch> exit_watch;  // on pidfd; reset before pidfd closes
    Clock::time_point started_at{};

    // One timer at a time is enough: backoff (backoff), ready delay (starting),
    // stop escalation (stopping) never overlap.
    Timer timer;

    int restarts = 0;  // restarts after unplanned exits and failed execs
    std::optional<ExitStatus> last_exit;
    std::string last_error;  // the last exec failure, for status
    Backoff backoff;
    StartLimiter start_limiter;

    bool has_process() const { return pid > 0; }
    // "web[2]"
    std::string label() const;
};

struct Worker {
    config::WorkerConfig config;
    std::vector<std::unique_ptr<Instance>> instances;
    bool waiting_for_dependencies = false;  // started, but some `after` worker is not ready

    // Every instance is running and ready (a worker with no instances is trivially ready).
    bool all_ready() const;
    bool any_process() const;
};

}  // namespace fdsup
