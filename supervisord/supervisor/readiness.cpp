// Readiness and liveness of a running instance: the move from starting to running,
// the timeouts that bound each phase (ready_timeout while starting, stop_timeout while
// stopping, the watchdog while running), and what happens when one runs out.
//
// Every timeout is a deadline on a one-shot timer, never a poll: an idle supervisor
// makes no wakeups. EXTEND_TIMEOUT_USEC= moves the current phase's deadline later.
#include <signal.h>
#include <spdlog/spdlog.h>

#include "config/values.h"
#include "supervisor/supervisor.h"

namespace fdsup {

using config::format_duration;

namespace {

std::chrono::milliseconds until(Clock::time_point deadline) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    return std::max(left, std::chrono::milliseconds(0));
}

}  // namespace

void Supervisor::become_ready(Instance& instance) {
    instance.timer.stop();  // the ready delay or ready timeout
    instance.state = InstanceState::running;
    instance.ready = true;
    spdlog::info("worker {}: pid {} ready after {}", instance.label(), instance.pid,
                 format_duration(Clock::now() - instance.started_at));
    arm_watchdog(instance);
    if (instance.worker->all_ready()) start_waiting_dependents();
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
        spdlog::warn("worker {}: pid {} still running after stop_timeout; sending SIGKILL", instance.label(),
                     instance.pid);
        instance.stop_escalated = true;
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
    spdlog::error("worker {}: pid {}: {}; stopping it", instance.label(), instance.pid, why);
    stop_instance(instance);
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
