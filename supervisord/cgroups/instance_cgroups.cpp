#include "cgroups/instance_cgroups.h"

#include <signal.h>
#include <sys/epoll.h>

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace fdsup {
namespace {

// Failures worth trying again at the next spawn, rather than settling on "group".
bool transient(int err) { return err == EMFILE || err == ENFILE || err == ENOMEM || err == EINTR; }

}  // namespace

Result<EpollSet*> InstanceCgroups::watch_set() {
    return EpollSet::open_once(events_, loop_, "cgroup events", [this](uint64_t id, uint32_t) { on_event_(id); });
}

bool InstanceCgroups::open_tree() {
    if (!tree_ && !tried_) {
        auto tree = CgroupTree::open();
        if (tree) {
            tree_ = std::move(*tree);
            tried_ = true;
            spdlog::info("instances with kill_mode = \"cgroup\" run in cgroups below {}", tree_->path());
            for (const auto& line : tree_->stale_removed()) spdlog::warn("cgroups: {}", line);
        } else {
            tried_ = !transient(tree.error().err);
            unavailable_ = tree.error().text();
        }
    }
    return tree_ != nullptr;
}

Result<void> InstanceCgroups::prepare_limits(const config::Config& config) {
    bool limited = std::any_of(config.workers.begin(), config.workers.end(), [](const auto& w) {
        return w.kill_mode == config::KillMode::cgroup && w.limits.any();
    });
    if (!limited) return {};
    // A worker with limits never falls back to "group": it would run unbounded.
    if (!open_tree()) return fail("limits need kill_mode = \"cgroup\", which cannot be had here: " + unavailable_);
    return limits_.prepare(config, *tree_);
}

Result<void> InstanceCgroups::update_limits(const Instance& instance, const config::ResourceLimits& before) {
    if (!tree_ || instance.cgroup.empty()) return {};
    return limits_.update(*tree_, instance.cgroup, before, instance.worker->config.limits);
}

Result<std::optional<InstanceCgroups::Spawn>> InstanceCgroups::make(const Instance& instance) {
    const auto& cfg = instance.worker->config;
    if (cfg.kill_mode != config::KillMode::cgroup) return std::nullopt;
    if (!open_tree()) {
        if (cfg.limits.any()) return fail("limits need kill_mode = \"cgroup\": " + unavailable_);
        if (fallback_logged_.insert(cfg.name).second)
            spdlog::warn("worker {}: kill_mode = \"cgroup\" falls back to \"group\": {}", cfg.name, unavailable_);
        return std::nullopt;
    }

    // A name per spawn: a rollout's replacement runs beside the old process of the same
    // index, and a cgroup given up on with a process stuck in it is never joined again.
    Spawn cgroup;
    cgroup.name = instance_cgroup_name(cfg.name, instance.index, next_serial_++);
    auto dir = tree_->create(cgroup.name);
    if (!dir) return std::unexpected(dir.error());
    cgroup.dir = std::move(*dir);
    auto events = tree_->open_events(cgroup.name);
    auto watch = events ? watch_set() : Result<EpollSet*>(nullptr);
    int err = events && watch ? (*watch)->add(events->get(), EPOLLPRI, instance.id) : 0;
    if (!events || !watch || err != 0) {
        (void)tree_->remove(cgroup.name);
        if (!events) return std::unexpected(events.error());
        if (!watch) return std::unexpected(watch.error());
        return fail("watch " + tree_->path() + "/" + cgroup.name + "/cgroup.events", err);
    }
    cgroup.events = std::move(*events);
    auto joins = limits_.apply(*tree_, cgroup.name, cfg.limits);
    if (!joins) {
        events_->remove(cgroup.events.get());
        (void)tree_->remove(cgroup.name);
        return fail("worker " + instance.label() + ": " + joins.error().text());
    }
    cgroup.joins = std::move(*joins);
    for (const auto& fd : cgroup.joins) cgroup.join_fds.push_back(fd.get());
    return cgroup;
}

void InstanceCgroups::keep(Instance& instance, Spawn cgroup) {
    instance.cgroup = std::move(cgroup.name);
    instance.cgroup_events = std::move(cgroup.events);
}

void InstanceCgroups::discard(const Spawn& cgroup) {
    // Anything the process forked before its launch was found to have failed goes too.
    (void)tree_->kill(cgroup.name);
    if (events_ && cgroup.events) events_->remove(cgroup.events.get());
    if (auto removed = tree_->remove(cgroup.name); !removed) spdlog::warn("{}", removed.error().text());
    limits_.remove(cgroup.name);
}

void InstanceCgroups::note_clone3_errno(int err) {
    if (err == 0 || clone3_fallback_logged_) return;
    clone3_fallback_logged_ = true;
    spdlog::warn("clone3: {}; a process joins its cgroup from the launcher's child instead", std::strerror(err));
}

Result<bool> InstanceCgroups::populated(const Instance& instance) const {
    auto populated = cgroup_populated(instance.cgroup_events.get());
    if (!populated) return fail(path_of(instance) + ": " + populated.error().text());
    return populated;
}

void InstanceCgroups::unwatch(Instance& instance) {
    if (!instance.cgroup_events) return;
    events_->remove(instance.cgroup_events.get());
    instance.cgroup_events.reset();
}

void InstanceCgroups::release(Instance& instance) {
    if (instance.cgroup.empty()) return;
    unwatch(instance);
    // Busy only if a process survived cgroup.kill (one stuck in the kernel): then the
    // directory is left; its name is never used again.
    if (auto removed = tree_->remove(instance.cgroup); !removed)
        spdlog::warn("worker {}: {}", instance.label(), removed.error().text());
    limits_.remove(instance.cgroup);
    instance.cgroup.clear();
}

void InstanceCgroups::signal(Instance& instance, int signal) {
    if (signal == SIGKILL) {
        auto killed = tree_->kill(instance.cgroup);
        if (killed) return;
        spdlog::error("worker {}: {}; killing its processes one by one", instance.label(), killed.error().text());
    }
    // The main process through its pidfd (no pid reuse race); the others by pid, as
    // systemd does: a pid read from cgroup.procs could only be reused if its process
    // were reaped between the read and the kill, a window of microseconds.
    if (instance.pidfd)
        if (auto sent = pidfd_signal(instance.pidfd.get(), signal); !sent && sent.error().err != ESRCH)
            spdlog::error("worker {}: {}", instance.label(), sent.error().text());
    auto processes = tree_->processes(instance.cgroup);
    if (!processes) {
        spdlog::error("worker {}: {}", instance.label(), processes.error().text());
        return;
    }
    for (pid_t pid : *processes)
        if (pid != instance.pid || !instance.pidfd) ::kill(pid, signal);
}

Result<std::vector<pid_t>> InstanceCgroups::processes(const Instance& instance) const {
    if (!tree_ || instance.cgroup.empty()) return fail(path_of(instance) + ": no cgroup");
    return tree_->processes(instance.cgroup);
}

std::string InstanceCgroups::count_left(const Instance& instance) const {
    auto left = processes(instance);
    return left ? std::to_string(left->size()) + " process(es)" : "processes";
}

std::string InstanceCgroups::path_of(const Instance& instance) const {
    return (tree_ ? tree_->path() : std::string("fdsupd-?")) + "/" + instance.cgroup;
}

std::optional<std::string> InstanceCgroups::read_file(const Instance& instance, const char* file) const {
    if (!tree_ || instance.cgroup.empty()) return std::nullopt;
    auto text = read_cgroup_file(tree_->path() + "/" + instance.cgroup + "/" + file);
    if (!text) return std::nullopt;
    return std::move(*text);
}

std::optional<uint64_t> InstanceCgroups::memory_current(const Instance& instance) const {
    if (auto text = read_file(instance, "memory.current")) {
        uint64_t value = 0;
        if (std::from_chars(text->data(), text->data() + text->size(), value).ec == std::errc()) return value;
    }
    if (instance.cgroup.empty()) return std::nullopt;
    return limits_.v1_memory_current(instance.cgroup);
}

std::optional<uint64_t> InstanceCgroups::cpu_usage_usec(const Instance& instance) const {
    auto text = read_file(instance, "cpu.stat");
    return text ? cgroup_keyed_value(*text, "usage_usec") : std::nullopt;
}

std::optional<uint64_t> InstanceCgroups::oom_kills(const Instance& instance) const {
    if (auto text = read_file(instance, "memory.events"))
        if (auto count = cgroup_keyed_value(*text, "oom_kill")) return count;
    if (instance.cgroup.empty()) return std::nullopt;
    return limits_.v1_oom_kills(instance.cgroup);
}

std::optional<Pressure> InstanceCgroups::pressure(const Instance& instance, const char* resource) const {
    auto text = read_file(instance, (std::string(resource) + ".pressure").c_str());
    return text ? parse_pressure(*text) : std::nullopt;
}

Result<void> InstanceCgroups::adopt(int events_fd, uint64_t next_serial) {
    next_serial_ = next_serial;
    if (events_fd < 0) return {};
    auto adopted = EpollSet::adopt(loop_, events_fd, "cgroup events", [this](uint64_t id, uint32_t) { on_event_(id); });
    if (!adopted) return std::unexpected(adopted.error());
    events_ = std::move(*adopted);
    return {};
}

Result<void> InstanceCgroups::reopen_tree(bool required) {
    auto tree = CgroupTree::open();
    if (!tree) {
        if (required) return fail("the instances' cgroups: " + tree.error().text());
        return {};
    }
    tree_ = std::move(*tree);
    tried_ = true;
    for (const auto& line : tree_->stale_removed()) spdlog::warn("cgroups: {}", line);
    return {};
}

}  // namespace fdsup
