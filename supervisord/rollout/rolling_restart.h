// A rolling restart (restart_strategy = "rolling"): each instance is replaced by a new
// process on the same listening sockets, and the old process is asked to stop only once
// its replacement is ready. The kernel keeps queueing connections on the shared socket
// throughout, so no client is refused and none waits for a cold start.
//
// The replacement is a second Instance with the same index, inserted right after the
// old one and flagged `replacement` until it is in service; the old one is then
// `retiring` and erased once its process has exited (it gets stop_signal and up to
// stop_timeout to finish its requests: the graceful drain).
//
// A RollingRestart is the plan (rollout_plan.h) and, per slot, which processes are
// involved. It is owned by its worker (Worker::rollout) and by the supervisor's waiter
// that calls advance() after every state change; it acts on the process table through
// a RolloutHost, which the supervisor is.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "events/event_log.h"
#include "rollout/rollout_plan.h"
#include "table/instance.h"
#include "table/operation.h"

namespace fdsup {

// What a rollout needs of the process table.
class RolloutHost {
public:
    virtual Worker* find_worker(const std::string& name) const = 0;
    virtual Instance* find_instance(uint64_t id) const = 0;
    // A new instance for `old`'s index, right after it, flagged `replacement`.
    virtual Instance& add_replacement(Worker& worker, const Instance& old) = 0;
    // Spawns an instance without a process, as an operator's start does (its start
    // limit and backoff cleared).
    virtual void start_fresh(Instance& instance) = 0;
    virtual void spawn(Instance& instance) = 0;
    virtual void stop_instance(Instance& instance) = 0;
    // Runs the waiters again (from inside them too: they run to a fixed point).
    virtual void state_changed() = 0;
    virtual bool shutting_down() const = 0;
    // Where its steps and its end are told (rollout_step, rollout_finished, rollout_stopped).
    virtual EventLog& events() = 0;

protected:
    ~RolloutHost() = default;
};

class RollingRestart {
public:
    struct Slot {
        int index = 0;
        uint64_t old_id = 0;     // the instance in service when the rollout began
        pid_t old_pid = -1;      // its process then (-1: none; the slot is started in place)
        uint64_t new_id = 0;     // the replacement (== old_id when started in place)
        pid_t new_pid = -1;
        bool in_place = false;   // nothing was running: the instance itself is started
        std::string failure;     // why the replacement failed
    };

    RollingRestart(std::string worker, uint64_t generation, std::vector<Slot> slots, int max_surge)
        : worker(std::move(worker)), generation(generation), slots(std::move(slots)),
          plan(this->slots.size(), max_surge) {}

    // Moves the rollout on as far as it can now; true once it is finished (and `then`
    // has been called with one report per slot). A finished rollout becomes its
    // worker's `last_rollout`, its reports kept in `outcome`.
    bool advance(RolloutHost& host);
    // "2 of 4 instances replaced", for refusals.
    std::string progress_text() const;
    bool finished() const { return plan.finished(); }
    // `callback` runs once the rollout is finished (after `then`, with `outcome` and the
    // worker's last_rollout set); forget(id) takes it back (its client went away).
    uint64_t when_finished(std::function<void()> callback);
    void forget(uint64_t id) { watchers_.erase(id); }

    std::string worker;
    uint64_t generation;  // the worker's generation when it began: a later command ends it
    std::vector<Slot> slots;
    RolloutPlan plan;
    std::string stop_reason;  // why the rollout stopped early ("web[1] failed", "fdsupd is shutting down")
    // Why fdsupd began it itself ("web[1] failed its liveness probe"); "" for an
    // operator's restart. Such a rollout is nobody's command: it does not become the
    // worker's last_rollout.
    std::string reason;
    bool recycle = false;  // begun to recycle an instance (recycle_memory, max_age), not for a failure
    ProgressFn progress;
    std::function<void(std::vector<InstanceReport>)> then;
    std::vector<InstanceReport> outcome;  // once finished: one report per slot, as `then` got them

private:
    std::map<uint64_t, std::function<void()>> watchers_;
    uint64_t next_watcher_ = 1;

    void start_replacement(RolloutHost& host, Worker& worker, size_t slot);
    // A replacement that will not be used: stopped if it runs, erased once it has none.
    void retire_replacement(RolloutHost& host, size_t slot);
    std::vector<InstanceReport> reports(const RolloutHost& host) const;
};

// Why this instance's start failed (exit, exec error, ready timeout, a kill by the
// supervisor), if it did.
std::optional<std::string> start_failure(const Instance& instance);

}  // namespace fdsup
