// The supervisor: the process table (workers and their instances) and its lifecycle.
// It spawns every instance through the launcher on the sockets it owns, watches the
// processes' pidfds, restarts them by policy, stops them gracefully, and carries out
// the operator's commands. Everything runs on one libuv loop; nothing here blocks.
//
// What it calls into, each in a folder of its own: sockets/socket_table.h (the
// listening sockets), output/outputs.h (stdout and stderr), fdstore/fd_stores.h (the fd
// stores), cgroups/instance_cgroups.h (kill_mode = "cgroup"), rollout/ (rolling
// restarts, driven through RolloutHost), health/ (ready = "accepting" and "probe", the
// liveness probe, reporting through health::HealthHost). What calls into it, above it: the notify
// handler, the fd server, the control commands, the upgrade state (state/, its friend)
// and the daemon that assembles them all (daemon/). It knows none of them.
//
// The files: supervisor.cpp (the table, starting, waiters), spawn.cpp, readiness.cpp
// (ready, timeouts, watchdog, what health/ reports), exits.cpp, stopping.cpp (and shutdown), lifecycle.cpp
// (start, stop, restart, scale, signal), reload.cpp, on_demand.cpp (start = "on-demand",
// idle_stop).
//
// The operator's commands are asynchronous: they act at once and report through
// callbacks when the processes have done what was asked. They wait with *waiters*:
// predicates re-checked after every state change, so no timer ever polls.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "cgroups/instance_cgroups.h"
#include "config/model.h"
#include "events/event_log.h"
#include "fdstore/fd_stores.h"
#include "health/health_checks.h"
#include "launcher/launcher.h"
#include "launcher/plan_builder.h"
#include "loop/epoll_set.h"
#include "loop/uv_handles.h"
#include "output/outputs.h"
#include "rollout/rolling_restart.h"
#include "sockets/socket_table.h"
#include "sockets/take_over.h"
#include "table/instance.h"
#include "table/operation.h"
#include "sys/histogram.h"
#include "sys/unique_fd.h"

namespace fdsup {

namespace state {
class Codec;  // state/: writes and reads the whole table for an in-place upgrade
}

class Supervisor : private RolloutHost, private health::HealthHost {
public:
    // `for_restore`: the workers get no instances (state::restore_state brings them).
    Supervisor(uv_loop_t* loop, config::Config config, std::vector<OwnedSocket> sockets,
               SpawnContext context, bool for_restore = false);
    ~Supervisor();
    Supervisor(const Supervisor&) = delete;
    Supervisor& operator=(const Supervisor&) = delete;

    // Starts every worker, each once the workers in its `after` are ready.
    void start_all();
    // After a restore, once the loop's handlers are in place: the health checks are
    // armed again, and what changed meanwhile (exits are seen by their pidfds on the
    // first loop turn) is acted on.
    void resume();

    // Graceful stop of every worker (dependents before their dependencies), SIGKILL for
    // what remains after shutdown_timeout; then `on_done`. Idempotent.
    void shutdown(std::function<void()> on_done);
    bool shutting_down() const override { return shutting_down_; }
    // The shutdown had to SIGKILL a worker (its stop_timeout, or shutdown_timeout, ran out).
    bool shutdown_forced() const { return shutdown_forced_; }

