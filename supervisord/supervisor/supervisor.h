// The supervisor: owns the listening sockets, spawns every worker instance through the
// launcher, watches their pidfds, restarts them by policy, and stops them gracefully.
// Everything runs on one libuv loop; nothing here blocks.
//
// The operator's commands (lifecycle.cpp, reload.cpp) are asynchronous: they act at
// once and report through callbacks when the processes have done what was asked.
// They wait with *waiters*: predicates re-checked after every state change, so no
// timer ever polls.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/model.h"
#include "json/json_writer.h"
#include "control/protocol.h"
#include "launcher/launcher.h"
#include "launcher/plan_builder.h"
#include "fdserver/fd_server.h"
#include "notify/notify_message.h"
#include "notify/notify_socket.h"
#include "loop/epoll_set.h"
#include "cgroups/instance_cgroups.h"
#include "fdstore/fd_stores.h"
#include "supervisor/instance.h"
#include "output/log_book.h"
#include "logging/log_rate_limit.h"
#include "supervisor/operation.h"
#include "output/outputs.h"
#include "rollout/rolling_restart.h"
#include "sockets/socket_table.h"
#include "supervisor/spawn_histogram.h"
#include "sys/cgroup_tree.h"
#include "sys/unique_fd.h"

namespace fdsup {

// The state an in-place upgrade carries (snapshot.cpp). Plain (unordered) JSON: it is
// never shown to anyone, and parses about twice as fast as the ordered kind.
using StateDocument = nlohmann::json;

class FdClaims;  // snapshot.cpp: the fds a restore takes over, each checked

class Supervisor : private RolloutHost {
public:
    // `for_restore`: the workers get no instances (restore() brings them from the state).
    Supervisor(uv_loop_t* loop, config::Config config, std::vector<OwnedSocket> sockets,
               SpawnContext context, bool for_restore = false);
    ~Supervisor();
    Supervisor(const Supervisor&) = delete;
    Supervisor& operator=(const Supervisor&) = delete;

    // Starts every worker, each once the workers in its `after` are ready.
    void start_all();

    // Graceful stop of every worker (dependents before their dependencies), SIGKILL for
    // what remains after shutdown_timeout; then `on_done`. Idempotent.
    void shutdown(std::function<void()> on_done);
    bool shutting_down() const override { return shutting_down_; }
    // The shutdown had to SIGKILL a worker (its stop_timeout, or shutdown_timeout, ran out).
    bool shutdown_forced() const { return shutdown_forced_; }

    // ---- operator commands (lifecycle.cpp) ----
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
    // wait in the backlog meanwhile). rolling: see rolling_restart.cpp; a worker with a
    // rollout in progress refuses start, restart and scale.
    void restart_workers(const std::vector<std::string>& names, ProgressFn progress, OperationDoneFn done);
    // scale: more instances start; fewer stop the newest (highest index) first.
    void scale_worker(const std::string& name, int count, ProgressFn progress, OperationDoneFn done);

    struct SignalSent {
        int signal = 0;
        std::vector<pid_t> pids;
    };
    // Sends `signal` (a name or number; default: the worker's reload_signal) to every
    // instance that has a process, honouring kill_mode.
    Result<SignalSent> signal_worker(const std::string& name, const std::optional<std::string>& signal);

    // ---- reload (reload.cpp) ----
    // Re-reads the config file and applies the difference (see config_diff.h). An
    // invalid config, a socket that cannot be bound, or a change that cannot be made
    // live changes nothing. Done once every change has been carried out.
    void reload(ProgressFn progress, ReloadDoneFn done);
    bool reloading() const { return reloading_; }

