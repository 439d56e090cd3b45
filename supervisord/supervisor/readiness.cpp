// Readiness and liveness of a running instance: the move from starting to running,
// the timeouts that bound each phase (ready_timeout while starting, stop_timeout while
// stopping, the watchdog while running), and what happens when one runs out.
//
// Every timeout is a deadline on a one-shot timer, never a poll: an idle supervisor
// makes no wakeups. EXTEND_TIMEOUT_USEC= moves the current phase's deadline later.
#include <signal.h>
#include <sys/stat.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "config/values.h"
#include "supervisor/supervisor.h"
#include "table/log_about.h"

namespace fdsup {

using config::format_duration;

namespace {

bool any_waiting_for_dependencies(const std::vector<std::unique_ptr<Worker>>& workers) {
    return std::any_of(workers.begin(), workers.end(), [](const auto& w) { return w->waiting_for_dependencies; });
}

}  // namespace

void Supervisor::become_ready(Instance& instance) {
    instance.timer.stop();  // the ready delay or ready timeout
    instance.state = InstanceState::running;
    instance.ready = true;
    auto took = Clock::now() - instance.started_at;
    about(instance).info("worker {}: pid {} ready after {}", instance.label(), instance.pid, format_duration(took));
    emit(EventKind::ready, instance, {{"after", std::chrono::duration<double>(took).count()}});
    arm_watchdog(instance);
    health_.running(instance);  // its liveness probe, if it has one
    if (instance.worker->config.recycle.any()) {
        set_recycle_deadline(instance);
        rearm_recycling();
    }
    // all_ready() looks at every instance of the worker: asked only when some worker
    // waits, or starting 10,000 instances would look 10,000 times at up to 10,000.
    if (any_waiting_for_dependencies(workers_) && instance.worker->all_ready()) start_waiting_dependents();
}

void Supervisor::health_ready(Instance& instance) {
    if (instance.state != InstanceState::starting) return;
    become_ready(instance);
    state_changed();
}

std::vector<ino_t> Supervisor::socket_inodes(const Instance& instance) const {
    std::vector<ino_t> inodes;
    const auto& cfg = instance.worker->config;
    auto add = [&](const std::string& name) {
        auto fd = sockets_.fds().find(name);
        struct stat st {};
        if (fd != sockets_.fds().end() && ::fstat(fd->second, &st) == 0) inodes.push_back(st.st_ino);
    };
    for (const auto& [fd, name] : cfg.fds) add(name);
    for (const auto& name : cfg.scm_rights) add(name);
    return inodes;
}

std::optional<std::vector<pid_t>> Supervisor::cgroup_processes(const Instance& instance) const {
    if (instance.cgroup.empty()) return std::nullopt;
    auto pids = cgroups_.processes(instance);
    if (!pids) return std::nullopt;
    // The main process first: the one most likely to accept.
    std::erase(*pids, instance.pid);
    pids->insert(pids->begin(), instance.pid);
    return std::move(*pids);
}

void Supervisor::liveness_failed(Instance& instance, const std::string& why) {
    if (!instance.has_process() || instance.state != InstanceState::running || shutting_down_) return;
    Worker& worker = *instance.worker;
    worker.probe_counters.replacements++;
    instance.health.replaced = "pid " + std::to_string(instance.pid) + ": " + why;
    instance.health.replaced_at = std::chrono::system_clock::now();
    // Replaced the graceful way, as a rolling restart of this one instance: the
    // replacement is started (per max_surge) and must be ready before the failed
    // process gets stop_signal. Where that cannot be (a rollout is already under way,
    // or the instance is itself on its way in or out), it is stopped and restarted by
    // its policy, as a watchdog failure is.
    if (worker.rollout || instance.retiring || instance.replacement || worker.pending_config) {
        kill_for(instance, KillReason::liveness, why);
        state_changed();
        return;
    }
    about(instance).error("worker {}: pid {}: {}; replacing it", instance.label(), instance.pid, why);
    instance.last_error = why;
    std::vector<RollingRestart::Slot> slots{{instance.index, instance.id, instance.pid, 0, -1, false, {}}};
    auto rollout = std::make_shared<RollingRestart>(worker.config.name, worker.generation, std::move(slots),
                                                    worker.config.max_surge);
    rollout->reason = instance.label() + " failed its liveness probe";
    rollout->then = liveness_replacement_done(*rollout);
    worker.rollout = rollout;
    emit_rollout_began(*rollout);
    add_rollout_waiter(std::move(rollout));
    state_changed();
}

std::function<void(std::vector<InstanceReport>)> Supervisor::liveness_replacement_done(const RollingRestart& rollout) {
    // Called by the rollout itself, from inside its advance(): it is alive then.
    return [this, &rollout](const std::vector<InstanceReport>& reports) {
        const auto& slot = rollout.slots.at(0);
        if (!reports.empty() && reports[0].ok) {
            if (Instance* fresh = find_instance(slot.new_id)) fresh->restarts++;  // it took the slot over
            return;
        }
        // The replacement failed (or the rollout was stopped): the failed process must
        // not go on as if it were healthy. Stopped and restarted by its policy.
        Instance* old = find_instance(slot.old_id);
        if (old == nullptr || old->retiring || old->state != InstanceState::running) return;
        std::string why = old->last_error.empty() ? rollout.reason : old->last_error;
        kill_for(*old, KillReason::liveness,
                 why + (reports.empty() ? "" : "; its replacement did not take over: " + reports[0].message));
    };
}

void Supervisor::probe_failed(Instance& instance, bool liveness, const std::string& detail, int failures) {
    EventFields fields{{"probe", std::string(liveness ? "liveness" : "ready")}, {"detail", detail}};
    if (liveness) fields.emplace_back("failures", static_cast<int64_t>(failures));
    emit(EventKind::probe_failed, instance, std::move(fields));
    // A canary that holds is judged on every failed liveness check, not only the last.
    if (liveness && instance.worker->rollout) state_changed();
}

void Supervisor::resume() {
    // The restored instances' health checks (state/ restores what they found): armed
    // here, once the restore can no longer fail, so that a rolled-back image never
    // inherits a probe process it does not know. One that failed its liveness probe
    // and is being replaced is not probed again.
    for (auto& worker : workers_)
        for (auto& instance : worker->instances) {
            if (!instance->has_process() || instance->exit_pending) continue;
            const auto& probe = worker->config.liveness_probe;
            if (instance->state == InstanceState::starting) health_.starting(*instance);
            else if (instance->state == InstanceState::running && instance->ready &&
                     !(probe && instance->health.failures >= probe->failures))
                health_.running(*instance);
        }
    for (auto& worker : workers_) {  // on demand: watched again, or its idle clock goes on
        if (worker->demand.watched) watch_for_demand(*worker);
        else arm_idle_check(*worker);
    }
    rearm_recycling();
    outputs_.retune_logs(config_);  // a file not in the state was opened with no options
    // A capture whose process the previous image reaped: its pid may be another's now.
    outputs_.processes_gone_unless([this](pid_t pid) { return runs(pid); });
    outputs_.resume();  // the adopted log files' leftovers: no rollback can need them now
    state_changed();
}

void Supervisor::mark_ready(Instance& instance) {
    if (instance.state == InstanceState::starting) become_ready(instance);
}

void Supervisor::arm_ready_delay(Instance& instance, Clock::time_point deadline) {
    instance.timer_deadline = deadline;
    instance.timer.start(until(deadline), [this, &instance] {
        if (instance.state == InstanceState::starting) become_ready(instance);
        state_changed();
    });
}

void Supervisor::arm_restart(Instance& instance, Clock::time_point deadline) {
    instance.timer_deadline = deadline;
    instance.timer.start(until(deadline), [this, &instance] {
        if (instance.state == InstanceState::backoff) spawn(instance);
        state_changed();
    });
}

void Supervisor::arm_ready_timeout(Instance& instance, Clock::time_point deadline) {
    instance.timer_deadline = deadline;
    instance.timer.start(until(deadline), [this, &instance] {
        if (instance.state == InstanceState::starting && instance.has_process())
            kill_for(instance, KillReason::ready_timeout,
                     "not ready within ready_timeout (" +
                         format_duration(Clock::now() - instance.started_at) + " after exec)");
        state_changed();
    });
}

void Supervisor::arm_stop_escalation(Instance& instance, Clock::time_point deadline) {
    instance.timer_deadline = deadline;
    instance.timer.start(until(deadline), [this, &instance] {
        if (instance.state != InstanceState::stopping || !instance.has_process()) return;
        about(instance).warn("worker {}: pid {} still running after stop_timeout; sending SIGKILL", instance.label(),
                             instance.pid);
        instance.stop_escalated = true;
        emit(EventKind::stop_timeout, instance,
             {{"timeout", std::chrono::duration<double>(instance.worker->config.stop_timeout).count()}});
        signal_instance(instance, SIGKILL);
    });
}

void Supervisor::arm_cgroup_drain(Instance& instance, Clock::time_point deadline) {
    instance.timer_deadline = deadline;
    instance.timer.start(until(deadline), [this, &instance] {
        if (instance.exit_pending) on_cgroup_drain_timeout(instance);
    });
}

void Supervisor::arm_watchdog(Instance& instance, std::optional<config::Duration> grace) {
    if (instance.watchdog_timeout <= config::Duration::zero() || !instance.has_process()) {
        instance.watchdog_timer.stop();
        return;
    }
    instance.last_watchdog_ping = Clock::now();
    arm_watchdog_until(instance, instance.last_watchdog_ping + grace.value_or(instance.watchdog_timeout));
}

void Supervisor::arm_watchdog_until(Instance& instance, Clock::time_point deadline) {
    instance.watchdog_deadline = deadline;
    instance.watchdog_timer.start(until(deadline), [this, &instance] {
        if (!instance.has_process() || instance.state == InstanceState::stopping) return;
        kill_for(instance, KillReason::watchdog,
                 "watchdog timeout: no WATCHDOG=1 for " + format_duration(Clock::now() - instance.last_watchdog_ping));
        state_changed();
    });
}

void Supervisor::kill_for(Instance& instance, KillReason reason, const std::string& why) {
    if (!instance.has_process() || instance.state == InstanceState::stopping) return;
    instance.last_error = why;
    about(instance).error("worker {}: pid {}: {}; stopping it", instance.label(), instance.pid, why);
    stop_instance_for(instance, reason, why);
    instance.kill_reason = reason;  // after stop_instance: its exit is a failure, not a stop
}

void Supervisor::extend_timeout(Instance& instance, Clock::time_point until_at) {
    switch (instance.state) {
        case InstanceState::starting:
            if (instance.worker->config.ready == config::ReadyMode::notify && until_at > instance.timer_deadline)
                arm_ready_timeout(instance, until_at);
            break;
        case InstanceState::stopping:
            if (until_at > instance.timer_deadline) arm_stop_escalation(instance, until_at);
            break;
        case InstanceState::running: {
            // The runtime timeout here is the watchdog: no ping is needed before `until_at`.
            auto left = std::chrono::ceil<config::Duration>(until_at - Clock::now());
            if (instance.watchdog_timeout > config::Duration::zero() && left > instance.watchdog_timeout)
                arm_watchdog(instance, left);
            break;
        }
        default: break;
    }
}

}  // namespace fdsup
