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
// A canary (`restart --canary N --pause D`, `reload --canary`): the first N slots are
// replaced, then the rollout holds for the pause (or, without one, until promoted).
// While it holds, a canary that exits, stops being ready or fails a liveness check, or
// any rise in the worker's restarts, aborts it; so does `rollout abort`. An aborted
// rollout starts nothing more, and the slots it had replaced are put back on the spec
// the worker ran before (a rollback: fdsupd's own rolling restart of those instances,
// begun by the host once this one has finished). The others never changed.
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

#include "config/model.h"
#include "events/event_log.h"
#include "rollout/rollout_plan.h"
#include "sys/clock.h"
#include "sys/result.h"
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
    // A planned stop of a process another one replaces: stop_delay (taken out of
    // readiness, left serving) first, then stop_instance.
    virtual void retire_instance(Instance& instance) = 0;
    // The end of that drain before its stop_signal: back in service (an abort).
    virtual void keep_instance(Instance& instance) = 0;
    // Runs the waiters again at `when` (a canary's pause ends).
    virtual void wake_at(Clock::time_point when) = 0;
    // An aborted rollout (or a reload's canary never released) has finished: the worker
    // and the loaded config go back to the previous spec, and the slots it replaced are
    // put back on it.
    virtual void roll_back(const RollingRestart& aborted) = 0;
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

    RollingRestart(std::string worker, uint64_t generation, std::vector<Slot> slots, int max_surge,
                   size_t canary = 0)
        : worker(std::move(worker)), generation(generation), slots(std::move(slots)),
          plan(this->slots.size(), max_surge, canary) {}

    // Moves the rollout on as far as it can now; true once it is finished (and `then`
    // has been called with one report per slot). A finished rollout becomes its
    // worker's `last_rollout`, its reports kept in `outcome`.
    bool advance(RolloutHost& host);
    // "2 of 4 instances replaced", for refusals.
    std::string progress_text() const;
    bool finished() const { return plan.finished(); }
    // The operator's `rollout promote`: a held canary goes on at once. Error if there is
    // nothing to promote.
    Result<void> promote(RolloutHost& host);
    // `rollout abort` (or a failed canary): nothing more starts, replacements not in
    // service yet are stopped, and once finished the replaced slots are rolled back.
    Result<void> abort(std::string why);
    // "canary" (its replacements starting), "paused" (holding), "rolling", "aborted".
    std::string phase() const;
    // The canary slots that are in service on the new spec (to roll back).
    std::vector<uint64_t> replaced_instances() const;
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
    bool rollback = false;  // begun to put back what an aborted rollout replaced
    // Aborted (`rollout abort`, a failed canary): once finished, what it replaced is
    // rolled back.
    bool aborted = false;
    // The canary's pause (0: until promoted), and when the hold ends once it has begun.
    config::Duration pause{};
    Clock::time_point hold_until{};
    int restarts_at_hold = -1;  // the worker's restarts when the hold began (-1: not yet)
    // A reload's rollout: the spec the worker ran before, and the text of the config it
    // came from (for an upgrade to parse again); the rollback puts replaced slots back on
    // it. Null for a restart, which keeps the spec.
    std::shared_ptr<const config::WorkerConfig> previous_config;
    std::string previous_source;
    // A reload canary before it is promoted: the spec the replacements start with (the
    // worker keeps running the previous one, also for its other instances' restarts).
    std::shared_ptr<const config::WorkerConfig> next_config;
    ProgressFn progress;
    std::function<void(std::vector<InstanceReport>)> then;
    std::vector<InstanceReport> outcome;  // once finished: one report per slot, as `then` got them

private:
    std::map<uint64_t, std::function<void()>> watchers_;
    std::string abort_request_;  // set by abort(), acted on by the next advance()
    // While the canary holds: the reason to abort it, if one of the checks finds one.
    std::optional<std::string> canary_failure(RolloutHost& host, const Worker& worker) const;
    // The hold's checks and the end of its pause; true if the plan changed.
    bool hold(RolloutHost& host, const Worker& worker);
    static int restarts_in_service(const Worker& worker);
    void release(RolloutHost& host);
    // An abort: slots whose old process still drains (stop_delay) get it back, and their
    // replacement is stopped instead.
    void take_back_draining(RolloutHost& host);
    void rollout_event(RolloutHost& host, EventKind kind, EventFields fields) const;
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
