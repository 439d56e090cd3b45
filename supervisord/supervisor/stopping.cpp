// Stopping: a signal honouring kill_mode, a graceful stop (stop_signal, SIGKILL after
// stop_timeout), and the shutdown of every worker, dependents before what they depend
// on, bounded by shutdown_timeout.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "config/values.h"
#include "supervisor/supervisor.h"
#include "sys/signal_names.h"
#include "table/log_about.h"

namespace fdsup {
using config::format_duration;

void Supervisor::signal_instance(Instance& instance, int signal) {
    if (!instance.has_process()) return;
    if (!instance.cgroup.empty()) {
        cgroups_.signal(instance, signal);
        return;
    }
    // "cgroup" without a cgroup (fallen back) is "group".
    if (instance.worker->config.kill_mode != config::KillMode::process) {
        ::kill(-instance.pid, signal);
        // A worker that left its process group (setpgid/setsid) is not reached by the
        // group signal: signal it directly too.
        if (::getpgid(instance.pid) == instance.pid) return;
    }
    if (auto sent = pidfd_signal(instance.pidfd.get(), signal); !sent && sent.error().err != ESRCH)
        about(instance).error("worker {}: {}", instance.label(), sent.error().text());
}

void Supervisor::retire_instance(Instance& instance) {
    config::Duration delay = instance.config().stop_delay;
    if (delay.count() <= 0 || instance.state != InstanceState::running || !instance.has_process() ||
        instance.exit_pending || shutting_down_)
        return stop_instance(instance);
    if (instance.draining) return;
    instance.draining = true;
    instance.ready = false;  // out of readiness; the process still serves
    about(instance).info("worker {}: draining pid {}: out of readiness, SIG{} in {} (stop_delay)", instance.label(),
                         instance.pid, signal_name(instance.config().stop_signal), format_duration(delay));
    arm_drain_delay(instance, Clock::now() + delay);
    emit(EventKind::draining, instance, {{"delay", std::chrono::duration<double>(delay).count()}});
}

void Supervisor::keep_instance(Instance& instance) {
    if (!instance.draining) return;
    instance.timer.stop();
    instance.draining = false;
    instance.retiring = false;
    instance.ready = true;
    about(instance).info("worker {}: pid {} back in service (its drain ended before stop_signal)", instance.label(),
                         instance.pid);
}

void Supervisor::arm_drain_delay(Instance& instance, Clock::time_point deadline) {
    instance.timer_deadline = deadline;
    instance.timer.start(until(deadline), [this, id = instance.id] {
        Instance* instance = find_instance(id);
        if (instance == nullptr || !instance->draining) return;
        stop_instance(*instance);
        state_changed();
    });
}

void Supervisor::stop_instance(Instance& instance) { stop_instance_for(instance, KillReason::none, {}); }

void Supervisor::stop_instance_for(Instance& instance, KillReason reason, const std::string& why) {
    const auto& cfg = instance.config();
    // A stop asked for now wins over a failure kill in progress (ready timeout,
    // watchdog): its exit is a stop, not a failure to restart. kill_for sets the
    // reason again after calling this. It also ends a stop_delay's drain.
    instance.kill_reason = KillReason::none;
    instance.draining = false;
    if (!instance.has_process()) {
        instance.timer.stop();  // a pending restart (backoff) or nothing
        if (instance.state != InstanceState::failed && instance.state != InstanceState::exited &&
            instance.state != InstanceState::stopped) {
            instance.state = InstanceState::stopped;
            emit(EventKind::stopped, instance);
        }
        return;
    }
    if (instance.exit_pending) {
        // The main process is gone and the rest already killed: the exit, once the
        // cgroup is empty, is a stop.
        instance.state = InstanceState::stopping;
        return;
    }
    if (instance.state == InstanceState::stopping) return;
    instance.state = InstanceState::stopping;
    instance.ready = false;
    instance.watchdog_timer.stop();
    health_.stop(instance);
    about(instance).info("worker {}: stopping pid {} with SIG{} (timeout {})", instance.label(), instance.pid,
                         signal_name(cfg.stop_signal), format_duration(cfg.stop_timeout));
    EventFields fields{{"signal", std::string(signal_name(cfg.stop_signal))},
                       {"timeout", std::chrono::duration<double>(cfg.stop_timeout).count()},
                       {"reason", std::string(reason == KillReason::none ? "requested" : kill_reason_name(reason))}};
    if (!why.empty()) fields.emplace_back("error", why);
    emit(EventKind::stopping, instance, std::move(fields));
    signal_instance(instance, cfg.stop_signal);
    // A stopped process (SIGSTOP, a debugger's) acts on stop_signal only once it runs
    // again: continued at once, as systemd does, rather than left to stop_timeout.
    if (cfg.stop_signal != SIGKILL && cfg.stop_signal != SIGCONT) signal_instance(instance, SIGCONT);
    arm_stop_escalation(instance, Clock::now() + cfg.stop_timeout);
}

void Supervisor::shutdown(std::function<void()> on_done) {
    if (shutting_down_) return;
    shutting_down_ = true;
    on_shutdown_done_ = std::move(on_done);
    spdlog::info("shutting down: stopping all workers (timeout {})",
                 format_duration(config_.supervisor.shutdown_timeout));
    shutdown_timer_.start(config_.supervisor.shutdown_timeout, [this] {
        spdlog::warn("shutdown_timeout reached: sending SIGKILL to every remaining worker");
        shutdown_forced_ = true;
        for (auto& worker : workers_)
            for (auto& instance : worker->instances) signal_instance(*instance, SIGKILL);
    });
    for (auto& worker : workers_) {  // nothing starts on demand any more
        stop_watching(*worker);
        if (worker->demand.idle_timer) worker->demand.idle_timer->stop();
    }
    advance_shutdown();
    state_changed();  // commands waiting for a start finish now: nothing starts any more
}

// A worker is stopped only once no live worker still lists it in `after`.
bool Supervisor::is_needed_by_live_worker(const Worker& dependency) const {
    for (const auto& worker : workers_) {
        if (!worker->any_process()) continue;
        for (const auto& name : worker->config.after)
            if (name == dependency.config.name) return true;
    }
    return false;
}

void Supervisor::advance_shutdown() {
    bool anything_left = false;
    for (auto& worker : workers_) {
        if (!is_needed_by_live_worker(*worker))
            for (auto& instance : worker->instances) stop_instance(*instance);
        anything_left |= worker->any_process();
    }
    if (!anything_left) finish_shutdown();
}

void Supervisor::finish_shutdown() {
    if (shutdown_finished_) return;
    shutdown_finished_ = true;
    shutdown_timer_.stop();
    outputs_.drain_all();
    sockets_.remove_files();
    spdlog::info("all workers stopped");
    if (auto done = std::move(on_shutdown_done_)) done();
}

}  // namespace fdsup