    // ---- the operator's commands (lifecycle.cpp, reload.cpp) ----
    // Each refuses unknown worker names before doing anything. `done` is called exactly
    // once, possibly before the call returns.
    //
    // start: every instance without a process is started (a failed one has its start
    // limit cleared); done once each is ready, failed, or waiting for a dependency.
    void start_workers(const std::vector<std::string>& names, ProgressFn progress, OperationDoneFn done);
    // stop: graceful stop of every instance (a pending restart is cancelled); the
    // worker stays down until start or restart. Done once every process has exited.
    void stop_workers(const std::vector<std::string>& names, ProgressFn progress, OperationDoneFn done);
    // restart: per the worker's restart_strategy. stop-start: stop every instance, then
    // start them again (the listening sockets stay open in the supervisor, so clients
    // wait in the backlog meanwhile). rolling: see rollout/rolling_restart.h; a worker
    // with a rollout in progress refuses start, restart and scale. `part_done`, if
    // given, gets each worker's reports as soon as that worker is done (before `done`).
    void restart_workers(const std::vector<std::string>& names, ProgressFn progress, OperationDoneFn done,
                         std::function<void(const std::vector<InstanceReport>&)> part_done = nullptr,
                         const CanaryOptions& canary = {});
    // `rollout promote` and `rollout abort`: a worker's rolling restart held at its
    // canary goes on at once, or any rolling restart an operator began stops and puts
    // the instances it replaced back on the old spec (rollout/rolling_restart.h).
    Result<void> promote_rollout(const std::string& name);
    // The rollout promote (or abort) would act on, or why it would refuse.
    Result<std::shared_ptr<RollingRestart>> steerable_rollout(const std::string& name, bool promote) const;
    Result<void> abort_rollout(const std::string& name);
    // scale: more instances start; fewer stop the newest (highest index) first.
    void scale_worker(const std::string& name, int count, ProgressFn progress, OperationDoneFn done);
    struct SignalSent {
        int signal = 0;
        std::vector<pid_t> pids;
    };
    // Sends `signal` (a name or number; default: the worker's reload_signal) to every
    // instance that has a process, honouring kill_mode.
    Result<SignalSent> signal_worker(const std::string& name, const std::optional<std::string>& signal);
    // Re-reads the config file and applies the difference (config/diff.h). An invalid
    // config, a socket that cannot be bound, or a change that cannot be made live
    // changes nothing. Done once every change has been carried out.
    //
    // With `adopt` (fdsupctl adopt): the same, but [sockets.SOCKET], which the file must
    // add, is taken over from a running process (sockets/take_over.h) instead of bound.
    // Refused, changing nothing, if the file does not have it, if fdsupd owns it already,
    // or if it cannot be taken (no such process, not allowed, not that socket).
    struct AdoptRequest {
        std::string socket;
        TakeOverRequest from;
    };
    void reload(ProgressFn progress, ReloadDoneFn done, const CanaryOptions& canary = {},
                std::optional<AdoptRequest> adopt = std::nullopt);
    bool reloading() const { return reloading_; }
    // Why an in-place upgrade cannot begin now, or "" if it can.
    std::string upgrade_refusal() const;
    // Just before an in-place upgrade's exec: no exec probe may be left running, as a
    // child the next image would not know.
    void before_exec() { health_.kill_probe_processes(); }

    // ---- what a worker's own processes report (notify/, fdserver/) ----
    // The instance a process belongs to: its main process, or a descendant of it (found
    // by walking /proc parents). No instance if neither.
    struct ProcessOwner {
        Instance* instance = nullptr;
        bool main = false;
    };
    ProcessOwner owner_of(pid_t pid) const;
    // `pid` is one of our workers' running processes (reaped through its pidfd).
    bool runs(pid_t pid) const { return instances_by_pid_.contains(pid); }
    // ... or a process of an exec probe (also reaped through its pidfd).
    bool reaps(pid_t pid) const { return runs(pid) || health_.owns(pid); }
    // READY=1: a starting instance is ready (running, in service).
    void mark_ready(Instance& instance);
    // WATCHDOG=1, or a new WATCHDOG_USEC=: the next ping is due a watchdog timeout from now.
    void watchdog_ping(Instance& instance) { arm_watchdog(instance); }
    // The supervisor stops a process that failed (not ready in time, a silent or
    // triggered watchdog): stop_signal, SIGKILL after stop_timeout, then a restart by
    // policy.
    void kill_for(Instance& instance, KillReason reason, const std::string& why);
    // EXTEND_TIMEOUT_USEC=: the timeout of the current phase ends no sooner than `until`.
    void extend_timeout(Instance& instance, Clock::time_point until);
    // FDSTORE=1 and the fd socket's "store", FDSTOREREMOVE=1 (fdstore/fd_stores.h).
    Result<StoreOutcome> store_fds(Instance& instance, const std::string& name, std::vector<UniqueFd> fds, bool poll) {
        return fd_stores_.store(instance, name, std::move(fds), poll, shutting_down_);
    }
    Result<size_t> remove_stored_fds(Instance& instance, const std::string& name) {
        return fd_stores_.remove(instance, name, shutting_down_);
    }
    FdStores& fd_stores() { return fd_stores_; }
    const FdStores& fd_stores() const { return fd_stores_; }
    // Re-checks the waiters after anything that may move a command on.
    void state_changed() override;
    // Handles the notify datagrams already queued; called before a process's exit is
    // handled, so that what it sent just before exiting (READY=1, FDSTORE=1 on its way
    // out) is still taken as its own, as systemd does by priority.
    void set_notify_drain(std::function<void()> drain) { notify_drain_ = std::move(drain); }

