// kill_mode = "cgroup": each process of an instance is spawned straight into a cgroup
// of its own (sys/cgroup_tree.h), so that nothing it starts, daemonized or not, can
// outlive it. A stop signals every process in the cgroup, escalation is cgroup.kill,
// and the instance counts as gone only once its cgroup is empty: when the main process
// exits and others are left, they are killed and the exit is handled after them.
//
// Without a writable cgroup v2 hierarchy the mode falls back to "group", logged once
// per worker: an instance without a cgroup behaves exactly as a "group" one.
#include <signal.h>
#include <sys/epoll.h>

#include <spdlog/spdlog.h>

#include "config/values.h"
#include "supervisor/supervisor.h"

namespace fdsup {
using config::format_duration;

namespace {

// Failures worth trying again at the next spawn, rather than settling on "group".
bool transient(int err) { return err == EMFILE || err == ENFILE || err == ENOMEM || err == EINTR; }

}  // namespace

Result<EpollSet*> Supervisor::cgroup_watch() {
    if (!cgroup_events_) {
        auto opened = EpollSet::open(loop_, "cgroup events", [this](uint64_t id, uint32_t) { on_cgroup_event(id); });
        if (!opened) return std::unexpected(opened.error());
        cgroup_events_ = std::move(*opened);
    }
    return cgroup_events_.get();
}

Result<std::optional<Supervisor::SpawnCgroup>> Supervisor::make_spawn_cgroup(const Instance& instance) {
    const auto& cfg = instance.worker->config;
    if (cfg.kill_mode != config::KillMode::cgroup) return std::nullopt;
    if (!cgroups_ && !cgroups_tried_) {
        auto tree = CgroupTree::open();
        if (tree) {
            cgroups_ = std::move(*tree);
            cgroups_tried_ = true;
            spdlog::info("instances with kill_mode = \"cgroup\" run in cgroups below {}", cgroups_->path());
        } else {
            cgroups_tried_ = !transient(tree.error().err);
            cgroups_unavailable_ = tree.error().text();
        }
    }
    if (!cgroups_) {
        if (cgroup_fallback_logged_.insert(cfg.name).second)
            spdlog::warn("worker {}: kill_mode = \"cgroup\" falls back to \"group\": {}", cfg.name, cgroups_unavailable_);
        return std::nullopt;
    }

    // A name per spawn: a rollout's replacement runs beside the old process of the same
    // index, and a cgroup given up on with a process stuck in it is never joined again.
    SpawnCgroup cgroup;
    cgroup.name = instance_cgroup_name(cfg.name, instance.index, next_cgroup_serial_++);
    auto dir = cgroups_->create(cgroup.name);
    if (!dir) return std::unexpected(dir.error());
    cgroup.dir = std::move(*dir);
    auto events = cgroups_->open_events(cgroup.name);
    auto watch = events ? cgroup_watch() : Result<EpollSet*>(nullptr);
    int err = events && watch ? (*watch)->add(events->get(), EPOLLPRI, instance.id) : 0;
    if (!events || !watch || err != 0) {
        (void)cgroups_->remove(cgroup.name);
        if (!events) return std::unexpected(events.error());
        if (!watch) return std::unexpected(watch.error());
        return fail("watch " + cgroups_->path() + "/" + cgroup.name + "/cgroup.events", err);
    }
    cgroup.events = std::move(*events);
    return cgroup;
}

void Supervisor::keep_spawn_cgroup(Instance& instance, SpawnCgroup cgroup) {
    instance.cgroup = std::move(cgroup.name);
    instance.cgroup_events = std::move(cgroup.events);
}

void Supervisor::discard_spawn_cgroup(const SpawnCgroup& cgroup) {
    if (cgroup_events_ && cgroup.events) cgroup_events_->remove(cgroup.events.get());
    if (auto removed = cgroups_->remove(cgroup.name); !removed) spdlog::warn("{}", removed.error().text());
}

bool Supervisor::defer_exit_until_cgroup_empty(Instance& instance, const ExitStatus& status) {
    if (instance.cgroup.empty()) return false;
    // Reading also rearms the watch: an emptying from here on is reported.
    auto populated = cgroup_populated(instance.cgroup_events.get());
    if (populated && !*populated) return false;  // the usual case: it left nothing behind
    if (!populated) {
        // Emptiness cannot be seen: kill what is there and go on without waiting.
        spdlog::error("worker {}: {}/{}: {}", instance.label(), cgroups_->path(), instance.cgroup,
                      populated.error().text());
        signal_cgroup(instance, SIGKILL);
        return false;
    }
    spdlog::info("worker {}: pid {} {}; killing what it left in its cgroup", instance.label(), instance.pid,
                 status.describe());
    instance.exit_pending = status;
    instance.drain_retried = false;
    // Nothing of the old process is waited for now but its cgroup's emptying: no ready
    // delay or timeout, no watchdog, no stop escalation (what is left is SIGKILLed).
    instance.ready = false;
    instance.watchdog_timer.stop();
    signal_cgroup(instance, SIGKILL);
    arm_cgroup_drain(instance, Clock::now() + instance.worker->config.stop_timeout);
    return true;
}

void Supervisor::on_cgroup_drain_timeout(Instance& instance) {
    auto timeout = instance.worker->config.stop_timeout;
    if (!instance.drain_retried) {
        instance.drain_retried = true;
        spdlog::warn("worker {}: its cgroup is not empty {} after cgroup.kill; killing again", instance.label(),
                     format_duration(timeout));
        signal_cgroup(instance, SIGKILL);
        arm_cgroup_drain(instance, Clock::now() + timeout);
        return;
    }
    auto left = cgroups_->processes(instance.cgroup);
    spdlog::error("worker {}: {} still in its cgroup {}/{} after two rounds of cgroup.kill; going on without them",
                  instance.label(), left ? std::to_string(left->size()) + " process(es)" : "processes",
                  cgroups_->path(), instance.cgroup);
    finish_pending_exit(instance);
}

void Supervisor::finish_pending_exit(Instance& instance) {
    ExitStatus status = *std::exchange(instance.exit_pending, std::nullopt);
    instance.timer.stop();
    release_cgroup(instance);
    handle_exit(instance, status);
    state_changed();
}

void Supervisor::on_cgroup_event(uint64_t instance_id) {
    Instance* instance = find_instance(instance_id);
    if (instance == nullptr || !instance->cgroup_events) return;  // released since
    auto populated = cgroup_populated(instance->cgroup_events.get());
    if (populated && *populated) return;
    if (!populated) {
        // Level-triggered: an fd that cannot be read would be reported for ever.
        spdlog::error("worker {}: {}; no longer watching its cgroup", instance->label(), populated.error().text());
        cgroup_events_->remove(instance->cgroup_events.get());
        instance->cgroup_events.reset();
    }
    if (!instance->exit_pending) return;  // the main process's own exit is on its way
    finish_pending_exit(*instance);
}

void Supervisor::release_cgroup(Instance& instance) {
    if (instance.cgroup.empty()) return;
    if (instance.cgroup_events) {
        cgroup_events_->remove(instance.cgroup_events.get());
        instance.cgroup_events.reset();
    }
    // Busy only if a process survived cgroup.kill (one stuck in the kernel): then the
    // directory is left; its name is never used again.
    if (auto removed = cgroups_->remove(instance.cgroup); !removed)
        spdlog::warn("worker {}: {}", instance.label(), removed.error().text());
    instance.cgroup.clear();
}

void Supervisor::signal_cgroup(Instance& instance, int signal) {
    if (signal == SIGKILL) {
        auto killed = cgroups_->kill(instance.cgroup);
        if (killed) return;
        spdlog::error("worker {}: {}; killing its processes one by one", instance.label(), killed.error().text());
    }
    // The main process through its pidfd (no pid reuse race); the others by pid, as
    // systemd does: a pid read from cgroup.procs could only be reused if its process
    // were reaped between the read and the kill, a window of microseconds.
    if (instance.pidfd)
        if (auto sent = pidfd_signal(instance.pidfd.get(), signal); !sent && sent.error().err != ESRCH)
            spdlog::error("worker {}: {}", instance.label(), sent.error().text());
    auto processes = cgroups_->processes(instance.cgroup);
    if (!processes) {
        spdlog::error("worker {}: {}", instance.label(), processes.error().text());
        return;
    }
    for (pid_t pid : *processes)
        if (pid != instance.pid || !instance.pidfd) ::kill(pid, signal);
}

}  // namespace fdsup
