#include "rollout/rolling_restart.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "config/values.h"

namespace fdsup {

using config::format_duration;
using SlotState = RolloutPlan::SlotState;

void RollingRestart::start_replacement(RolloutHost& host, Worker& worker, size_t slot_index) {
    auto& slot = slots[slot_index];
    Instance* old = host.find_instance(slot.old_id);
    if (old != nullptr && !old->has_process()) {
        // Nothing serves this slot (backoff, failed, stopped): start the instance itself.
        slot.in_place = true;
        slot.new_id = old->id;
        old->spec = next_config;
        host.start_fresh(*old);
        slot.new_pid = old->pid;
        return;
    }
    if (old == nullptr) {  // cannot happen while the rollout holds the worker; be safe
        slot.in_place = true;
        slot.new_id = 0;
        return;
    }
    Instance& fresh = host.add_replacement(worker, *old);
    fresh.restarts = old->restarts;  // the counters belong to the slot, as with stop-start
    fresh.spec = next_config;
    slot.new_id = fresh.id;
    host.spawn(fresh);
    slot.new_pid = fresh.pid;
    if (progress && fresh.has_process())
        progress(fresh.label() + ": started pid " + std::to_string(fresh.pid) + " beside pid " +
                         std::to_string(old->pid));
}

std::optional<std::string> start_failure(const Instance& instance) {
    if (instance.has_process()) {
        if (instance.kill_reason != KillReason::none) return instance.last_error;
        return std::nullopt;  // starting, running, or stopping by someone's command
    }
    if (instance.state == InstanceState::starting || instance.state == InstanceState::running) return std::nullopt;
    if (!instance.last_error.empty()) return instance.last_error;
    if (instance.last_exit) return "exited: " + instance.last_exit->describe();
    return std::string("did not start (") + state_name(instance.state) + ")";
}

void RollingRestart::retire_replacement(RolloutHost& host, size_t slot_index) {
    auto& slot = slots[slot_index];
    if (slot.in_place) return;  // the slot's only instance: it stays, its policy applies
    if (Instance* fresh = host.find_instance(slot.new_id)) {
        fresh->retiring = true;
        host.stop_instance(*fresh);
        // Without a process (killed before it was ready) no exit will come to sweep it
        // away: another pass of the waiters' loop does, now (this runs in that loop).
        if (!fresh->has_process()) host.state_changed();
    }
}

bool RollingRestart::advance(RolloutHost& host) {
    Worker* owner = host.find_worker(worker);
    for (bool changed = true; changed;) {
        changed = false;
        if (!plan.stopped() &&
            (owner == nullptr || owner->generation != generation || host.shutting_down())) {
            stop_reason = host.shutting_down() ? "fdsupd is shutting down" : "a later command took over";
            spdlog::warn("worker {}: rolling restart stopped: {}", worker, stop_reason);
            for (size_t i : plan.abort()) retire_replacement(host, i);
        }
        if (!plan.stopped() && !abort_request_.empty()) {
            stop_reason = std::move(abort_request_);
            abort_request_.clear();
            aborted = true;
            spdlog::warn("worker {}: rolling restart aborted: {}", worker, stop_reason);
            rollout_event(host, EventKind::rollout_aborted, {{"reason", stop_reason}});
            for (size_t i : plan.abort()) retire_replacement(host, i);
            take_back_draining(host);
            // A canary without a process (it crashed) restarts on the old spec, not the new.
            for (const auto& slot : slots)
                if (Instance* canary = host.find_instance(slot.new_id); canary && !canary->has_process())
                    canary->spec.reset();
            if (progress) progress("rollout aborted: " + stop_reason);
            changed = true;
        }
        for (size_t i = 0; i < slots.size(); ++i) {
            auto& slot = slots[i];
            if (plan.state(i) == SlotState::replacing) {
                const Instance* fresh = host.find_instance(slot.new_id);
                std::optional<std::string> failure =
                    fresh == nullptr ? std::optional<std::string>("removed before it was ready") : start_failure(*fresh);
                if (failure) {
                    slot.failure = *failure;
                    std::string label = instance_label(worker, slot.index);
                    stop_reason = label + " failed";
                    spdlog::error("worker {}: rolling restart stopped: replacement {}: {}", worker, label,
                                  *failure);
                    retire_replacement(host, i);
                    // A canary that fails takes back what it replaced; a plain rollout
                    // keeps the slots that made it.
                    if (plan.canary() > 0 && !plan.released()) {
                        aborted = true;
                        rollout_event(host, EventKind::rollout_aborted, {{"reason", "canary failed: " + stop_reason}});
                    }
                    for (size_t other : plan.replacement_failed(i)) retire_replacement(host, other);
                    if (progress) progress(label + ": replacement failed: " + *failure);
                    changed = true;
                } else if (fresh->state == InstanceState::running && fresh->ready) {
                    Instance& ready = *host.find_instance(slot.new_id);
                    ready.replacement = false;  // in service from now on
                    slot.new_pid = ready.pid;
                    plan.replacement_ready(i);
                    {
                        Event step;
                        step.kind = EventKind::rollout_step;
                        step.worker = worker;
                        step.instance = slot.index;
                        step.pid = ready.pid;
                        step.fields = {{"step", static_cast<int64_t>(plan.count(SlotState::done) +
                                                                     plan.count(SlotState::draining))},
                                       {"total", static_cast<int64_t>(slots.size())},
                                       {"old_pid", slot.old_pid > 0 ? EventValue(int64_t{slot.old_pid}) : EventValue(nullptr)}};
                        host.events().add(std::move(step));
                    }
                    Instance* old = slot.in_place ? nullptr : host.find_instance(slot.old_id);
                    if (old != nullptr) {
                        old->retiring = true;
                        host.retire_instance(*old);  // stop_delay, then stop_signal and stop_timeout
                    }
                    if (progress)
                        progress(ready.label() + ": pid " + std::to_string(ready.pid) + " ready after " +
                                 format_duration(Clock::now() - ready.started_at) +
                                 (old != nullptr && slot.old_pid > 0 ? "; stopping pid " + std::to_string(slot.old_pid)
                                                                     : ""));
                    changed = true;
                }
            }
            if (plan.state(i) == SlotState::draining) {
                const Instance* old = slot.in_place ? nullptr : host.find_instance(slot.old_id);
                if (old == nullptr || !old->has_process()) {
                    plan.old_gone(i);
                    changed = true;
                }
            }
        }
        if (owner != nullptr && plan.holding() && hold(host, *owner)) changed = true;
        if (owner != nullptr)
            for (size_t i : plan.start_next()) {
                start_replacement(host, *owner, i);
                changed = true;
            }
    }
    if (!plan.finished()) return false;

    outcome = reports(host);
    // Kept, with its outcome, for whoever asks how it went (a client that reconnects
    // after an in-place upgrade).
    if (owner != nullptr && owner->rollout.get() == this) {
        if (reason.empty()) owner->last_rollout = std::move(owner->rollout);
        else owner->rollout.reset();
    }
    spdlog::info("worker {}: rolling restart{} {}: {} of {} instance(s) replaced", worker,
                 reason.empty() ? "" : " (" + reason + ")", plan.stopped() ? "stopped" : "done",
                 plan.count(SlotState::done), slots.size());
    Event end;
    end.kind = plan.stopped() ? EventKind::rollout_stopped : EventKind::rollout_finished;
    end.worker = worker;
    end.fields = {{"replaced", static_cast<int64_t>(plan.count(SlotState::done))},
                  {"total", static_cast<int64_t>(slots.size())}};
    if (plan.stopped()) end.fields.emplace_back("reason", stop_reason);
    host.events().add(std::move(end));
    progress = nullptr;  // the command has its answer: nothing more to say to its client
    auto done = std::move(then);
    if (done) done(outcome);
    auto watchers = std::move(watchers_);
    watchers_.clear();
    for (auto& [id, watcher] : watchers) watcher();
    // Aborted, or a reload's canary that ended before it was released (it failed, a
    // later command or the shutdown ended it): the worker goes back to what it ran.
    if (aborted || next_config) host.roll_back(*this);
    return true;
}

void RollingRestart::rollout_event(RolloutHost& host, EventKind kind, EventFields fields) const {
    Event event;
    event.kind = kind;
    event.worker = worker;
    event.fields = std::move(fields);
    host.events().add(std::move(event));
}

std::optional<std::string> RollingRestart::canary_failure(RolloutHost& host, const Worker& owner) const {
    for (size_t i = 0; i < plan.canary(); ++i) {
        const auto& slot = slots[i];
        if (plan.state(i) != SlotState::draining && plan.state(i) != SlotState::done) continue;
        std::string label = instance_label(worker, slot.index);
        const Instance* canary = host.find_instance(slot.new_id);
        if (canary == nullptr) return label + " was removed";
        if (!canary->has_process())
            return label + (canary->last_exit ? " " + canary->last_exit->describe() : " stopped");
        if (canary->pid != slot.new_pid) return label + " was restarted (pid " + std::to_string(canary->pid) + ")";
        if (canary->kill_reason != KillReason::none) return label + ": " + canary->last_error;
        if (canary->state != InstanceState::running || !canary->ready) return label + " is no longer ready";
        if (canary->health.failures > 0)
            return label + " failed its liveness probe" +
                   (canary->health.last ? ": " + canary->health.last->detail : std::string());
    }
    if (restarts_in_service(owner) > restarts_at_hold)
        return "worker " + worker + " restarted an instance during the pause";
    return std::nullopt;
}

int RollingRestart::restarts_in_service(const Worker& owner) {
    // While the rollout holds, the set of instances in service stays the same (the
    // worker refuses scale and restart), so their sum only grows by restarts.
    int sum = 0;
    for (const auto& instance : owner.instances)
        if (!instance->retiring && !instance->replacement) sum += instance->restarts;
    return sum;
}

bool RollingRestart::hold(RolloutHost& host, const Worker& owner) {
    if (restarts_at_hold < 0) {
        restarts_at_hold = restarts_in_service(owner);
        hold_until = pause.count() > 0 ? Clock::now() + pause : Clock::time_point::max();
        std::string how = pause.count() > 0 ? "for " + format_duration(pause) : "until promoted";
        spdlog::info("worker {}: canary of {} instance(s) in service; holding {}", worker, plan.canary(), how);
        rollout_event(host, EventKind::rollout_paused,
                      {{"canary", static_cast<int64_t>(plan.canary())},
                       {"pause", pause.count() > 0 ? EventValue(std::chrono::duration<double>(pause).count())
                                                   : EventValue(nullptr)}});
        if (progress)
            progress("canary: " + std::to_string(plan.canary()) + " of " + std::to_string(slots.size()) +
                     " instances replaced; holding " + how + " (fdsupctl rollout promote|abort " + worker + ")");
    }
    if (auto failure = canary_failure(host, owner)) {
        abort_request_ = "canary failed: " + *failure;
        return true;
    }
    if (hold_until == Clock::time_point::max()) return false;
    if (Clock::now() < hold_until) {
        host.wake_at(hold_until);
        return false;
    }
    spdlog::info("worker {}: the canary's pause is over; rolling on", worker);
    if (progress) progress("canary: pause over; replacing the rest");
    rollout_event(host, EventKind::rollout_promoted, {{"by", std::string("pause")}});
    release(host);
    return true;
}

void RollingRestart::take_back_draining(RolloutHost& host) {
    for (size_t i = 0; i < slots.size(); ++i) {
        if (plan.state(i) != SlotState::draining || slots[i].in_place) continue;
        Instance* old = host.find_instance(slots[i].old_id);
        Instance* fresh = host.find_instance(slots[i].new_id);
        if (old == nullptr || fresh == nullptr || !old->draining) continue;
        host.keep_instance(*old);
        fresh->retiring = true;
        host.stop_instance(*fresh);
        plan.take_back(i);
        if (progress) progress(old->label() + ": pid " + std::to_string(old->pid) + " serves on; pid " +
                               std::to_string(fresh->pid) + " stopped");
    }
}

void RollingRestart::release(RolloutHost& host) {
    plan.release();
    if (!next_config) return;
    // From now on the worker runs the new spec, and its canaries are no longer special.
    if (Worker* owner = host.find_worker(worker)) {
        int instances = owner->config.instances;
        owner->config = *next_config;
        owner->config.instances = instances;
        for (auto& instance : owner->instances)
            if (instance->spec == next_config) instance->spec.reset();
    }
    next_config.reset();
}

Result<void> RollingRestart::promote(RolloutHost& host) {
    if (plan.stopped()) return fail("the rolling restart of " + worker + " was " + (aborted ? "aborted" : "stopped") + ": " + stop_reason);
    if (plan.canary() == 0) return fail("the rolling restart of " + worker + " has no canary to promote");
    if (plan.released()) return fail("the canary of " + worker + " was already promoted");
    // A canary that failed a check since the last look is not promoted: it aborts.
    if (const Worker* owner = host.find_worker(worker); owner != nullptr && plan.holding())
        if (auto failure = canary_failure(host, *owner)) {
            std::string why = "canary failed: " + *failure;
            abort_request_ = why;
            host.state_changed();
            return fail("not promoted: " + why + "; the rollout of " + worker + " is aborted");
        }
    spdlog::info("worker {}: canary promoted", worker);
    if (progress) progress("canary: promoted; replacing the rest");
    rollout_event(host, EventKind::rollout_promoted, {{"by", std::string("operator")}});
    release(host);
    host.state_changed();
    return {};
}

Result<void> RollingRestart::abort(std::string why) {
    if (plan.stopped()) return fail("the rolling restart of " + worker + " was already " + (aborted ? "aborted" : "stopped") + ": " + stop_reason);
    if (plan.finished()) return fail("the rolling restart of " + worker + " has finished");
    abort_request_ = std::move(why);
    return {};
}

std::string RollingRestart::phase() const {
    if (aborted) return "aborted";
    if (plan.stopped()) return "stopped";
    if (plan.canary() > 0 && !plan.released()) return plan.holding() ? "paused" : "canary";
    return "rolling";
}

std::vector<uint64_t> RollingRestart::replaced_instances() const {
    std::vector<uint64_t> ids;
    for (size_t i = 0; i < slots.size(); ++i)
        if (plan.state(i) == SlotState::done || plan.state(i) == SlotState::draining) ids.push_back(slots[i].new_id);
    return ids;
}

uint64_t RollingRestart::when_finished(std::function<void()> callback) {
    uint64_t id = next_watcher_++;
    watchers_.emplace(id, std::move(callback));
    return id;
}

std::string RollingRestart::progress_text() const {
    return std::to_string(plan.count(SlotState::done) + plan.count(SlotState::draining)) + " of " +
           std::to_string(plan.size()) + " instances replaced";
}

std::vector<InstanceReport> RollingRestart::reports(const RolloutHost& host) const {
    std::vector<InstanceReport> reports;
    for (size_t i = 0; i < slots.size(); ++i) {
        const auto& slot = slots[i];
        std::string label = instance_label(worker, slot.index);
        std::string old_pid = "pid " + std::to_string(slot.old_pid);
        InstanceReport r{worker, slot.index, InstanceState::stopped, -1, slot.old_pid, true, {}};
        const Instance* now = host.find_instance(slot.new_id);
        if (plan.state(i) != SlotState::done) now = host.find_instance(slot.old_id);
        if (now != nullptr) {
            r.state = now->state;
            r.pid = now->pid;
        }
        switch (plan.state(i)) {
            case SlotState::done:
                r.message = slot.in_place ? label + ": started pid " + std::to_string(slot.new_pid)
                                          : label + ": " + old_pid + " replaced by pid " + std::to_string(slot.new_pid);
                if (aborted) {  // put back on the previous spec by the rollback that follows
                    r.ok = false;
                    r.message += ", to be rolled back (" + stop_reason + ")";
                }
                break;
            case SlotState::failed:
                r.ok = false;
                r.message = label + ": " + (slot.in_place ? "did not start: " : "replacement failed: ") + slot.failure +
                            (slot.in_place || slot.old_pid <= 0 ? "" : "; " + old_pid + " keeps serving");
                break;
            default:  // skipped
                r.ok = false;
                r.message = label + ": not replaced (" + stop_reason + ")" +
                            (now != nullptr && now->has_process() ? "; pid " + std::to_string(now->pid) + " keeps serving"
                                                                  : "");
                break;
        }
        reports.push_back(std::move(r));
    }
    return reports;
}

}  // namespace fdsup