    // ---- fdsupd's own service manager (sd_notify) ----
    // Told RELOADING=1 and READY=1 around every reload, and a STATUS= summary when the
    // process table changes; sockets a reload binds are parked in its fd store, and
    // those it closes taken out again.
    struct ManagerHooks {
        std::function<void(const std::string& message)> notify;
        std::function<bool(const std::string& name, int fd)> park;  // empty: no fd store
        std::function<void(const std::string& name)> unpark;
    };
    void set_manager(ManagerHooks hooks) { manager_ = std::move(hooks); }
    // "3 workers, 8 of 8 instances running" (+ ", 1 in backoff, 1 failed" ...).
    std::string status_summary() const;

    // ---- what there is, for status and metrics ----
    const config::Config& config() const { return config_; }  // as last loaded
    const SocketTable& sockets() const { return sockets_; }
    const std::vector<std::unique_ptr<Worker>>& workers() const { return workers_; }
    Worker* find_worker(const std::string& name) const override;
    Instance* find_instance(uint64_t id) const override;
    LogBook& logs() { return outputs_.book(); }
    // `fdsupctl reopen-logs` and SIGUSR1: every "rotate:" file open is opened again.
    Outputs::Reopened reopen_logs() { return outputs_.reopen_logs(); }
    // What happened, as it happened (events/event_log.h): `fdsupctl events` reads it.
    EventLog& events() override { return events_; }
    const EventLog& events() const { return events_; }
    Clock::time_point started_at() const { return started_at_; }
    uint64_t upgrades() const { return upgrades_; }
    const Histogram& spawn_times() const { return spawn_times_; }
    uint64_t reloads(bool ok) const { return ok ? reloads_ok_ : reloads_failed_; }
    const health::AcceptScanCost& accept_scan_cost() const { return health_.accept_cost(); }
    // What the instances use, gathered now for those of the workers `which` picks (all
    // if empty); a sample younger than 200 ms is kept as it is (usage.cpp).
    void gather_usage(const std::function<bool(const Worker&)>& which = nullptr);
    struct UsageCost {
        uint64_t gatherings = 0;
        uint64_t instances = 0;  // looked at, summed over them
        std::chrono::nanoseconds cpu{};
        std::chrono::nanoseconds last_cpu{};  // of the last gathering
        uint64_t last_instances = 0;
    };
    const UsageCost& usage_cost() const { return usage_cost_; }
    // Before the workers start: the controllers their limits need (cgroups/instance_limits.h).
    Result<void> prepare_limits() { return cgroups_.prepare_limits(config_); }

private:
    friend class state::Codec;

    // ---- events (supervisor.cpp): the instance's worker, index and pid (if it runs) ----
    void emit(EventKind kind, const Instance& instance, EventFields fields = {});
    void emit(EventKind kind, const std::string& worker, EventFields fields = {});
    // rollout_began for a rollout about to be handed to add_rollout_waiter.
    void emit_rollout_began(const RollingRestart& rollout);

