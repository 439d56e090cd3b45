// The operator's lifecycle commands: start, stop, restart, scale, signal.
//
// Each command is made of two steps that work on any instance state: stop_now (graceful
// stop; a pending restart is cancelled) and start_now (spawn what has no process; a
// failed instance gets its start limit cleared). `await` then waits, through a waiter,
// until every instance involved got where it was asked to go, and builds one report per
// instance. A command bumps the worker's generation: a restart whose stop phase ends
// after a later command took the worker over does not start it again.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>

#include "config/values.h"
#include "rollout/rolling_restart.h"
#include "supervisor/supervisor.h"
#include "sys/signal_names.h"
#include "table/log_about.h"

namespace fdsup {
namespace {

bool all_ok(const std::vector<InstanceReport>& reports) {
    return std::all_of(reports.begin(), reports.end(), [](const InstanceReport& r) { return r.ok; });
}

OperationResult result_of(std::vector<InstanceReport> reports, const std::string& what) {
    OperationResult result;
    result.instances = std::move(reports);
    result.ok = all_ok(result.instances);
    if (!result.ok) {
        size_t failed = std::count_if(result.instances.begin(), result.instances.end(),
                                      [](const InstanceReport& r) { return !r.ok; });
        auto first = std::find_if(result.instances.begin(), result.instances.end(),
                                  [](const InstanceReport& r) { return !r.ok; });
        result.error = what + " failed for " + std::to_string(failed) + " of " +
                       std::to_string(result.instances.size()) + " instance" +
                       (result.instances.size() == 1 ? "" : "s") + ": " + first->message;
    }
    return result;
}

// Runs `then` once `count` parts have finished, with every part's reports in the order
// the parts were started.
struct Gather {
    std::vector<std::vector<InstanceReport>> parts;
    size_t remaining;
    std::function<void(std::vector<InstanceReport>)> then;