    // ---- sd_notify (notify_events.cpp) ----
    // One datagram from the notify socket: the sender's instance is found by pid, the
    // message parsed and applied; anything wrong is dropped (fds closed) and counted.
    void handle_notify(notify::Datagram datagram);
    // Handles the notify datagrams already queued; called before a process's exit is
    // handled, so that what it sent just before exiting (READY=1, FDSTORE=1 on its way
    // out) is still taken as its own, as systemd does by priority.
    void set_notify_drain(std::function<void()> drain) { notify_drain_ = std::move(drain); }
    // fdsupd's own service manager (sd_notify): told RELOADING=1 and READY=1 around
    // every reload, and a STATUS= summary when the process table changes; sockets a
    // reload binds are parked in its fd store, and those it closes taken out again.
    struct ManagerHooks {
        std::function<void(const std::string& message)> notify;
        std::function<bool(const std::string& name, int fd)> park;  // empty: no fd store
        std::function<void(const std::string& name)> unpark;
    };
    void set_manager(ManagerHooks hooks) { manager_ = std::move(hooks); }
    // "3 workers, 8 of 8 instances running" (+ ", 1 in backoff, 1 failed" ...).
    std::string status_summary() const;
    uint64_t notify_dropped() const { return notify_dropped_; }
    // `pid` is one of our workers' running processes (reaped through its pidfd).
    bool runs(pid_t pid) const { return instances_by_pid_.contains(pid); }

    // ---- the fd socket (fd_access.cpp) ----
    // Which sockets a process may fetch: a worker (or its descendant) its own `fds` and
    // `scm_rights`, whatever its uid; any other process everything if it is root or
    // fdsupd's uid; nobody else anything.
    Result<fdserver::FdAccess> fd_access(pid_t pid, uid_t uid) const;
    // The current fd of socket `name`, -1 if none.
    int socket_fd(const std::string& name) const;
    // {"cmd":"store"} from a peer fd_access let in: into its instance's fd store, under
    // the rules FDSTORE=1 follows (notify_access included).
    Result<StoreOutcome> store_from_fd_socket(const fdserver::FdAccess& peer, const std::string& name,
                                              std::vector<UniqueFd> fds, bool poll);

    // ---- state, for status and the control server ----
    const config::Config& config() const { return config_; }  // as last loaded
    const SocketTable& sockets() const { return sockets_; }
    const std::vector<std::unique_ptr<Worker>>& workers() const { return workers_; }
    Worker* find_worker(const std::string& name) const override;
    LogBook& logs() { return outputs_.book(); }
    Clock::time_point started_at() const { return started_at_; }
    uint64_t upgrades() const { return upgrades_; }
    const SpawnHistogram& spawn_times() const { return spawn_times_; }
    uint64_t reloads(bool ok) const { return ok ? reloads_ok_ : reloads_failed_; }

    // ---- in-place upgrade (snapshot.cpp) ----
    // Why an upgrade cannot begin now, or "" if it can.
    std::string upgrade_refusal() const;
    // The state for the next image, written as members of the object `w` is in (the
    // upgrader adds its own); every fd it names is added to `keep`.
    void snapshot(JsonWriter& w, std::vector<int>& keep) const;
    // On a Supervisor built (with no sockets) from the snapshot's config: adopts the
    // sockets, processes, pipes, stores and rollouts the snapshot names, and re-arms
    // every timer to its deadline. Call before the loop runs; then resume() (never
    // start_all(), which would start stopped and exited instances). `rolled_back`: the
    // image that wrote the state restores it again (the upgrade count stays).
    Result<void> restore(const StateDocument& state, bool rolled_back = false);
    // After restore, once the loop's handlers are in place: what changed meanwhile
    // (exits are seen by their pidfds on the first loop turn) is acted on.
    void resume() { state_changed(); }

private:
    // supervisor.cpp: the process table
    Worker& add_worker(const config::WorkerConfig& config, bool with_instances = true);
    Instance& add_instance(Worker& worker);
    void start_worker(Worker& worker);
    void start_waiting_dependents();
    bool dependencies_ready(const Worker& worker) const;

    void spawn(Instance& instance) override;
    Result<void> launch(Instance& instance);