    // ---- the table (supervisor.cpp) ----
    Worker& add_worker(const config::WorkerConfig& config, bool with_instances = true);
    // `index`: the next after the instances that stay (not those on their way out). The
    // callers add many in a row and know it; counting here would make that quadratic.
    Instance& add_instance(Worker& worker, int index);
    Instance& add_replacement(Worker& worker, const Instance& old) override;  // RolloutHost
    // A changed spec from reload, applied once every old instance has stopped.
    void apply_pending_config(Worker& worker);
    void start_worker(Worker& worker);
    void start_waiting_dependents();
    bool dependencies_ready(const Worker& worker) const;
    // Erases what is due to go: retiring instances without a process, removed workers
    // with none left, released fd stores, retired sockets no process holds.
    void sweep();

    // ---- spawning (spawn.cpp) ----
    void spawn(Instance& instance) override;
    void start_fresh(Instance& instance) override;  // an operator's start: limits cleared
    Result<void> launch(Instance& instance);

    // ---- readiness and timeouts (readiness.cpp) ----
    void become_ready(Instance& instance);
    // health::HealthHost: what the health checks (health/) ask and report.
    std::vector<ino_t> socket_inodes(const Instance& instance) const override;
    std::optional<std::vector<pid_t>> cgroup_processes(const Instance& instance) const override;
    void health_ready(Instance& instance) override;
    // Replaced the graceful way (a rolling restart of the one instance), or, where a
    // rollout is already under way, stopped and restarted by policy.
    void liveness_failed(Instance& instance, const std::string& why) override;
    void probe_failed(Instance& instance, bool liveness, const std::string& detail, int failures) override;
    // The end of such a replacement: the new process counts a restart, or, if it did not
    // take over, the failed one is stopped and restarted by its policy.
    std::function<void(std::vector<InstanceReport>)> liveness_replacement_done(const RollingRestart& rollout);
    // Each timer of an instance runs to an absolute deadline (kept in the instance, so
    // that an upgrade can carry it over): the ready delay, the restart after backoff,
    // the ready timeout, stop escalation, the drain of a cgroup, the watchdog.
    void arm_ready_delay(Instance& instance, Clock::time_point deadline);
    void arm_restart(Instance& instance, Clock::time_point deadline);
    void arm_ready_timeout(Instance& instance, Clock::time_point deadline);
    void arm_stop_escalation(Instance& instance, Clock::time_point deadline);
    void arm_cgroup_drain(Instance& instance, Clock::time_point deadline);
    // The next WATCHDOG=1 is due within watchdog_timeout (or `grace`, if given).
    void arm_watchdog(Instance& instance, std::optional<config::Duration> grace = std::nullopt);
    void arm_watchdog_until(Instance& instance, Clock::time_point deadline);

    // ---- usage and recycling (usage.cpp) ----
    // max_age: when the instance, ready now, is due to be recycled (with its jitter).
    void set_recycle_deadline(Instance& instance);
    // The recycle timer, armed only while a worker has recycle_memory or max_age and a
    // ready instance: at the next memory sample or the earliest max_age.
    void rearm_recycling();
    bool may_recycle(const Worker& worker) const;            // not busy, recycling configured
    bool may_be_recycled(const Instance& instance) const;    // running, ready, in service
    void on_recycle_timer();
    void recycle_instance(Instance& instance, const std::string& why, bool by_memory);
    // The end of a recycle: the new process records why it replaced the old one; a
    // replacement that did not take over leaves the old process serving, tried again later.
    std::function<void(std::vector<InstanceReport>)> recycle_done(const RollingRestart& rollout);

