// A process's exit and what follows: seen through its pidfd (one-shot, in one epoll set
// for all), reaped, and handled by the worker's restart policy (table/restart_policy.h):
// stopped on purpose, not restarted, failed, or restarted after a backoff. A start that
// fails before exec is handled the same way. In cgroup mode an exit that left processes
// behind waits, bounded, until the instance's cgroup is empty.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "config/values.h"
#include "logging/log_hold.h"
#include "supervisor/supervisor.h"
#include "table/log_about.h"

namespace fdsup {
using config::format_duration;

Result<EpollSet*> Supervisor::exit_watch() {
    return EpollSet::open_once(exits_, loop_, "process exits", [this](uint64_t id, uint32_t) { on_exit_reported(id); });
}

void Supervisor::on_exit_reported(uint64_t id) {
    // An instance erased since (its pidfd closed with it) is not reported again.
    Instance* instance = find_instance(id);
    if (instance != nullptr && instance->pidfd) on_exit_event(*instance);
}

void Supervisor::on_exit_event(Instance& instance) {
    auto exited = pidfd_has_exited(instance.pidfd.get());
    if (exited && !*exited) {
        // A spurious wakeup: still running. The one-shot registration is armed again.
        if (int err = exits_->modify(instance.pidfd.get(), EPOLLIN | EPOLLONESHOT, instance.id); err != 0)
            about(instance).error("worker {}: cannot watch pid {} again: {}; its exit will not be seen",
                                  instance.label(), instance.pid, std::strerror(err));
        return;
    }
    // What is logged from here until the replacement (if any) is cloned is written after
    // it, in one go (logging/log_hold.h); not where the worker writes to fdsupd's own
    // stdout or stderr, where its replacement's first line must not come first.
    std::optional<LogHold> hold;
    const auto& cfg = instance.config();
    if (cfg.stdout_target.kind != config::OutputKind::inherit &&
        cfg.stderr_target.kind != config::OutputKind::inherit)
        hold.emplace();
    // Its last words first, while its pid still names it. (The instance stays: it has a
    // process until handle_exit, so nothing the messages cause can erase it.) A process
    // not given NOTIFY_SOCKET has none: the others' messages wait for the loop.
    if (notify_drain_ && instance.given_notify_socket) notify_drain_();
    std::optional<ExitStatus> status;
    if (exited) {
        // kill_mode = "group": whatever the worker left in its process group goes with
        // it. Done before reaping, while the zombie still pins the group id. (In a
        // cgroup, it all goes: defer_exit_until_cgroup_empty.)
        if (instance.worker->config.kill_mode != config::KillMode::process && instance.cgroup.empty())
            ::kill(-instance.pid, SIGKILL);
        auto reaped = pidfd_try_reap(instance.pidfd.get());
        if (reaped && reaped->has_value()) status = **reaped;
        else if (!reaped) exited = std::unexpected(reaped.error());
    }
    if (!status) {
        // The process is gone but its status is not ours to read (someone else reaped
        // it). Never leave the watch armed on it: that would spin the loop forever.
        about(instance).error("worker {}: pid {}: {}; exit status unknown", instance.label(), instance.pid,
                              exited ? "already reaped" : exited.error().text());
        status = ExitStatus{false, 255, 0, false, {}};
    }
    // Its watch is one-shot and has fired: taking it out of the set and closing it can
    // wait until a replacement started at once is cloned.
    struct SpentWatch {
        EpollSet& set;
        UniqueFd pidfd;
        ~SpentWatch() { set.remove(pidfd.get()); }
    } spent{*exits_, std::move(instance.pidfd)};
    outputs_.process_gone(instance.pid);
    note_oom_kill(instance, *status);
    if (defer_exit_until_cgroup_empty(instance, *status)) {
        instances_by_pid_.erase(instance.pid);  // reaped: its pid may name another process now
        return;
    }
    cgroups_.release(instance);
    handle_exit(instance, *status);
    state_changed();
}

void Supervisor::note_oom_kill(Instance& instance, ExitStatus& status) {
    // Its cgroup is its own (one per spawn): any OOM kill it counts happened to this
    // process or one of its own. A SIGKILL that fdsupd sent itself is not the kernel's.
    // (A stop may end in a SIGKILL of fdsupd's own, or of an operator's `signal`.)
    if (!status.signaled || status.signal != SIGKILL || instance.state == InstanceState::stopping ||
        instance.stop_escalated || instance.cgroup.empty())
        return;
    auto kills = cgroups_.oom_kills(instance);
    if (!kills || *kills == 0) return;
    status.oom_kill = true;
    const auto& limits = instance.worker->config.limits;
    if (limits.memory_max) status.oom_limit = "memory_max " + config::size_text(*limits.memory_max);
    instance.worker->resource_counters.oom_kills++;
}

void Supervisor::handle_exit(Instance& instance, const ExitStatus& status) {
    const auto& cfg = instance.worker->config;
    auto run_time = Clock::now() - instance.started_at;
    pid_t pid = instance.pid;
    bool was_starting = instance.state == InstanceState::starting;
    KillReason reason = std::exchange(instance.kill_reason, KillReason::none);
    instances_by_pid_.erase(pid);
    if (shutting_down_ && instance.stop_escalated) shutdown_forced_ = true;  // SIGKILLed after stop_timeout
    instance.pid = -1;
    instance.ready = false;
    instance.draining = false;  // its drain timer goes with the rest
    instance.last_exit = status;
    instance.timer.stop();
    instance.watchdog_timer.stop();
    health_.stop(instance);
    std::string ran = "pid " + std::to_string(pid) + " " + status.describe() + " after " + format_duration(run_time);
    // Every line from here on (the restart's too) is about the process that exited.
    LogAbout exited = about(instance, pid);
    bool on_purpose = (instance.state == InstanceState::stopping && reason == KillReason::none) || instance.retiring ||
                      instance.worker->stopped_by_operator || instance.worker->removing;
    emit_exit(instance, pid, status, run_time, on_purpose, was_starting, reason);

    // Stopped on purpose (operator, shutdown, scale, rollout): done.
    if (on_purpose) {
        instance.state = InstanceState::stopped;
        spdlog::info("worker {}: {}; stopped", instance.label(), ran);
        emit(EventKind::stopped, instance);
        if (shutting_down_) advance_shutdown();
        return;
    }
    // A start that never became ready, or a process the watchdog found silent: a
    // failure whatever the exit code.
    bool failed = was_starting || reason != KillReason::none;
    if (failed && reason == KillReason::none) instance.last_error = ran + " before it was ready";
    if (instance.replacement) {  // a rollout's candidate: the rollout reports it, nothing restarts it
        instance.state = InstanceState::failed;
        spdlog::error("worker {}: replacement {}", instance.label(), instance.last_error);
        emit(EventKind::failed, instance, {{"error", instance.last_error}});
        if (shutting_down_) advance_shutdown();
        return;
    }
    // On demand, a clean exit is the app saying it is idle: no restart, none counted;
    // the worker is watched again once no instance runs (on_demand.cpp).
    if (cfg.start == config::StartMode::on_demand && !failed && !shutting_down_ && !status.signaled &&
        status.code == 0) {
        instance.state = InstanceState::idle;
        spdlog::info("worker {}: {}; idle (on demand)", instance.label(), ran);
        return;
    }
    if (shutting_down_ || (!failed && !should_restart(cfg, status))) {
        instance.state = InstanceState::exited;
        spdlog::info("worker {}: {}; not restarted ({})", instance.label(), ran,
                     shutting_down_ ? "shutting down"
                     : cfg.restart == config::RestartPolicy::never ? "restart = never" : "restart = on-failure");
        emit(EventKind::not_restarted, instance,
             {{"detail", std::string(shutting_down_ ? "shutting down"
                                     : cfg.restart == config::RestartPolicy::never ? "restart = never"
                                                                                   : "restart = on-failure")}});
        if (shutting_down_) advance_shutdown();
        return;
    }
    if (failed && cfg.restart == config::RestartPolicy::never) {
        instance.state = InstanceState::failed;
        spdlog::error("worker {}: {}; failed: {} (restart = never)", instance.label(), ran, instance.last_error);
        emit(EventKind::failed, instance, {{"error", instance.last_error + " (restart = never)"}});
        return;
    }
    // A failed start backs off whatever its run time: a worker that never gets ready
    // must reach the start limit, not loop every ready_timeout.
    auto delay = failed ? instance.backoff.next_failure_delay(cfg)
                        : instance.backoff.next_delay(cfg, std::chrono::duration_cast<config::Duration>(run_time));
    std::string why = !failed ? ran : reason == KillReason::none ? instance.last_error : instance.last_error + " (" + ran + ")";
    schedule_restart(instance, delay, why, RestartTurn::now_if_no_delay);
}

void Supervisor::handle_spawn_failure(Instance& instance, const Error& error) {
    const auto& cfg = instance.worker->config;
    LogAbout subject = about(instance);
    instance.last_error = error.text();
    emit(EventKind::start_failed, instance, {{"error", error.text()}});
    if (cfg.restart == config::RestartPolicy::never) {
        instance.state = InstanceState::failed;
        spdlog::error("worker {}: {}; not retried (restart = never)", instance.label(), error.text());
        emit(EventKind::failed, instance, {{"error", error.text() + " (restart = never)"}});
        return;
    }
    if (error.permanent && instance.start_limiter.note_permanent_failure(cfg)) {
        instance.state = InstanceState::failed;
        instance.last_error = cannot_start_reason(instance.start_limiter.permanent_failures(), error);
        spdlog::error("worker {}: {}; state failed until `fdsupctl start {}`", instance.label(), instance.last_error,
                      cfg.name);
        emit(EventKind::failed, instance, {{"error", instance.last_error}});
        return;
    }
    schedule_restart(instance, instance.backoff.next_failure_delay(cfg), error.text());
}

// The exit event: how (status or signal) and why (the reasons are protocol.h's EVENT's).
void Supervisor::emit_exit(const Instance& instance, pid_t pid, const ExitStatus& status, Clock::duration ran,
                           bool on_purpose, bool was_starting, KillReason reason) {
    const auto& cfg = instance.worker->config;
    bool success = !status.signaled && std::find(cfg.success_exit_codes.begin(), cfg.success_exit_codes.end(),
                                                 status.code) != cfg.success_exit_codes.end();
    const char* why = status.oom_kill                ? "oom"
                      : on_purpose                   ? "stopped"
                      : reason != KillReason::none   ? kill_reason_name(reason)
                      : was_starting                 ? "not_ready"
                      : success                      ? "exit"
                                                     : "crash";
    EventFields fields{{"status", status.signaled ? EventValue(nullptr) : EventValue(int64_t{status.code})},
                       {"signal", status.signaled ? EventValue(int64_t{status.signal}) : EventValue(nullptr)},
                       {"reason", std::string(why)},
                       {"ran", std::chrono::duration<double>(ran).count()}};
    if (status.oom_kill) fields.emplace_back("limit", status.oom_limit);
    if (reason != KillReason::none && !instance.last_error.empty()) fields.emplace_back("error", instance.last_error);
    Event event;
    event.kind = EventKind::exited;
    event.worker = cfg.name;
    event.instance = instance.index;
    event.pid = pid;
    event.fields = std::move(fields);
    events_.add(std::move(event));
}

// With no delay after an exit, the spawn happens now: the loop's next turn would only add
// its own latency to every respawn. Any other restart goes through the timer, even with
// no delay: a spawn that fails at once must not recurse into the next one (a 0 s backoff
// after failed spawns would otherwise overflow the stack).
// Its log line's subject is the caller's (the pid that exited, if one did).
void Supervisor::schedule_restart(Instance& instance, config::Duration delay, const std::string& why,
                                  RestartTurn turn) {
    ++instance.restarts;
    if (delay == config::Duration::zero())
        spdlog::warn("worker {}: {}; restart #{} now", instance.label(), why, instance.restarts);
    else
        spdlog::warn("worker {}: {}; restart #{} in {}", instance.label(), why, instance.restarts,
                     format_duration(delay));
    instance.state = InstanceState::backoff;
    emit(EventKind::restart_scheduled, instance,
         {{"delay", std::chrono::duration<double>(delay).count()},
          {"restarts", static_cast<int64_t>(instance.restarts)},
          {"detail", why}});
    if (turn == RestartTurn::now_if_no_delay && delay == config::Duration::zero()) {
        instance.timer_deadline = Clock::now();
        spawn(instance);  // a failure here goes back through the timer (handle_spawn_failure)
        return;
    }
    arm_restart(instance, Clock::now() + delay);
}

// ---- kill_mode = "cgroup": an exit that left processes in the cgroup -------------

bool Supervisor::defer_exit_until_cgroup_empty(Instance& instance, const ExitStatus& status) {
    if (instance.cgroup.empty()) return false;
    // Reading also rearms the watch: an emptying from here on is reported.
    auto populated = cgroups_.populated(instance);
    if (populated && !*populated) return false;  // the usual case: it left nothing behind
    if (!populated) {
        // Emptiness cannot be seen: kill what is there and go on without waiting.
        about(instance).error("worker {}: {}", instance.label(), populated.error().text());
        cgroups_.signal(instance, SIGKILL);
        return false;
    }
    about(instance).info("worker {}: pid {} {}; killing what it left in its cgroup", instance.label(), instance.pid,
                         status.describe());
    instance.exit_pending = status;
    instance.drain_retried = false;
    // Nothing of the old process is waited for now but its cgroup's emptying: no ready
    // delay or timeout, no watchdog, no stop escalation (what is left is SIGKILLed).
    instance.ready = false;
    instance.watchdog_timer.stop();
    health_.stop(instance);  // its main process is gone: nothing to check
    cgroups_.signal(instance, SIGKILL);
    arm_cgroup_drain(instance, Clock::now() + instance.worker->config.stop_timeout);
    return true;
}

void Supervisor::on_cgroup_drain_timeout(Instance& instance) {
    auto timeout = instance.worker->config.stop_timeout;
    if (!instance.drain_retried) {
        instance.drain_retried = true;
        about(instance).warn("worker {}: its cgroup is not empty {} after cgroup.kill; killing again", instance.label(),
                             format_duration(timeout));
        cgroups_.signal(instance, SIGKILL);
        arm_cgroup_drain(instance, Clock::now() + timeout);
        return;
    }
    about(instance).error("worker {}: {} still in its cgroup {} after two rounds of cgroup.kill; going on without them",
                          instance.label(), cgroups_.count_left(instance), cgroups_.path_of(instance));
    finish_pending_exit(instance);
}

void Supervisor::finish_pending_exit(Instance& instance) {
    ExitStatus status = *std::exchange(instance.exit_pending, std::nullopt);
    instance.timer.stop();
    cgroups_.release(instance);
    handle_exit(instance, status);
    state_changed();
}

void Supervisor::on_cgroup_event(uint64_t instance_id) {
    Instance* instance = find_instance(instance_id);
    if (instance == nullptr || !instance->cgroup_events) return;  // released since
    auto populated = cgroups_.populated(*instance);
    if (populated && *populated) return;
    if (!populated) {
        // Level-triggered: an fd that cannot be read would be reported for ever.
        about(*instance).error("worker {}: {}; no longer watching its cgroup", instance->label(),
                               populated.error().text());
        cgroups_.unwatch(*instance);
    }
    if (!instance->exit_pending) return;  // the main process's own exit is on its way
    finish_pending_exit(*instance);
}

}  // namespace fdsup