    // readiness.cpp: ready, ready timeouts, the watchdog, stop escalation
    void become_ready(Instance& instance);
    // Each timer of an instance runs to an absolute deadline (kept in the instance, so
    // that an upgrade can carry it over): the ready delay, the restart after backoff,
    // the ready timeout, stop escalation, the watchdog.
    void arm_ready_delay(Instance& instance, Clock::time_point deadline);
    void arm_restart(Instance& instance, Clock::time_point deadline);
    void arm_ready_timeout(Instance& instance, Clock::time_point deadline);
    void arm_stop_escalation(Instance& instance, Clock::time_point deadline);
    // An exit deferred until the cgroup is empty (cgroups.cpp) waits at most this long
    // per round of cgroup.kill.
    void arm_cgroup_drain(Instance& instance, Clock::time_point deadline);
    // The next WATCHDOG=1 is due within watchdog_timeout (or `grace`, if given).
    void arm_watchdog(Instance& instance, std::optional<config::Duration> grace = std::nullopt);
    void arm_watchdog_until(Instance& instance, Clock::time_point deadline);
    // The supervisor stops a process that failed (not ready in time, silent watchdog):
    // stop_signal, SIGKILL after stop_timeout, then a restart by policy.
    void kill_for(Instance& instance, KillReason reason, const std::string& why);
    // EXTEND_TIMEOUT_USEC=: the timeout of the current phase ends no sooner than `until`.
    void extend_timeout(Instance& instance, Clock::time_point until);

    // notify_events.cpp
    struct NotifySender {
        Instance* instance = nullptr;
        std::string refusal;  // why the sender may not notify, when instance is null
    };
    NotifySender find_notify_sender(pid_t pid) const;
    // The instance a process belongs to: its main process, or a descendant of it (found
    // by walking /proc parents). No instance if neither.
    struct ProcessOwner {
        Instance* instance = nullptr;
        bool main = false;
    };
    ProcessOwner owner_of(pid_t pid) const;
    void drop_notify(pid_t pid, const std::string& who, const std::string& why);

    // FDSTORE=1 / FDSTOREREMOVE=1 as systemd takes them.
    void handle_fd_store_message(Instance& instance, const notify::NotifyMessage& message, std::vector<UniqueFd> fds);
    // The set of pidfds (opened on first use: a failure is retried at the next start).
    Result<EpollSet*> exit_watch();
    void on_exit_reported(uint64_t instance_id);
    void on_exit_event(Instance& instance);
    void handle_exit(Instance& instance, const ExitStatus& status);
    void handle_spawn_failure(Instance& instance, const Error& error);
    void schedule_restart(Instance& instance, config::Duration delay, const std::string& why);

    void stop_instance(Instance& instance) override;
    void signal_instance(Instance& instance, int signal);

    // exits.cpp, kill_mode = "cgroup": the main process exited; true if processes are
    // left in its cgroup, which are then killed, and the exit handled once it is empty
    // (on_cgroup_event). Not empty a stop_timeout after cgroup.kill: killed once more;
    // after another, what is left (a process stuck in the kernel) is given up on, so
    // that the instance can restart and a shutdown can end.
    bool defer_exit_until_cgroup_empty(Instance& instance, const ExitStatus& status);
    void on_cgroup_event(uint64_t instance_id);
    void on_cgroup_drain_timeout(Instance& instance);
    void finish_pending_exit(Instance& instance);

    void advance_shutdown();
    bool is_needed_by_live_worker(const Worker& dependency) const;
    void finish_shutdown();

    // snapshot.cpp
    void restore_or_throw(const StateDocument& state, bool rolled_back);
    void restore_instance(Worker& worker, const StateDocument& j, FdClaims& fds);
    void restore_rollout(Worker& worker, const StateDocument& r);

    // Waiters: re-checked after every state change; a waiter returns true once it is
    // finished (it has called its callback) and is then dropped. Also erases what is
    // due to go: retiring instances, removed workers, sockets no process holds.
    // `rollout`: the waiter of a rolling restart, which an upgrade carries over (any
    // other waiter is a command's, and makes an upgrade wait until it is done).
    void add_waiter(std::function<bool()> waiter, bool rollout = false);
    size_t command_waiters() const;
    void state_changed() override;
    void sweep();