    // ---- exits and restarts (exits.cpp) ----
    // The set of pidfds (opened on first use: a failure is retried at the next start).
    Result<EpollSet*> exit_watch();
    void on_exit_reported(uint64_t instance_id);
    void on_exit_event(Instance& instance);
    void handle_exit(Instance& instance, const ExitStatus& status);
    // kill_mode = "cgroup": a SIGKILL its cgroup counts as an OOM kill is reported as one.
    void note_oom_kill(Instance& instance, ExitStatus& status);
    void handle_spawn_failure(Instance& instance, const Error& error);
    // Whether a restart with no delay may spawn in this very turn of the loop (after an
    // exit) or must wait for the next (after a failed spawn: no recursion).
    enum class RestartTurn { next, now_if_no_delay };
    void schedule_restart(Instance& instance, config::Duration delay, const std::string& why,
                          RestartTurn turn = RestartTurn::next);
    void emit_exit(const Instance& instance, pid_t pid, const ExitStatus& status, Clock::duration ran,
                   bool on_purpose, bool was_starting, KillReason reason);
    // kill_mode = "cgroup": the main process exited; true if processes are left in its
    // cgroup, which are then killed, and the exit handled once it is empty
    // (on_cgroup_event). Not empty a stop_timeout after cgroup.kill: killed once more;
    // after another, what is left (a process stuck in the kernel) is given up on, so
    // that the instance can restart and a shutdown can end.
    bool defer_exit_until_cgroup_empty(Instance& instance, const ExitStatus& status);
    void on_cgroup_event(uint64_t instance_id);
    void on_cgroup_drain_timeout(Instance& instance);
    void finish_pending_exit(Instance& instance);

    // ---- start = "on-demand", idle_stop (on_demand.cpp) ----
    // Idle: the worker's instances have no process, its inherited sockets are watched.
    void watch_for_demand(Worker& worker);
    void stop_watching(Worker& worker);
    // A connection (or datagram) waits on `socket`: started as by an operator's start.
    void wake_on_demand(Worker& worker, const std::string& socket);
    // A worker going idle (idle_stop, or its instances exited 0) is watched once no
    // instance of it runs; called on every state change.
    void settle_on_demand();
    // idle_stop's sampling timer, while the worker runs.
    void arm_idle_check(Worker& worker);
    void on_idle_check(Worker& worker);
    // reload changed only `start` or `idle_stop`: applied live.
    void on_demand_retuned(Worker& worker, const config::WorkerConfig& next);

    // ---- stopping (stopping.cpp) ----
    void stop_instance(Instance& instance) override;
    // RolloutHost, and scale down: stop_delay first (draining), then stop_instance.
    void retire_instance(Instance& instance) override;
    void keep_instance(Instance& instance) override;
    void arm_drain_delay(Instance& instance, Clock::time_point deadline);
    // The same, for `reason` (none: asked for; else kill_for's), said in its event.
    void stop_instance_for(Instance& instance, KillReason reason, const std::string& why);
    void signal_instance(Instance& instance, int signal);
    void advance_shutdown();
    bool is_needed_by_live_worker(const Worker& dependency) const;
    void finish_shutdown();

    // ---- waiters (supervisor.cpp) ----
    // Re-checked after every state change; a waiter returns true once it is finished
    // (it has called its callback) and is then dropped. `rollout`: the waiter of a
    // rolling restart, which an upgrade carries over (any other waiter is a command's,
    // and makes an upgrade wait until it is done).
    void add_waiter(std::function<bool()> waiter, bool rollout = false);
    size_t command_waiters() const;

