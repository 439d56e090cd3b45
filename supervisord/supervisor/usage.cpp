// What the instances use (table/usage_state.h), gathered when asked: by status, a
// metrics scrape or `fdsupctl top` (each through gather_usage), or, for workers with
// recycle_memory, by the recycle timer. And recycling: an instance over recycle_memory
// for recycle_after, or past its max_age, is replaced the graceful way (a rolling
// restart of the one instance), one instance of a worker at a time.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <unordered_map>

#include "cgroups/limit_files.h"
#include "config/values.h"
#include "supervisor/supervisor.h"
#include "table/log_about.h"

namespace fdsup {
using config::format_duration;

namespace {

// A sample this recent is used as it is: many clients asking at once cost one gathering,
// and a CPU% is never taken over a span too short to mean anything.
constexpr auto kFreshFor = std::chrono::milliseconds(200);
// A recycle whose replacement did not take over is tried again no sooner than this.
constexpr auto kRecycleRetry = std::chrono::minutes(1);

// How often memory is looked at for recycle_memory: a few times per recycle_after.
Clock::duration memory_sample_period(const config::RecyclePolicy& recycle) {
    return std::clamp<Clock::duration>(recycle.memory_after / 4, std::chrono::milliseconds(100),
                                       std::chrono::seconds(5));
}

struct GroupTotals {
    uint64_t ticks = 0;
    uint64_t rss_pages = 0;
    int processes = 0;
};

}  // namespace

void Supervisor::gather_usage(const std::function<bool(const Worker&)>& which) {
    auto now = Clock::now();
    std::vector<Instance*> due;
    bool scan = false;
    for (auto& worker : workers_) {
        if (which && !which(*worker)) continue;
        for (auto& instance : worker->instances) {
            if (!instance->has_process() || !instance->pidfd || instance->exit_pending) continue;
            if (instance->usage.sampled && now - instance->usage.last.at < kFreshFor) continue;
            due.push_back(instance.get());
            scan |= instance->cgroup.empty();
        }
    }
    if (due.empty()) return;
    auto cpu_began = thread_cpu_time();
    // Without a cgroup an instance is its process group (the launcher makes each main
    // process a session and group leader): one pass over /proc sums them all. The fds
    // are counted in the same go (read_proc shares the /proc work between two threads).
    std::vector<pid_t> main_pids;
    main_pids.reserve(due.size());
    for (const Instance* instance : due) main_pids.push_back(instance->pid);
    ProcSnapshot proc = read_proc(scan, main_pids);
    std::unordered_map<pid_t, GroupTotals> groups;
    groups.reserve(scan ? proc.stats.size() : 0);
    for (const ProcStat& stat : proc.stats) {
        GroupTotals& totals = groups[stat.process_group];
        totals.ticks += stat.cpu_ticks;
        totals.rss_pages += stat.rss_pages;
        totals.processes++;
    }
    for (size_t i = 0; i < due.size(); ++i) {
        Instance* instance = due[i];
        UsageSample sample;
        sample.at = now;
        if (!instance->cgroup.empty()) {
            auto pids = cgroups_.processes(*instance);
            if (pids) sample.processes = static_cast<int>(pids->size());
            if (auto usec = cgroups_.cpu_usage_usec(*instance)) sample.cpu_seconds = static_cast<double>(*usec) / 1e6;
            sample.memory_bytes = cgroups_.memory_current(*instance);
            if (!sample.memory_bytes && pids) {  // no memory controller: the RSS of what is in it
                uint64_t pages = 0;
                for (pid_t pid : *pids)
                    if (auto stat = read_proc_stat(pid)) pages += stat->rss_pages;
                sample.memory_bytes = bytes_of_pages(pages);
            }
            sample.oom_kills = cgroups_.oom_kills(*instance);
            sample.memory_pressure = cgroups_.pressure(*instance, "memory");
            sample.cpu_pressure = cgroups_.pressure(*instance, "cpu");
        } else if (auto group = groups.find(instance->pid); group != groups.end()) {
            // A counter: a child that left without being reaped by the group takes its
            // time with it, but what was counted stays counted.
            double seconds = seconds_of_ticks(group->second.ticks);
            const auto& before = instance->usage.last.cpu_seconds;
            sample.cpu_seconds = instance->usage.sampled && before ? std::max(seconds, *before) : seconds;
            sample.memory_bytes = bytes_of_pages(group->second.rss_pages);
            sample.processes = group->second.processes;
        }
        sample.open_fds = proc.open_fds[i];
        InstanceUsage& usage = instance->usage;
        if (sample.cpu_seconds) {
            // Over the span since the last sample; the first one of a process, over its life.
            bool have_last = usage.sampled && usage.last.cpu_seconds;
            double span = std::chrono::duration<double>(now - (have_last ? usage.last.at : instance->started_at)).count();
            double used = *sample.cpu_seconds - (have_last ? *usage.last.cpu_seconds : 0.0);
            sample.cpu_percent = span > 0 ? std::max(0.0, used / span * 100.0) : 0.0;
        }
        usage.last = std::move(sample);
        usage.sampled = true;
    }
    usage_cost_.gatherings++;
    usage_cost_.instances += due.size();
    usage_cost_.last_cpu = thread_cpu_time() - cpu_began + proc.helper_cpu;
    usage_cost_.last_instances = due.size();
    usage_cost_.cpu += usage_cost_.last_cpu;
}

void Supervisor::set_recycle_deadline(Instance& instance) {
    const auto& recycle = instance.worker->config.recycle;
    if (!recycle.max_age) {
        instance.usage.recycle_at.reset();
        return;
    }
    // Each instance's own share of the jitter, so that instances started together are
    // not all recycled together.
    std::uniform_real_distribution<double> share(0.0, 1.0);
    auto jitter = std::chrono::duration_cast<Clock::duration>(recycle.max_age_jitter * share(random_));
    instance.usage.recycle_at = Clock::now() + *recycle.max_age + jitter;
}

bool Supervisor::may_recycle(const Worker& worker) const {
    return worker.config.recycle.any() && !worker.rollout && !worker.pending_config && !worker.removing &&
           !worker.stopped_by_operator && !shutting_down_;
}

bool Supervisor::may_be_recycled(const Instance& instance) const {
    return instance.has_process() && instance.ready && instance.state == InstanceState::running &&
           !instance.retiring && !instance.replacement && !instance.exit_pending;
}

void Supervisor::rearm_recycling() {
    // Armed only for what on_recycle_timer may act on: a worker busy with a rollout (or a
    // pending config) is looked at again when that ends (add_rollout_waiter), so an
    // instance past its max_age never makes the timer fire in a loop meanwhile.
    auto now = Clock::now();
    std::optional<Clock::time_point> next;
    std::optional<Clock::duration> period;  // the shortest of the workers sampling memory
    auto sooner = [&](Clock::time_point t) { next = next ? std::min(*next, t) : t; };
    for (const auto& worker : workers_) {
        if (!may_recycle(*worker)) continue;
        const auto& recycle = worker->config.recycle;
        for (const auto& instance : worker->instances) {
            if (!may_be_recycled(*instance)) continue;
            if (recycle.memory)
                period = period ? std::min(*period, memory_sample_period(recycle)) : memory_sample_period(recycle);
            if (instance->usage.recycle_at) sooner(std::max(*instance->usage.recycle_at, instance->usage.retry_after));
        }
    }
    if (period) {
        if (next_memory_sample_ <= now) next_memory_sample_ = now + *period;
        sooner(next_memory_sample_);
    }
    if (!next) {
        recycle_timer_.stop();
        return;
    }
    // Never sooner than 10 ms from now: whatever is due is done in one turn.
    recycle_timer_.start(std::max(until(*next), std::chrono::milliseconds(10)), [this] { on_recycle_timer(); });
}

void Supervisor::on_recycle_timer() {
    auto now = Clock::now();
    bool sampled = next_memory_sample_ <= now;
    if (sampled) {
        gather_usage([](const Worker& w) { return w.config.recycle.memory.has_value(); });
        next_memory_sample_ = now;  // rearm_recycling sets the next one
    }
    struct Pick {
        uint64_t id;
        std::string why;
        bool by_memory;
    };
    std::vector<Pick> picks;  // acted on after the loop: a recycle changes the table
    for (auto& worker : workers_) {
        const auto& recycle = worker->config.recycle;
        if (!recycle.any()) continue;
        std::optional<Pick> pick;
        for (auto& instance : worker->instances) {
            if (!may_be_recycled(*instance)) continue;
            InstanceUsage& usage = instance->usage;
            if (recycle.memory && sampled) {
                const auto& memory = usage.last.memory_bytes;
                if (memory && *memory > *recycle.memory) {
                    if (!usage.memory_over_since) usage.memory_over_since = now;
                } else {
                    usage.memory_over_since.reset();
                }
            }
            if (pick || usage.retry_after > now || !may_recycle(*worker)) continue;
            if (recycle.memory && usage.memory_over_since && now - *usage.memory_over_since >= recycle.memory_after)
                pick = Pick{instance->id,
                            "used " + format_size(usage.last.memory_bytes.value_or(0)) + ", over recycle_memory " +
                                config::size_text(*recycle.memory) + " for " + format_duration(now - *usage.memory_over_since),
                            true};
            else if (usage.recycle_at && *usage.recycle_at <= now)
                pick = Pick{instance->id,
                            "reached max_age " + format_duration(*recycle.max_age) + " (running " +
                                format_duration(now - instance->started_at) + ")",
                            false};
        }
        // One instance of a worker at a time, never while a rollout of it runs.
        if (pick) picks.push_back(std::move(*pick));
    }
    for (const auto& pick : picks)
        if (Instance* instance = find_instance(pick.id))
            if (may_recycle(*instance->worker) && may_be_recycled(*instance))
                recycle_instance(*instance, pick.why, pick.by_memory);
    rearm_recycling();
}

void Supervisor::recycle_instance(Instance& instance, const std::string& why, bool by_memory) {
    Worker& worker = *instance.worker;
    (by_memory ? worker.resource_counters.recycled_memory : worker.resource_counters.recycled_age)++;
    about(instance).warn("worker {}: pid {} {}; recycling it (replacement first, then stop_signal)", instance.label(),
                         instance.pid, why);
    emit(EventKind::recycle, instance, {{"limit", std::string(by_memory ? "recycle_memory" : "max_age")}, {"detail", why}});
    std::vector<RollingRestart::Slot> slots{{instance.index, instance.id, instance.pid, 0, -1, false, {}}};
    auto rollout = std::make_shared<RollingRestart>(worker.config.name, worker.generation, std::move(slots),
                                                    worker.config.max_surge);
    rollout->reason = instance.label() + " is recycled: pid " + std::to_string(instance.pid) + " " + why;
    rollout->recycle = true;
    rollout->then = recycle_done(*rollout);
    worker.rollout = rollout;
    emit_rollout_began(*rollout);
    add_rollout_waiter(std::move(rollout));
    state_changed();
}

std::function<void(std::vector<InstanceReport>)> Supervisor::recycle_done(const RollingRestart& rollout) {
    // Called by the rollout itself, from inside its advance(): it is alive then.
    return [this, &done = rollout](const std::vector<InstanceReport>& reports) {
        const auto& slot = done.slots.at(0);
        if (!reports.empty() && reports[0].ok) {
            // "pid 4711 used 530M, over ...": what the reason says after "is recycled: ".
            if (Instance* fresh = find_instance(slot.new_id))
                fresh->usage.recycled = done.reason.substr(done.reason.find(": ") + 2);
            return;
        }
        // The old process keeps serving (recycling is not a failure); tried again later.
        if (Instance* old = find_instance(slot.old_id)) {
            old->usage.retry_after = Clock::now() + kRecycleRetry;
            about(*old).warn("worker {}: not recycled, its replacement did not take over{}; tried again in {}",
                             old->label(), reports.empty() ? "" : ": " + reports[0].message,
                             format_duration(kRecycleRetry));
        }
        rearm_recycling();
    };
}

}  // namespace fdsup