    // lifecycle.cpp: the steps commands are made of
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
    Instance* find_instance(uint64_t id) const override;
    // Starts the worker's idle instances on the operator's behalf: clears the start
    // limit of failed ones, cancels pending restarts, honours `after`.
    std::vector<Tracked> start_now(Worker& worker);
    std::vector<Tracked> stop_now(Worker& worker);
    // Why `worker` cannot take another start/restart/scale now, or "" if it can.
    std::string busy_reason(const Worker& worker) const;
    // Stop, then (if no later command took the worker over) apply a pending config and
    // start again; `then` gets the start reports with previous pids filled in.
    void stop_then_start(Worker& worker, ProgressFn progress,
                         std::function<void(std::vector<InstanceReport>)> then);
    void apply_pending_config(Worker& worker);
    void scale_now(Worker& worker, int count, ProgressFn progress,
                   std::function<void(std::vector<InstanceReport>)> then);
    Result<std::vector<Worker*>> resolve(const std::vector<std::string>& names) const;
    // resolve, for commands that start processes: refused while shutting down or while
    // a named worker is busy (busy_reason).
    Result<std::vector<Worker*>> resolve_to_start(const std::vector<std::string>& names) const;

    // Rolling restarts (rollout/rolling_restart.h), begun here (lifecycle.cpp)
    // True if a restart of `worker` now is a rolling one.
    bool rolls(const Worker& worker) const;
    void rolling_restart(Worker& worker, ProgressFn progress,
                         std::function<void(std::vector<InstanceReport>)> then);
    void add_rollout_waiter(std::shared_ptr<RollingRestart> rollout);
    // RolloutHost (what a rollout does to the process table)
    Instance& add_replacement(Worker& worker, const Instance& old) override;
    void start_fresh(Instance& instance) override;

    uv_loop_t* loop_;
    config::Config config_;
    SocketTable sockets_;
    SpawnContext context_;
    Launcher launcher_;
    UniqueFd null_fd_;  // /dev/null: stdin of every worker, and stdout/stderr = "null"
    Outputs outputs_;
    // The rules of the workers' fd stores, and the watch of every stored fd for
    // hang-ups: declared before workers_, so that it outlives their stores.
    FdStores fd_stores_;
    // Every running process's pidfd, keyed by its instance's id (EPOLLONESHOT: an exit
    // is reported once). Carried across an upgrade's exec with its registrations.
    std::unique_ptr<EpollSet> exits_;
    // kill_mode = "cgroup": the instances' cgroups and the set watching them.
    InstanceCgroups cgroups_;
    std::vector<std::unique_ptr<Worker>> workers_;
    std::unordered_map<uint64_t, Instance*> instances_by_id_;
    std::unordered_map<pid_t, Instance*> instances_by_pid_;  // running processes, for notify
    uint64_t next_instance_id_ = 1;
    Clock::time_point started_at_ = Clock::now();
    uint64_t upgrades_ = 0;  // in-place upgrades this supervisor has been through
    // For the metrics (this image's: an upgrade starts them again).
    SpawnHistogram spawn_times_;
    uint64_t reloads_ok_ = 0;
    uint64_t reloads_failed_ = 0;

    struct Waiter {
        std::function<bool()> check;
        bool rollout = false;
    };
    std::vector<Waiter> waiters_;
    bool checking_waiters_ = false;
    bool check_again_ = false;

    uint64_t notify_dropped_ = 0;
    std::function<void()> notify_drain_;
    ManagerHooks manager_;
    Timer manager_status_timer_{loop_};  // coalesces STATUS= updates: at most one per 250 ms
    std::string manager_status_sent_;
    LogRateLimit notify_drop_log_{20, std::chrono::seconds(10)};
    Timer notify_drop_summary_;

    bool reloading_ = false;
    bool shutting_down_ = false;
    bool shutdown_forced_ = false;
    bool shutdown_finished_ = false;
    Timer shutdown_timer_;
    std::function<void()> on_shutdown_done_;
};

}  // namespace fdsup
