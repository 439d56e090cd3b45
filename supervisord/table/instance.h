// The process table's entries: a Worker (one [workers.NAME]) and its Instances.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/model.h"
#include "table/health_state.h"
#include "table/restart_policy.h"
#include "table/usage_state.h"
#include "loop/uv_handles.h"
#include "sys/process.h"
#include "sys/unique_fd.h"

namespace fdsup {

// SPEC "Worker states", and `idle`: start = "on-demand", no process until a
// connection comes (supervisor/on_demand.cpp).
enum class InstanceState { starting, running, stopping, backoff, exited, failed, stopped, idle };
inline constexpr InstanceState kAllInstanceStates[] = {InstanceState::starting, InstanceState::running,
                                                       InstanceState::stopping, InstanceState::backoff,
                                                       InstanceState::exited,   InstanceState::failed,
                                                       InstanceState::stopped,  InstanceState::idle};
const char* state_name(InstanceState state);

struct Worker;
class RollingRestart;

// Why the supervisor itself is stopping a process (not the operator, not shutdown):
// the exit that follows is a failure, restarted by policy.
enum class KillReason { none, ready_timeout, watchdog, liveness };
// "ready_timeout" (the upgrade state and the events say it so).
const char* kill_reason_name(KillReason reason);

struct Instance {
    Instance(uv_loop_t* loop, Worker* worker, int index, uint64_t id)
        : worker(worker), index(index), id(id), timer(loop), watchdog_timer(loop) {}

    Worker* worker;
    int index;
    uint64_t id;  // unique for the supervisor's life: operations find instances by it
    bool retiring = false;  // scaled away or replaced: erased once it has no process
    // A rolling restart's new process for this index, not yet in service: it never
    // restarts on its own (a failure ends the rollout) and does not count for readiness.
    bool replacement = false;
    InstanceState state = InstanceState::stopped;
    bool ready = false;

    // The running process, if any.
    pid_t pid = -1;
    UniqueFd pidfd;  // in the supervisor's set of exits while the process runs
    Clock::time_point started_at{};
    bool stop_escalated = false;  // the current stop needed SIGKILL after stop_timeout
    // kill_mode = "cgroup" (cgroups/): the cgroup the process was spawned into, a
    // name below the supervisor's own ("" without one, also where the mode fell back to
    // "group"), and its cgroup.events, watched in the supervisor's set while it is kept.
    std::string cgroup;
    UniqueFd cgroup_events;
    // The main process exited with this, but others were left in its cgroup: they have
    // been sent cgroup.kill, and the exit is handled once the cgroup is empty. The
    // instance keeps its (reaped) pid meanwhile: it still has processes.
    std::optional<ExitStatus> exit_pending;
    bool drain_retried = false;  // cgroup.kill was sent twice: the next timeout gives up
    // The serial numbers of the owned sockets this process was given: a socket replaced
    // by reload is closed only once no process holds the old one.
    std::vector<uint64_t> sockets_used;

    // One timer at a time is enough: backoff (backoff), ready delay or ready timeout
    // (starting), stop escalation (stopping) never overlap. `timer_deadline` is when it
    // fires (EXTEND_TIMEOUT_USEC= moves a ready timeout's or stop escalation's).
    Timer timer;
    Clock::time_point timer_deadline{};
    KillReason kill_reason = KillReason::none;

    // sd_notify (notify/notify_handler.cpp), reset at every start.
    // Its process was given NOTIFY_SOCKET (it speaks sd_notify: readiness, the watchdog or
    // the fd store): only then may it have last words to read before its exit is
    // handled. True where not known (an instance adopted across an upgrade).
    bool given_notify_socket = true;
    std::string status_text;         // STATUS=
    bool reloading = false;          // RELOADING=1, until READY=1
    bool stopping_notified = false;  // STOPPING=1
    config::Duration watchdog_timeout{};  // the config's, or the worker's WATCHDOG_USEC=; 0: off
    Timer watchdog_timer;
    Clock::time_point watchdog_deadline{};
    Clock::time_point last_watchdog_ping{};

    InstanceHealth health;  // what health/ found (ready = "accepting" or "probe", liveness_probe)
    InstanceUsage usage;    // what it uses, as last gathered, and its recycling (supervisor/usage.cpp)

    // The spec its process was started with when that is not its worker's: a reload
    // canary's replacement runs the new spec while the worker keeps the old one, until
    // the canary is promoted (rollout/rolling_restart.h). Null: the worker's.
    std::shared_ptr<const config::WorkerConfig> spec;
    // stop_delay: a planned stop took it out of readiness; it keeps serving until the
    // timer (timer_deadline) sends stop_signal. Shown as "draining".
    bool draining = false;
    int restarts = 0;  // restarts after unplanned exits, failed execs and failed liveness probes
    std::optional<ExitStatus> last_exit;
    std::string last_error;  // why the last start failed (exec error, ready timeout, watchdog), for status
    Backoff backoff;
    StartLimiter start_limiter;

    bool has_process() const { return pid > 0; }
    // The spec its next process starts with: `spec`, or its worker's.
    const config::WorkerConfig& config() const;
    // "web[2]"
    std::string label() const;
};

// start = "on-demand" (supervisor/on_demand.cpp): a worker that runs only while it has
// connections.
struct DemandState {
    // Idle: no process, its inherited sockets watched for a connection (or datagram).
    bool watched = false;
    // Stopped by idle_stop, or an instance exited 0: idle once no instance runs.
    bool going_idle = false;
    uint64_t starts = 0;  // started by a connection
    // The idle clock: when a connection was last seen open, queued or closing.
    Clock::time_point last_active{};
    // A dup of each inherited listening socket (one uv_poll per fd: two on-demand
    // workers may share a socket), and its watch, destroyed before the fd.
    struct SocketWatch {
        UniqueFd fd;
        std::unique_ptr<FdWatch> watch;
    };
    std::vector<SocketWatch> watches;
    std::unique_ptr<Timer> idle_timer;  // idle_stop's sampling, while it runs
};

struct Worker {
    config::WorkerConfig config;  // in effect (instances may differ from the file: scale)
    std::vector<std::unique_ptr<Instance>> instances;
    bool waiting_for_dependencies = false;  // started, but some `after` worker is not ready
    bool stopped_by_operator = false;       // `stop`: stays down until start/restart
    bool removing = false;                  // dropped by reload: erased once no process is left
    // A changed spec from reload, applied once every old instance has stopped.
    std::optional<config::WorkerConfig> pending_config;
    // The text of the config `config` came from when that is not the loaded config's
    // (a rolled-back reload left the worker on its previous spec): what an upgrade
    // parses again. "" otherwise.
    std::string config_source;
    // Bumped by every lifecycle command: a command that waits (restart's stop phase)
    // does not continue once a later command took the worker over.
    uint64_t generation = 0;
    // The rolling restart in progress, if any (rollout/rolling_restart.h).
    std::shared_ptr<RollingRestart> rollout;
    // The last one that finished in this fdsupd image, with its outcome: what a client
    // that asks afterwards is told (`rollout` requests; not carried across an upgrade).
    std::shared_ptr<const RollingRestart> last_rollout;
    WorkerProbeCounters probe_counters;
    WorkerResourceCounters resource_counters;
    DemandState demand;

    // Every instance is running and ready (a worker with no instances is trivially
    // ready; instances being scaled away and replacements not yet in service do not count).
    bool all_ready() const;
    bool any_process() const;
    // The state shown for the worker as a whole: the instances' state when they agree,
    // else the one that most needs attention.
    InstanceState summary_state() const;
};

}  // namespace fdsup