    static std::shared_ptr<Gather> make(size_t count, std::function<void(std::vector<InstanceReport>)> then) {
        auto g = std::make_shared<Gather>();
        g->parts.resize(count);
        g->remaining = count;
        g->then = std::move(then);
        return g;
    }
    static std::function<void(std::vector<InstanceReport>)> part(const std::shared_ptr<Gather>& g, size_t i) {
        return [g, i](std::vector<InstanceReport> reports) {
            g->parts[i] = std::move(reports);
            if (--g->remaining > 0) return;
            std::vector<InstanceReport> all;
            for (auto& p : g->parts) std::move(p.begin(), p.end(), std::back_inserter(all));
            g->then(std::move(all));
        };
    }
};

}  // namespace

// ---- the steps --------------------------------------------------------------------

Result<std::vector<Worker*>> Supervisor::resolve(const std::vector<std::string>& names) const {
    std::vector<Worker*> found;
    for (const auto& name : names) {
        Worker* worker = find_worker(name);
        if (worker == nullptr) {
            std::string known;
            for (const auto& w : workers_)
                if (!w->removing) known += (known.empty() ? "" : ", ") + w->config.name;
            return fail("unknown worker \"" + name + "\" (workers: " + (known.empty() ? "none" : known) + ")");
        }
        if (std::find(found.begin(), found.end(), worker) == found.end()) found.push_back(worker);
    }
    return found;
}

std::string Supervisor::busy_reason(const Worker& worker) const {
    if (!worker.rollout) return "";
    const std::string& reason = worker.rollout->reason;
    return "worker " + worker.config.name + ": a rolling restart is in progress (" +
           (reason.empty() ? "" : reason + ": ") + worker.rollout->progress_text() +
           "); try again when it is done, or stop it";
}

Result<std::vector<Worker*>> Supervisor::resolve_to_start(const std::vector<std::string>& names) const {
    auto workers = resolve(names);
    if (!workers) return workers;
    if (shutting_down_) return fail("fdsupd is shutting down");
    for (const Worker* worker : *workers)
        if (auto busy = busy_reason(*worker); !busy.empty()) return fail(busy);
    return workers;
}

std::vector<Supervisor::Tracked> Supervisor::track(Worker& worker, bool only_with_process) const {
    std::vector<Tracked> tracked;
    for (const auto& instance : worker.instances)
        if (!only_with_process || instance->has_process())
            tracked.push_back({instance->id, worker.config.name, instance->index, instance->pid});
    return tracked;
}

std::vector<Supervisor::Tracked> Supervisor::stop_now(Worker& worker) {
    auto tracked = track(worker, false);
    worker.waiting_for_dependencies = false;
    // On demand: not watched, not going idle; stopped until a start.
    stop_watching(worker);
    worker.demand.going_idle = false;
    if (worker.demand.idle_timer) worker.demand.idle_timer->stop();
    for (auto& instance : worker.instances) stop_instance(*instance);
    return tracked;
}

std::vector<Supervisor::Tracked> Supervisor::start_now(Worker& worker, bool fresh) {
    auto tracked = track(worker, false);  // before: the pids the command found
    worker.stopped_by_operator = false;
    stop_watching(worker);  // on demand: started now, as a connection would
    worker.demand.going_idle = false;
    for (auto& instance : worker.instances) {
        if (instance->has_process() || instance->retiring) continue;
        instance->timer.stop();  // a pending restart happens now instead
        // The operator's start is a fresh start: the crash-loop limits (start limit,
        // backoff) are for restarts fdsupd decides on its own, not for commands. A start
        // on demand is fdsupd's own: an app that exits 0 without taking the connection
        // would otherwise be woken again at once, for ever.
        if (fresh) {
            instance->start_limiter.reset();
            instance->backoff.reset();
        }
        instance->state = InstanceState::stopped;  // start_worker spawns stopped instances
    }
    start_worker(worker);
    return tracked;
}

InstanceReport Supervisor::report_gone(const Tracked& t) const {
    InstanceReport r{t.worker, t.index, InstanceState::stopped, -1, t.previous_pid, true, {}};
    std::string label = instance_label(t.worker, t.index);
    const Instance* instance = find_instance(t.id);
    if (instance == nullptr) {
        r.message = label + (t.previous_pid > 0 ? ": pid " + std::to_string(t.previous_pid) + " stopped; removed"
                                                : ": removed");
        return r;
    }
    r.state = instance->state;
    if (t.previous_pid <= 0) {
        r.message = label + ": not running (" + state_name(instance->state) + ")";
    } else {
        r.message = label + ": pid " + std::to_string(t.previous_pid) + " " +
                    (instance->last_exit ? instance->last_exit->describe() : std::string("exited")) +
                    (instance->stop_escalated ? " (SIGKILL after stop_timeout)" : "") + "; " +
                    state_name(instance->state);
    }
    return r;
}

std::optional<InstanceReport> Supervisor::report_started(const Tracked& t) const {
    InstanceReport r{t.worker, t.index, InstanceState::stopped, -1, t.previous_pid, true, {}};
    std::string label = instance_label(t.worker, t.index);
    const Instance* instance = find_instance(t.id);
    if (instance == nullptr) {
        r.ok = false;
        r.message = label + ": removed before it was ready";
        return r;
    }
    r.state = instance->state;
    r.pid = instance->pid;
    const Worker& worker = *instance->worker;
    if (instance->has_process() && instance->kill_reason != KillReason::none) {
        r.ok = false;
        r.message = label + ": " + instance->last_error + "; stopping it";
        return r;
    }
    if (instance->has_process()) {
        if (instance->state == InstanceState::starting) return std::nullopt;  // not ready yet
        if (instance->state == InstanceState::stopping) {
            r.ok = false;
            r.message = label + ": stopping again (a later command)";
            return r;
        }
        if (t.previous_pid == instance->pid)
            r.message = label + ": already running, pid " + std::to_string(instance->pid);
        else if (t.previous_pid > 0)
            r.message = label + ": pid " + std::to_string(t.previous_pid) + " replaced by pid " +
                        std::to_string(instance->pid);
        else
            r.message = label + ": started pid " + std::to_string(instance->pid);
        return r;
    }
    if (instance->state == InstanceState::idle) {
        r.message = label + ": idle (on demand): starts with the first connection";
        return r;
    }
    if (worker.waiting_for_dependencies) {
        std::string names;
        for (const auto& n : worker.config.after) names += (names.empty() ? "" : ", ") + n;
        r.message = label + ": waiting for " + names + " to be ready";
        return r;
    }
    r.ok = false;
    std::string why = !instance->last_error.empty() ? instance->last_error
                      : instance->last_exit         ? instance->last_exit->describe()
                                                    : std::string();
    switch (instance->state) {
        case InstanceState::backoff:
            r.message = label + ": did not start" + (why.empty() ? "" : ": " + why) + "; retrying";
            break;
        case InstanceState::failed:
            r.message = label + ": failed" + (why.empty() ? "" : ": " + why);
            break;
        case InstanceState::exited:  // restart = never / on-failure: fine if it succeeded
            r.ok = instance->last_exit && !instance->last_exit->signaled &&
                   std::find(worker.config.success_exit_codes.begin(), worker.config.success_exit_codes.end(),
                             instance->last_exit->code) != worker.config.success_exit_codes.end();
            r.message = label + ": ran and " + why;
            break;
        default:
            r.message = label + ": not started (" +
                        (shutting_down_ ? std::string("fdsupd is shutting down") : state_name(instance->state)) + ")";
            break;
    }
    return r;
}

void Supervisor::await(std::vector<Tracked> tracked, Goal goal, ProgressFn progress,
                       std::function<void(std::vector<InstanceReport>)> then) {
    struct State {
        std::vector<Tracked> tracked;
        std::vector<std::optional<InstanceReport>> reports;
    };
    auto state = std::make_shared<State>();
    state->reports.resize(tracked.size());
    state->tracked = std::move(tracked);
    add_waiter([this, state, goal, progress = std::move(progress), then = std::move(then)]() -> bool {
        bool all_done = true;
        for (size_t i = 0; i < state->tracked.size(); ++i) {
            if (state->reports[i]) continue;
            const Tracked& t = state->tracked[i];
            std::optional<InstanceReport> report;
            if (goal == Goal::gone) {
                const Instance* instance = find_instance(t.id);
                // Gone once the process the command saw has exited (a later start may
                // already have replaced it: that is another command's business).
                if (instance == nullptr || !instance->has_process() || instance->pid != t.previous_pid)
                    report = report_gone(t);
            } else {
                report = report_started(t);
            }
            if (!report) {
                all_done = false;
                continue;
            }
            if (progress) progress(report->message);
            state->reports[i] = std::move(report);
        }
        if (!all_done) return false;
        std::vector<InstanceReport> reports;
        for (auto& r : state->reports) reports.push_back(std::move(*r));
        then(std::move(reports));
        return true;
    });
}

void Supervisor::stop_then_start(Worker& worker, ProgressFn progress,
                                 std::function<void(std::vector<InstanceReport>)> then) {
    uint64_t generation = ++worker.generation;
    auto stopped = stop_now(worker);
    std::map<int, pid_t> old_pids;
    for (const auto& t : stopped) old_pids[t.index] = t.previous_pid;
    std::string name = worker.config.name;
    await(std::move(stopped), Goal::gone, progress,
          [this, name, generation, progress, old_pids, then = std::move(then)](std::vector<InstanceReport> reports) {
              Worker* current = find_worker(name);
              if (current == nullptr || current->generation != generation || shutting_down_) {
                  if (current != nullptr) apply_pending_config(*current);
                  for (auto& r : reports) {
                      r.ok = false;
                      r.message += shutting_down_ ? "; not started again: fdsupd is shutting down"
                                                  : "; not started again: a later command took over";
                  }
                  then(std::move(reports));
                  return;
              }
              apply_pending_config(*current);
              auto started = start_now(*current);
              for (auto& t : started)
                  if (auto it = old_pids.find(t.index); it != old_pids.end()) t.previous_pid = it->second;
              await(std::move(started), Goal::started, progress, then);
          });
}

std::string Supervisor::canary_refusal(const Worker& worker, const CanaryOptions& canary) const {
    const std::string& name = worker.config.name;
    if (!rolls(worker))
        return "worker " + name + " cannot take a canary: " +
               (worker.config.restart_strategy != config::RestartStrategy::rolling
                    ? "its restart_strategy is \"stop-start\""
                    : "nothing of it runs to keep serving meanwhile");
    size_t in_service = static_cast<size_t>(std::count_if(worker.instances.begin(), worker.instances.end(),
                                                           [](const auto& i) { return !i->retiring; }));
    if (static_cast<size_t>(canary.count) >= in_service)
        return "worker " + name + " has " + std::to_string(in_service) + " instance(s): a canary of " +
               std::to_string(canary.count) + " would replace them all (use fewer, or a plain restart)";
    return {};
}

bool Supervisor::rolls(const Worker& worker) const {
    // Rolling needs something to keep serving meanwhile, and no stop-start half done.
    return worker.config.restart_strategy == config::RestartStrategy::rolling && worker.any_process() &&
           !worker.pending_config && !worker.stopped_by_operator;
}

void Supervisor::rolling_restart(Worker& worker, ProgressFn progress,
                                 std::function<void(std::vector<InstanceReport>)> then, const CanaryOptions& canary,
                                 std::shared_ptr<const config::WorkerConfig> next_config,
                                 std::string previous_source) {
    uint64_t generation = ++worker.generation;
    worker.stopped_by_operator = false;
    std::vector<RollingRestart::Slot> slots;
    for (const auto& instance : worker.instances)
        if (!instance->retiring) slots.push_back({instance->index, instance->id, instance->pid, 0, -1, false, {}});
    size_t canary_slots = canary.count > 0 ? std::min(slots.size(), static_cast<size_t>(canary.count)) : 0;
    about(worker).info(
        "worker {}: rolling restart of {} instance(s), max_surge {}{}", worker.config.name, slots.size(),
        worker.config.max_surge,
        canary_slots == 0 ? std::string()
                          : fmt::format(", canary {} then {}", canary_slots,
                                        canary.pause.count() > 0 ? "a pause of " + config::format_duration(canary.pause)
                                                                 : std::string("a hold until promoted")));
    auto rollout = std::make_shared<RollingRestart>(worker.config.name, generation, std::move(slots),
                                                    worker.config.max_surge, canary_slots);
    rollout->pause = canary.pause;
    rollout->progress = std::move(progress);
    rollout->then = std::move(then);
    if (next_config) {
        // A reload: the worker keeps its spec until the canary is promoted (its other
        // instances restart on it meanwhile); replacements start on the new one.
        rollout->previous_config = std::make_shared<const config::WorkerConfig>(worker.config);
        rollout->previous_source = std::move(previous_source);
        if (canary_slots > 0) {
            rollout->next_config = std::move(next_config);
        } else {
            int instances = worker.config.instances;
            worker.config = *next_config;
            worker.config.instances = instances;
        }
    }
    worker.rollout = rollout;
    emit_rollout_began(*rollout);
    add_rollout_waiter(std::move(rollout));
}

void Supervisor::stop_idle_rollout_timer() {
    // Armed for a pause that ended early (promoted, aborted): no wakeup for nothing.
    for (const auto& worker : workers_)
        if (worker->rollout && worker->rollout->plan.holding() && worker->rollout->hold_until != Clock::time_point::max())
            return;
    rollout_timer_.stop();
}

void Supervisor::wake_at(Clock::time_point when) {
    if (rollout_timer_.active() && rollout_timer_at_ <= when) return;
    rollout_timer_at_ = when;
    rollout_timer_.start(until(when), [this] { state_changed(); });
}

void Supervisor::roll_back(const RollingRestart& aborted) {
    Worker* worker = find_worker(aborted.worker);
    if (worker == nullptr || worker->removing) return;
    if (aborted.previous_config) {
        // A reload's: the spec before it is the worker's again, and the loaded config's,
        // so that the next reload sees the file's change once more and may try it again;
        // no instance keeps the new spec for its next start.
        int instances = worker->config.instances;
        worker->config = *aborted.previous_config;
        worker->config.instances = instances;
        if (config::WorkerConfig* entry = config_.find_worker(worker->config.name)) *entry = *aborted.previous_config;
        worker->config_source = aborted.previous_source;
        for (auto& instance : worker->instances) instance->spec.reset();
        about(*worker).warn("worker {}: back on the spec it ran before the reload", worker->config.name);
    }
    if (!aborted.aborted || worker->generation != aborted.generation || shutting_down_ || worker->rollout) return;
    std::vector<RollingRestart::Slot> slots;
    for (uint64_t id : aborted.replaced_instances()) {
        Instance* instance = find_instance(id);
        if (instance == nullptr || instance->retiring) continue;
        slots.push_back({instance->index, instance->id, instance->pid, 0, -1, false, {}});
    }
    if (slots.empty()) return;
    about(*worker).warn("worker {}: rolling back {} instance(s) to the previous spec", worker->config.name,
                        slots.size());
    auto rollback = std::make_shared<RollingRestart>(worker->config.name, ++worker->generation, std::move(slots),
                                                     worker->config.max_surge);
    rollback->reason = "rollback after: " + aborted.stop_reason;
    rollback->rollback = true;
    rollback->then = rollback_done(worker->config.name);
    worker->rollout = rollback;
    emit_rollout_began(*rollback);
    add_rollout_waiter(std::move(rollback));
}

std::function<void(std::vector<InstanceReport>)> Supervisor::rollback_done(const std::string& name) {
    return [name](std::vector<InstanceReport> reports) {
        auto failed = std::find_if(reports.begin(), reports.end(), [](const auto& r) { return !r.ok; });
        if (failed == reports.end()) about_worker(name).info("worker {}: rolled back to the previous spec", name);
        else about_worker(name).error("worker {}: rollback incomplete: {}", name, failed->message);
    };
}

Result<std::shared_ptr<RollingRestart>> Supervisor::steerable_rollout(const std::string& name, bool promote) const {
    Worker* worker = find_worker(name);
    if (worker == nullptr) return fail("no such worker: " + name);
    const auto& rollout = worker->rollout;
    if (!rollout) return fail("worker " + name + " has no rolling restart in progress");
    if (!rollout->reason.empty()) return fail("worker " + name + "'s rolling restart is fdsupd's own (" + rollout->reason + ")");
    if (rollout->plan.stopped()) return fail("the rolling restart of " + name + " has already stopped: " + rollout->stop_reason);
    if (promote && (rollout->plan.canary() == 0 || rollout->plan.released()))
        return fail("the rolling restart of " + name + " has no canary holding");
    return rollout;  // a copy: alive through the waiters that acting on it may run
}

Result<void> Supervisor::promote_rollout(const std::string& name) {
    auto rollout = steerable_rollout(name, true);
    if (!rollout) return std::unexpected(rollout.error());
    return (*rollout)->promote(*this);
}

Result<void> Supervisor::abort_rollout(const std::string& name) {
    auto found = steerable_rollout(name, false);
    if (!found) return std::unexpected(found.error());
    auto rollout = *found;
    if (auto aborted = rollout->abort("aborted by the operator"); !aborted) return aborted;
    state_changed();
    return {};
}

void Supervisor::add_rollout_waiter(std::shared_ptr<RollingRestart> rollout) {
    add_waiter(
        [this, rollout] {
            bool finished = rollout->advance(*this);
            if (finished) rearm_recycling();  // a recycle held back by it may be due now
            if (rollout_timer_.active() && !rollout->plan.holding()) stop_idle_rollout_timer();
            return finished;
        },
        true);
}


void Supervisor::scale_now(Worker& worker, int count, ProgressFn progress,
                           std::function<void(std::vector<InstanceReport>)> then) {
    std::vector<Instance*> staying;  // in index order; instances on their way out do not count
    for (auto& instance : worker.instances)
        if (!instance->retiring && !instance->replacement) staying.push_back(instance.get());
    int live = static_cast<int>(staying.size());
    worker.config.instances = count;
    if (count < live) {
        std::vector<Tracked> leaving;
        for (int i = count; i < live; ++i) {
            Instance& instance = *staying[static_cast<size_t>(i)];
            instance.retiring = true;
            leaving.push_back({instance.id, worker.config.name, instance.index, instance.pid});
            retire_instance(instance);
        }
        about(worker).info("worker {}: scaling from {} to {} instances", worker.config.name, live, count);
        await(std::move(leaving), Goal::gone, std::move(progress), std::move(then));
        return;
    }
    std::vector<Tracked> added;
    about(worker).info("worker {}: scaling from {} to {} instances", worker.config.name, live, count);
    for (int i = live; i < count; ++i) {
        Instance& instance = add_instance(worker, i);  // after the `live` that stay
        added.push_back({instance.id, worker.config.name, instance.index, -1});
    }
    if (worker.stopped_by_operator || shutting_down_) {
        std::vector<InstanceReport> reports;
        for (const auto& t : added)
            reports.push_back({t.worker, t.index, InstanceState::stopped, -1, -1, true,
                               instance_label(t.worker, t.index) + ": added, stopped (the worker is stopped)"});
        then(std::move(reports));
        return;
    }
    start_worker(worker);
    await(std::move(added), Goal::started, std::move(progress), std::move(then));
}

// ---- the commands -----------------------------------------------------------------

void Supervisor::start_workers(const std::vector<std::string>& names, ProgressFn progress, OperationDoneFn done) {
    auto workers = resolve_to_start(names);
    if (!workers) return done({false, workers.error().text(), {}});
    auto gather = Gather::make(workers->size(), [done](std::vector<InstanceReport> reports) {
        done(result_of(std::move(reports), "start"));
    });
    for (size_t i = 0; i < workers->size(); ++i) {
        Worker& worker = *(*workers)[i];
        about(worker).info("worker {}: start requested", worker.config.name);
        if (worker.any_process() && std::any_of(worker.instances.begin(), worker.instances.end(), [](const auto& in) {
                return in->state == InstanceState::stopping && !in->retiring;
            })) {
            // Still stopping from an earlier command: start once that is over.
            stop_then_start(worker, progress, Gather::part(gather, i));
            continue;
        }
        ++worker.generation;
        apply_pending_config(worker);
        await(start_now(worker), Goal::started, progress, Gather::part(gather, i));
    }
}

void Supervisor::stop_workers(const std::vector<std::string>& names, ProgressFn progress, OperationDoneFn done) {
    auto workers = resolve(names);
    if (!workers) return done({false, workers.error().text(), {}});
    auto gather = Gather::make(workers->size(), [done](std::vector<InstanceReport> reports) {
        done(result_of(std::move(reports), "stop"));
    });
    for (size_t i = 0; i < workers->size(); ++i) {
        Worker& worker = *(*workers)[i];
        about(worker).info("worker {}: stop requested", worker.config.name);
        ++worker.generation;
        worker.stopped_by_operator = true;
        await(stop_now(worker), Goal::gone, progress, Gather::part(gather, i));
    }
}

void Supervisor::restart_workers(const std::vector<std::string>& names, ProgressFn progress, OperationDoneFn done,
                                 std::function<void(const std::vector<InstanceReport>&)> part_done,
                                 const CanaryOptions& canary) {
    auto workers = resolve_to_start(names);
    if (!workers) return done({false, workers.error().text(), {}});
    if (canary.count > 0)
        for (Worker* worker : *workers)
            if (auto refusal = canary_refusal(*worker, canary); !refusal.empty()) return done({false, refusal, {}});
    auto gather = Gather::make(workers->size(), [done](std::vector<InstanceReport> reports) {
        done(result_of(std::move(reports), "restart"));
    });
    for (size_t i = 0; i < workers->size(); ++i) {
        Worker& worker = *(*workers)[i];
        auto part = Gather::part(gather, i);
        if (part_done)
            part = [part, part_done](std::vector<InstanceReport> reports) {
                part_done(reports);
                part(std::move(reports));
            };
        if (rolls(worker)) {
            about(worker).info("worker {}: restart requested (rolling)", worker.config.name);
            rolling_restart(worker, progress, std::move(part), canary);
        } else {
            about(worker).info("worker {}: restart requested (stop-start)", worker.config.name);
            stop_then_start(worker, progress, std::move(part));
        }
    }
}

void Supervisor::scale_worker(const std::string& name, int count, ProgressFn progress, OperationDoneFn done) {
    auto workers = resolve({name});
    if (!workers) return done({false, workers.error().text(), {}});
    if (count < 0 || count > 100000) return done({false, "instances must be between 0 and 100000", {}});
    Worker& worker = *workers->front();
    if (auto busy = busy_reason(worker); !busy.empty()) return done({false, busy, {}});
    if (std::any_of(worker.instances.begin(), worker.instances.end(), [](const auto& i) { return i->retiring; }))
        return done({false, "worker " + name + " still has instances stopping (scaled away or replaced); try again when they are gone", {}});
    if (worker.pending_config)
        return done({false, "worker " + name + " is being restarted with a new configuration; try again when it is done", {}});
    int from = static_cast<int>(worker.instances.size());
    if (from == count) {
        OperationResult result;
        return done(result);
    }
    scale_now(worker, count, std::move(progress), [done](std::vector<InstanceReport> reports) {
        done(result_of(std::move(reports), "scale"));
    });
}

Result<Supervisor::SignalSent> Supervisor::signal_worker(const std::string& name,
                                                        const std::optional<std::string>& signal) {
    auto workers = resolve({name});
    if (!workers) return std::unexpected(workers.error());
    Worker& worker = *workers->front();
    int sig = worker.config.reload_signal;
    if (signal) {
        auto parsed = parse_signal(*signal);
        if (!parsed) return fail("unknown signal \"" + *signal + "\" (use a name like HUP or a number 1-64)");
        sig = *parsed;
    }
    SignalSent sent{sig, {}};
    for (auto& instance : worker.instances) {
        if (!instance->has_process()) continue;
        sent.pids.push_back(instance->pid);
        signal_instance(*instance, sig);
    }
    about_worker(name).info("worker {}: sent SIG{} to {} instance(s)", name, signal_name(sig), sent.pids.size());
    return sent;
}

}  // namespace fdsup
