// The health checks of every instance: how a starting instance with ready =
// "accepting" or "probe" becomes ready, and the liveness probe of a running one.
//
// Per instance, at most one of them runs at a time, on one timer:
//   starting, ready = "accepting": the instance's processes are looked at
//     (accept_watch.h) 2 ms after exec, then at doubling intervals up to 64 ms, until
//     one waits for connections on one of the instance's sockets; ready_timeout (the
//     supervisor's timer) bounds it.
//   starting, ready = "probe": the ready probe, every `interval`, until it passes.
//   running: the liveness probe, every `interval` from the first after `interval`;
//     `failures` failed checks in a row and the instance is handed back to the
//     supervisor to be replaced.
// A check that takes longer than `interval` is followed by the next at once: checks of
// one instance never overlap. Nothing runs for an instance without these modes: an
// instance with ready = "exec" and no liveness probe costs nothing here.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "health/exec_check.h"
#include "health/probe_check.h"
#include "loop/uv_handles.h"
#include "table/instance.h"

namespace fdsup::health {

// What the checks need of the process table.
class HealthHost {
public:
    virtual Instance* find_instance(uint64_t id) const = 0;
    // The inodes of the listening sockets the instance's process was given (inherited
    // and over SCM_RIGHTS).
    virtual std::vector<ino_t> socket_inodes(const Instance& instance) const = 0;
    // kill_mode = "cgroup": the processes in the instance's cgroup; nullopt without one
    // (its process and their descendants are looked at instead).
    virtual std::optional<std::vector<pid_t>> cgroup_processes(const Instance& instance) const = 0;
    // A starting instance was seen accepting, or passed its ready probe.
    virtual void health_ready(Instance& instance) = 0;
    // A running instance failed its liveness probe `failures` times in a row.
    virtual void liveness_failed(Instance& instance, const std::string& why) = 0;
    // A probe failed: every liveness failure, and the first ready-probe failure of each
    // start (a slow start fails its ready probe many times; once says it). `failures`:
    // the liveness failures in a row so far (0 for a ready probe).
    virtual void probe_failed(Instance& instance, bool liveness, const std::string& detail, int failures) = 0;

protected:
    ~HealthHost() = default;
};

// How much the "accepting" detection has cost fdsupd (for the metrics and the bench).
struct AcceptScanCost {
    uint64_t scans = 0;
    std::chrono::nanoseconds cpu{};  // fdsupd's CPU time (thread clock) spent in them
};

class HealthChecks {
public:
    HealthChecks(uv_loop_t* loop, HealthHost& host, Launcher& launcher, const SpawnContext& context, int null_fd);
    ~HealthChecks();
    HealthChecks(const HealthChecks&) = delete;
    HealthChecks& operator=(const HealthChecks&) = delete;

    // The instance's process was just exec'd (or, after an upgrade, is still starting).
    void starting(Instance& instance);
    // The instance is ready: its liveness probe from now on, if it has one.
    void running(Instance& instance);
    // No more checks for it (stopping, exited, erased); a check in flight is cancelled.
    void stop(const Instance& instance) { checks_.erase(instance.id); }
    bool checking(const Instance& instance) const { return checks_.contains(instance.id); }

    // A process of an exec probe (the orphan reaper leaves it alone).
    bool owns(pid_t pid) const { return exec_.owns(pid); }
    // Before an in-place upgrade's exec: every probe process killed and reaped. The
    // checks in flight are dropped, not failed: if the exec fails, each runs again.
    void kill_probe_processes();
    const AcceptScanCost& accept_cost() const { return accept_cost_; }

private:
    enum class Kind { accepting, ready_probe, liveness };
    struct Checks {
        explicit Checks(uv_loop_t* loop) : timer(loop) {}
        Kind kind = Kind::accepting;
        Timer timer;
        std::unique_ptr<ProbeCheck> in_flight;
        std::chrono::milliseconds next_scan{2};  // accepting: the next pause
        std::vector<ino_t> inodes;               // accepting
        std::chrono::steady_clock::time_point began{};
        bool failure_told = false;               // ready_probe: its first failure was reported
    };

    Checks& begin(Instance& instance, Kind kind);
    void scan(uint64_t id);
    void schedule_probe(uint64_t id, std::chrono::milliseconds delay);
    void run_probe(uint64_t id);
    void probe_done(uint64_t id, const ProbeResult& result);
    std::unique_ptr<ProbeCheck> start_probe(const Instance& instance, const config::ProbeConfig& probe,
                                            ProbeDone done);

    uv_loop_t* loop_;
    HealthHost& host_;
    ExecChecks exec_;
    std::unordered_map<uint64_t, std::unique_ptr<Checks>> checks_;
    AcceptScanCost accept_cost_;
};

}  // namespace fdsup::health
