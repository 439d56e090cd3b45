// Spawning an instance's process: the start limit, the launch (streams, fd map, fd
// store, cgroup, the launcher), the pidfd watched for its exit, and the first step of
// readiness by the worker's `ready` mode (for "accepting" and "probe", health/).
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>

#include <cstring>

#include "config/values.h"
#include "supervisor/supervisor.h"
#include "table/log_about.h"

namespace fdsup {
using config::format_duration;

void Supervisor::spawn(Instance& instance) {
    const auto& cfg = instance.config();
    const Worker& worker = *instance.worker;
    if (shutting_down_ || worker.stopped_by_operator || worker.removing) {
        // A backoff timer that fired after the worker was stopped, removed or shut down.
        instance.state = InstanceState::stopped;
        return;
    }
    if (!instance.start_limiter.try_start(cfg, Clock::now())) {
        instance.state = InstanceState::failed;
        instance.last_error = "start limit hit (" + std::to_string(cfg.start_limit_burst) + " starts within " +
                              format_duration(cfg.start_limit_interval) + ")" +
                              (instance.last_error.empty() ? "" : "; last failure: " + instance.last_error);
        about(instance).error("worker {}: start limit hit ({} starts within {}); state failed until "
                              "`fdsupctl start {}`",
                              instance.label(), cfg.start_limit_burst, format_duration(cfg.start_limit_interval),
                              cfg.name);
        emit(EventKind::failed, instance, {{"error", instance.last_error}});
        return;
    }
    if (auto launched = launch(instance); !launched) {
        handle_spawn_failure(instance, launched.error());
        return;
    }
    instance.start_limiter.note_exec();
    instance.last_error.clear();
    instance.state = InstanceState::starting;
    emit(EventKind::started, instance, {{"restarts", static_cast<int64_t>(instance.restarts)}});
    switch (cfg.ready) {
        case config::ReadyMode::exec: become_ready(instance); break;
        case config::ReadyMode::delay:  // ready once it has survived ready_delay
            arm_ready_delay(instance, Clock::now() + cfg.ready_delay);
            break;
        case config::ReadyMode::notify:  // ready at READY=1, failed after ready_timeout
            arm_ready_timeout(instance, Clock::now() + cfg.ready_timeout);
            break;
        case config::ReadyMode::accepting:  // ready once seen accepting, or a passed probe
        case config::ReadyMode::probe:      // (health/), failed after ready_timeout
            arm_ready_timeout(instance, Clock::now() + cfg.ready_timeout);
            health_.starting(instance);
            break;
    }
}

void Supervisor::start_fresh(Instance& instance) {
    instance.timer.stop();  // a pending restart happens now instead
    instance.start_limiter.reset();
    instance.backoff.reset();
    spawn(instance);
}

Result<void> Supervisor::launch(Instance& instance) {
    const auto& cfg = instance.config();

    auto streams = outputs_.open(cfg, instance.index);
    if (!streams) return std::unexpected(streams.error());
    auto prepared = PreparedSpawn::make(context_, cfg, instance.index, sockets_.fds(), fd_stores_.hand_over(instance),
                                        StdioFds{null_fd_.get(), streams->out, streams->err});
    if (!prepared) return std::unexpected(prepared.error());
    auto cgroup = cgroups_.make(instance);
    if (!cgroup) return std::unexpected(cgroup.error());
    if (*cgroup) {
        (*prepared)->plan().cgroup_fd = (*cgroup)->dir.get();
        (*prepared)->plan().v1_procs_fds = (*cgroup)->join_fds.data();
        (*prepared)->plan().v1_procs_count = (*cgroup)->join_fds.size();
    }
    auto spawn_began = Clock::now();
    auto process = launcher_.launch((*prepared)->plan());
    spawn_times_.record(Clock::now() - spawn_began);
    cgroups_.note_clone3_errno(launcher_.clone3_errno());
    if (launcher_.fd_table_unshare_errno() != 0 && !fd_table_fallback_logged_) {
        fd_table_fallback_logged_ = true;
        spdlog::warn("close_range(CLOSE_RANGE_UNSHARE): {}; each spawn copies and closes the whole fd table instead",
                     std::strerror(launcher_.fd_table_unshare_errno()));
    }
    if (!process) {
        if (*cgroup) cgroups_.discard(**cgroup);
        return std::unexpected(process.error());
    }

    instance.pid = process->pid;
    instance.pidfd = std::move(process->pidfd);
    instance.given_notify_socket = (*prepared)->notify_socket_given();
    instance.started_at = Clock::now();
    instance.ready = false;
    instance.stop_escalated = false;
    instance.kill_reason = KillReason::none;
    instance.draining = false;
    instance.status_text.clear();
    instance.reloading = false;
    instance.stopping_notified = false;
    instance.watchdog_timeout = cfg.watchdog;
    instance.health.reset_for_start();
    instance.usage.reset_for_start();
    instance.sockets_used.clear();
    auto note_socket = [&](const std::string& name) {
        if (uint64_t serial = sockets_.serial_of(name); serial != 0) instance.sockets_used.push_back(serial);
    };
    for (const auto& [fd, name] : cfg.fds) note_socket(name);
    for (const auto& name : cfg.scm_rights) note_socket(name);
    auto exits = exit_watch();
    int err = exits ? (*exits)->add(instance.pidfd.get(), EPOLLIN | EPOLLONESHOT, instance.id) : 0;
    if (!exits || err != 0) {
        // Unwatched, it would become a zombie nobody restarts: take it back now (with
        // anything it may have forked already, in cgroup mode: discard kills those).
        (void)pidfd_signal(instance.pidfd.get(), SIGKILL);
        (void)pidfd_reap(instance.pidfd.get());
        instance.pidfd.reset();
        instance.pid = -1;
        if (*cgroup) cgroups_.discard(**cgroup);
        return exits ? fail("worker " + instance.label() + ": cannot watch its pidfd", err)
                     : std::unexpected(exits.error());
    }
    instances_by_pid_[instance.pid] = &instance;
    if (*cgroup) cgroups_.keep(instance, std::move(**cgroup));

    outputs_.capture(*streams, cfg, instance.index, instance.pid);
    about(instance).info("worker {}: started pid {}", instance.label(), instance.pid);
    return {};  // the write ends close here: the worker holds the only copies
}

}  // namespace fdsup
