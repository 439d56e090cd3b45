// Rolling restarts (restart_strategy = "rolling"): each instance is replaced by a new
// process on the same listening sockets, and the old process is asked to stop only
// once its replacement is ready. The kernel keeps queueing connections on the shared
// socket throughout, so no client is refused and none waits for a cold start.
//
// The replacement is a second Instance with the same index, inserted right after the
// old one and flagged `replacement` until it is in service; the old one is then
// `retiring` and erased once its process has exited (the old process gets stop_signal
// and up to stop_timeout to finish its requests: the graceful drain).
#include <spdlog/spdlog.h>

#include <algorithm>

#include "config/values.h"
#include "rollout/rolling_restart.h"
#include "supervisor/supervisor.h"

namespace fdsup {

using config::format_duration;
using SlotState = RolloutPlan::SlotState;

void Supervisor::rolling_restart(Worker& worker, ProgressFn progress,
                                 std::function<void(std::vector<InstanceReport>)> then) {
    uint64_t generation = ++worker.generation;
    worker.stopped_by_operator = false;
    std::vector<RollingRestart::Slot> slots;
    for (const auto& instance : worker.instances)
        if (!instance->retiring) slots.push_back({instance->index, instance->id, instance->pid, 0, -1, false, {}});
    spdlog::info("worker {}: rolling restart of {} instance(s), max_surge {}", worker.config.name, slots.size(),
                 worker.config.max_surge);
    auto rollout = std::make_shared<RollingRestart>(worker.config.name, generation, std::move(slots),
                                                    worker.config.max_surge);
    rollout->progress = std::move(progress);
    rollout->then = std::move(then);
    worker.rollout = rollout;
    add_rollout_waiter(std::move(rollout));
}

void Supervisor::add_rollout_waiter(std::shared_ptr<RollingRestart> rollout) {
    add_waiter([this, rollout] { return advance_rollout(*rollout); }, true);
}

Instance& Supervisor::add_replacement(Worker& worker, const Instance& old) {
    uint64_t id = next_instance_id_++;
    auto position = std::find_if(worker.instances.begin(), worker.instances.end(),
                                 [&](const auto& i) { return i.get() == &old; });
    auto inserted = worker.instances.insert(position + 1, std::make_unique<Instance>(loop_, &worker, old.index, id));
    Instance& fresh = **inserted;
    fresh.replacement = true;
    instances_by_id_[id] = &fresh;
    return fresh;
}

void Supervisor::start_replacement(Worker& worker, RollingRestart& rollout, size_t slot_index) {
    auto& slot = rollout.slots[slot_index];
    Instance* old = find_instance(slot.old_id);
    if (old != nullptr && !old->has_process()) {
        // Nothing serves this slot (backoff, failed, stopped): start the instance itself.
        slot.in_place = true;
        slot.new_id = old->id;
        old->timer.stop();
        old->start_limiter.reset();  // an operator's start, as in start_now
        old->backoff.reset();
        spawn(*old);
        slot.new_pid = old->pid;
        return;
    }
    if (old == nullptr) {  // cannot happen while the rollout holds the worker; be safe
        slot.in_place = true;
        slot.new_id = 0;
        return;
    }
    Instance& fresh = add_replacement(worker, *old);
    fresh.restarts = old->restarts;  // the counters belong to the slot, as with stop-start
    slot.new_id = fresh.id;
    spawn(fresh);
    slot.new_pid = fresh.pid;
    if (rollout.progress && fresh.has_process())
        rollout.progress(fresh.label() + ": started pid " + std::to_string(fresh.pid) + " beside pid " +
                         std::to_string(old->pid));
}

std::optional<std::string> Supervisor::start_failure(const Instance& instance) const {
    if (instance.has_process()) {
        if (instance.kill_reason != KillReason::none) return instance.last_error;
        return std::nullopt;  // starting, running, or stopping by someone's command
    }
    if (instance.state == InstanceState::starting || instance.state == InstanceState::running) return std::nullopt;
    if (!instance.last_error.empty()) return instance.last_error;
    if (instance.last_exit) return "exited: " + instance.last_exit->describe();
    return std::string("did not start (") + state_name(instance.state) + ")";
}

// A replacement that will not be used: stopped if it runs, erased once it has no process.
void Supervisor::retire_replacement(RollingRestart& rollout, size_t slot_index) {
    auto& slot = rollout.slots[slot_index];
    if (slot.in_place) return;  // the slot's only instance: it stays, its policy applies
    if (Instance* fresh = find_instance(slot.new_id)) {
        fresh->retiring = true;
        stop_instance(*fresh);
        // Without a process (killed before it was ready) no exit will come to sweep it
        // away: another pass of the waiters' loop does, now (this runs in that loop).
        if (!fresh->has_process()) state_changed();
    }
}

bool Supervisor::advance_rollout(RollingRestart& rollout) {
    Worker* worker = find_worker(rollout.worker);
    for (bool changed = true; changed;) {
        changed = false;
        if (!rollout.plan.stopped() &&
            (worker == nullptr || worker->generation != rollout.generation || shutting_down_)) {
            rollout.stop_reason = shutting_down_ ? "fdsupd is shutting down" : "a later command took over";
            spdlog::warn("worker {}: rolling restart stopped: {}", rollout.worker, rollout.stop_reason);
            for (size_t i : rollout.plan.abort()) retire_replacement(rollout, i);
        }
        for (size_t i = 0; i < rollout.slots.size(); ++i) {
            auto& slot = rollout.slots[i];
            if (rollout.plan.state(i) == SlotState::replacing) {
                const Instance* fresh = find_instance(slot.new_id);
                std::optional<std::string> failure =
                    fresh == nullptr ? std::optional<std::string>("removed before it was ready") : start_failure(*fresh);
                if (failure) {
                    slot.failure = *failure;
                    std::string label = instance_label(rollout.worker, slot.index);
                    rollout.stop_reason = label + " failed";
                    spdlog::error("worker {}: rolling restart stopped: replacement {}: {}", rollout.worker, label,
                                  *failure);
                    retire_replacement(rollout, i);
                    for (size_t other : rollout.plan.replacement_failed(i)) retire_replacement(rollout, other);
                    if (rollout.progress) rollout.progress(label + ": replacement failed: " + *failure);
                    changed = true;
                } else if (fresh->state == InstanceState::running && fresh->ready) {
                    Instance& ready = *find_instance(slot.new_id);
                    ready.replacement = false;  // in service from now on
                    slot.new_pid = ready.pid;
                    rollout.plan.replacement_ready(i);
                    Instance* old = slot.in_place ? nullptr : find_instance(slot.old_id);
                    if (old != nullptr) {
                        old->retiring = true;
                        stop_instance(*old);  // the graceful drain: stop_signal, then stop_timeout
                    }
                    if (rollout.progress)
                        rollout.progress(ready.label() + ": pid " + std::to_string(ready.pid) + " ready after " +
                                         format_duration(Clock::now() - ready.started_at) +
                                         (old != nullptr && slot.old_pid > 0
                                              ? "; stopping pid " + std::to_string(slot.old_pid) : ""));
                    changed = true;
                }
            }
            if (rollout.plan.state(i) == SlotState::draining) {
                const Instance* old = slot.in_place ? nullptr : find_instance(slot.old_id);
                if (old == nullptr || !old->has_process()) {
                    rollout.plan.old_gone(i);
                    changed = true;
                }
            }
        }
        if (worker != nullptr)
            for (size_t i : rollout.plan.start_next()) {
                start_replacement(*worker, rollout, i);
                changed = true;
            }
    }
    if (!rollout.plan.finished()) return false;

    if (worker != nullptr && worker->rollout.get() == &rollout) worker->rollout.reset();
    auto reports = rollout_reports(rollout);
    spdlog::info("worker {}: rolling restart {}: {} of {} instance(s) replaced", rollout.worker,
                 rollout.plan.stopped() ? "stopped" : "done", rollout.plan.count(SlotState::done), rollout.slots.size());
    auto then = std::move(rollout.then);
    then(std::move(reports));
    return true;
}

std::vector<InstanceReport> Supervisor::rollout_reports(const RollingRestart& rollout) const {
    std::vector<InstanceReport> reports;
    for (size_t i = 0; i < rollout.slots.size(); ++i) {
        const auto& slot = rollout.slots[i];
        std::string label = instance_label(rollout.worker, slot.index);
        std::string old_pid = "pid " + std::to_string(slot.old_pid);
        InstanceReport r{rollout.worker, slot.index, InstanceState::stopped, -1, slot.old_pid, true, {}};
        const Instance* now = find_instance(slot.new_id);
        if (rollout.plan.state(i) != SlotState::done) now = find_instance(slot.old_id);
        if (now != nullptr) {
            r.state = now->state;
            r.pid = now->pid;
        }
        switch (rollout.plan.state(i)) {
            case SlotState::done:
                r.message = slot.in_place ? label + ": started pid " + std::to_string(slot.new_pid)
                                          : label + ": " + old_pid + " replaced by pid " + std::to_string(slot.new_pid);
                break;
            case SlotState::failed:
                r.ok = false;
                r.message = label + ": " + (slot.in_place ? "did not start: " : "replacement failed: ") + slot.failure +
                            (slot.in_place || slot.old_pid <= 0 ? "" : "; " + old_pid + " keeps serving");
                break;
            default:  // skipped
                r.ok = false;
                r.message = label + ": not replaced (" + rollout.stop_reason + ")" +
                            (now != nullptr && now->has_process() ? "; pid " + std::to_string(now->pid) + " keeps serving"
                                                                  : "");
                break;
        }
        reports.push_back(std::move(r));
    }
    return reports;
}

}  // namespace fdsup