    // ---- the steps commands are made of (lifecycle.cpp) ----
    struct Tracked {
        uint64_t id;
        std::string worker;
        int index;
        pid_t previous_pid;
    };
    enum class Goal { gone, started };
    // Calls `then` once every tracked instance has reached `goal`, with one report each.
    void await(std::vector<Tracked> tracked, Goal goal, ProgressFn progress,
               std::function<void(std::vector<InstanceReport>)> then);
    std::vector<Tracked> track(Worker& worker, bool only_with_process) const;
    InstanceReport report_gone(const Tracked& t) const;
    std::optional<InstanceReport> report_started(const Tracked& t) const;
    // Starts the worker's idle instances on the operator's behalf: clears the start
    // limit of failed ones, cancels pending restarts, honours `after`.
    // `fresh`: an operator's (limits cleared); false for a start on demand.
    std::vector<Tracked> start_now(Worker& worker, bool fresh = true);
    std::vector<Tracked> stop_now(Worker& worker);
    // Stop, then (if no later command took the worker over) apply a pending config and
    // start again; `then` gets the start reports with previous pids filled in.
    void stop_then_start(Worker& worker, ProgressFn progress,
                         std::function<void(std::vector<InstanceReport>)> then);
    void scale_now(Worker& worker, int count, ProgressFn progress,
                   std::function<void(std::vector<InstanceReport>)> then);
    // True if a restart of `worker` now is a rolling one; the rollout and its waiter.
    bool rolls(const Worker& worker) const;
    // Why `worker` cannot take this canary ("" if it can): it must roll, and keep
    // instances that are not replaced.
    std::string canary_refusal(const Worker& worker, const CanaryOptions& canary) const;
    void rolling_restart(Worker& worker, ProgressFn progress,
                         std::function<void(std::vector<InstanceReport>)> then, const CanaryOptions& canary = {},
                         std::shared_ptr<const config::WorkerConfig> next_config = nullptr,
                         std::string previous_source = {});
    // RolloutHost: the rollout timer, and the rollback of an aborted rollout.
    void wake_at(Clock::time_point when) override;
    void stop_idle_rollout_timer();
    void roll_back(const RollingRestart& aborted) override;
    std::function<void(std::vector<InstanceReport>)> rollback_done(const std::string& name);
    void add_rollout_waiter(std::shared_ptr<RollingRestart> rollout);
    // Why `worker` cannot take another start/restart/scale now, or "" if it can.
    std::string busy_reason(const Worker& worker) const;
    Result<std::vector<Worker*>> resolve(const std::vector<std::string>& names) const;
    // resolve, for commands that start processes: refused while shutting down or while
    // a named worker is busy (busy_reason).
    Result<std::vector<Worker*>> resolve_to_start(const std::vector<std::string>& names) const;

    uv_loop_t* loop_;
    config::Config config_;
    SocketTable sockets_;
    SpawnContext context_;
    Launcher launcher_;
    bool fd_table_fallback_logged_ = false;
    UniqueFd null_fd_;  // /dev/null: stdin of every worker, and stdout/stderr = "null"
    Outputs outputs_;
    EventLog events_;
    // Declared before workers_, whose instances register in their sets: the fd stores,
    // every running process's pidfd keyed by its instance's id (EPOLLONESHOT: an exit
    // is reported once; carried across an upgrade's exec with its registrations), and
    // the instances' cgroups.
    FdStores fd_stores_;
    std::unique_ptr<EpollSet> exits_;
    InstanceCgroups cgroups_;
    health::HealthChecks health_{loop_, *this, launcher_, context_, null_fd_.get()};
    std::vector<std::unique_ptr<Worker>> workers_;
    std::unordered_map<uint64_t, Instance*> instances_by_id_;
    std::unordered_map<pid_t, Instance*> instances_by_pid_;  // running processes
    uint64_t next_instance_id_ = 1;
    Clock::time_point started_at_ = Clock::now();
    uint64_t upgrades_ = 0;  // in-place upgrades this supervisor has been through
    // For the metrics (this image's: an upgrade starts them again).
    Histogram spawn_times_{kSpawnBounds};
    uint64_t reloads_ok_ = 0;
    uint64_t reloads_failed_ = 0;

    struct Waiter {
        std::function<bool()> check;
        bool rollout = false;
    };
    std::vector<Waiter> waiters_;
    bool checking_waiters_ = false;
    bool check_again_ = false;

    std::function<void()> notify_drain_;
    ManagerHooks manager_;
    Timer manager_status_timer_{loop_};
    Timer recycle_timer_{loop_};
    Timer rollout_timer_{loop_};  // the earliest end of a canary's pause
    Clock::time_point rollout_timer_at_{};
    UsageCost usage_cost_;
    Clock::time_point next_memory_sample_{};
    std::mt19937_64 random_{std::random_device{}()};  // max_age_jitter  // coalesces STATUS= updates: at most one per 250 ms
    std::string manager_status_sent_;

    bool reloading_ = false;
    bool shutting_down_ = false;
    bool shutdown_forced_ = false;
    bool shutdown_finished_ = false;
    Timer shutdown_timer_;
    std::function<void()> on_shutdown_done_;
};

}  // namespace fdsup
