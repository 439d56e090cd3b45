// kill_mode = "cgroup": each process of an instance is spawned straight into a cgroup
// of its own (sys/cgroup_tree.h), so that nothing it starts, daemonized or not, can
// outlive it. This keeps those cgroups: makes one per spawn, watches its cgroup.events
// (one EpollSet for all, carried across an upgrade), signals or kills what is in it,
// and removes it once it is empty. When the main process exits and others are left,
// the supervisor waits for the cgroup to empty (supervisor/exits.cpp) before it handles
// the exit.
//
// Without a writable cgroup v2 hierarchy the mode falls back to "group", logged once
// per worker: an instance without a cgroup behaves exactly as a "group" one.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cgroups/instance_limits.h"
#include "loop/epoll_set.h"
#include "table/instance.h"
#include "sys/cgroup_tree.h"
#include "sys/proc_stat.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace fdsup {

class InstanceCgroups {
public:
    // `on_event`: an instance's cgroup.events changed (by instance id).
    InstanceCgroups(uv_loop_t* loop, std::function<void(uint64_t instance_id)> on_event)
        : loop_(loop), on_event_(std::move(on_event)) {}

    // A cgroup made for one spawn, watched under the instance's id.
    struct Spawn {
        std::string name;
        UniqueFd dir;     // for clone3's CLONE_INTO_CGROUP
        UniqueFd events;  // cgroup.events
        // Limits on the hybrid layout: its v1 cgroups' cgroup.procs, for the child to
        // join (SpawnPlan::v1_procs_fds points into `join_fds`).
        std::vector<UniqueFd> joins;
        std::vector<int> join_fds;
    };
    // The cgroup to spawn `instance` into, with its limits written: none unless its
    // kill_mode is "cgroup" and there is a cgroup tree (else the mode falls back to
    // "group", logged once per worker; never for a worker with limits, which
    // prepare_limits refused). An error is a failed spawn.
    Result<std::optional<Spawn>> make(const Instance& instance);
    // Before the workers of `config` start (at start, at reload): the controllers their
    // limits need are made ready (cgroups/instance_limits.h). Fails, naming the file and
    // the errno, when one cannot be had.
    Result<void> prepare_limits(const config::Config& config);
    // A reload changed a running instance's limits (instance_limits.h: update).
    Result<void> update_limits(const Instance& instance, const config::ResourceLimits& before);

    // What the instance's cgroup says of its use, where it says it (nullopt elsewhere):
    // memory (memory.current, or the v1 memory.usage_in_bytes), CPU time (cpu.stat's
    // usage_usec, in µs), OOM kills (memory.events, v1 memory.oom_control), pressure
    // (PSI: RESOURCE.pressure's "some" and "full" totals in µs, and some's avg10).
    std::optional<uint64_t> memory_current(const Instance& instance) const;
    std::optional<uint64_t> cpu_usage_usec(const Instance& instance) const;
    std::optional<uint64_t> oom_kills(const Instance& instance) const;
    std::optional<Pressure> pressure(const Instance& instance, const char* resource) const;
    // After the launch: the instance keeps it; or (a failed launch) it is removed again.
    void keep(Instance& instance, Spawn cgroup);
    void discard(const Spawn& cgroup);
    // The launcher could not use clone3 (seccomp, an old kernel): logged once.
    void note_clone3_errno(int err);

    // Whether processes are left in the instance's cgroup; reading rearms its watch.
    Result<bool> populated(const Instance& instance) const;
    // SIGKILL: cgroup.kill; any other signal: the main process (through its pidfd) and
    // every other process in the cgroup, as systemd's KillMode=control-group.
    void signal(Instance& instance, int signal);
    // Its cgroup.events can no longer be read: no longer watched.
    void unwatch(Instance& instance);
    // The cgroup is empty (or given up on): unwatched, closed and removed.
    void release(Instance& instance);
    // The processes in the instance's cgroup now.
    Result<std::vector<pid_t>> processes(const Instance& instance) const;
    // "3 process(es)" left in it, for a message.
    std::string count_left(const Instance& instance) const;
    // ".../fdsupd-PID/web@0.1", for messages.
    std::string path_of(const Instance& instance) const;

    // ---- for the upgrade (state/) ----
    const EpollSet* events() const { return events_.get(); }
    uint64_t next_serial() const { return next_serial_; }
    // The set of cgroup.events the previous image handed over (-1: it had none; owned
    // only on success), and the next serial.
    Result<void> adopt(int events_fd, uint64_t next_serial);
    // The tree again (same PID, same "fdsupd-PID"); `required` if an instance has a cgroup.
    Result<void> reopen_tree(bool required);

private:
    Result<EpollSet*> watch_set();
    // The tree, opened at the first need; false (and unavailable_ says why) without one.
    bool open_tree();
    std::optional<std::string> read_file(const Instance& instance, const char* file) const;

    uv_loop_t* loop_;
    std::function<void(uint64_t)> on_event_;
    // The supervisor's cgroup directory, opened at the first spawn that needs one
    // (tried_); if it could not be, why not (and that mode falls back to "group").
    std::unique_ptr<CgroupTree> tree_;
    bool tried_ = false;
    std::string unavailable_;
    std::set<std::string> fallback_logged_;  // workers told of the fallback
    bool clone3_fallback_logged_ = false;
    // Every kept cgroup's cgroup.events (EPOLLPRI), keyed by instance id.
    std::unique_ptr<EpollSet> events_;
    uint64_t next_serial_ = 1;  // each spawn's cgroup has a name of its own
    InstanceLimits limits_;
};

}  // namespace fdsup
