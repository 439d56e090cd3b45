#include "supervisor/supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "config/values.h"
#include "sockets/bind.h"
#include "sys/output_file.h"
#include "table/log_about.h"

namespace fdsup {
using config::format_duration;

namespace {

UniqueFd open_dev_null() {
    UniqueFd fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!fd) {
        std::perror("fdsupd: open /dev/null");
        std::abort();
    }
    return fd;
}

}  // namespace

Supervisor::Supervisor(uv_loop_t* loop, config::Config config, std::vector<OwnedSocket> sockets,
                       SpawnContext context, bool for_restore)
    : loop_(loop), config_(std::move(config)), sockets_(std::move(sockets)), context_(std::move(context)),
      null_fd_(open_dev_null()), outputs_(loop, null_fd_.get()), fd_stores_(loop),
      cgroups_(loop, [this](uint64_t id) { on_cgroup_event(id); }), shutdown_timer_(loop) {
    outputs_.retune_logs(config_);
    for (const auto& worker_config : config_.workers) add_worker(worker_config, !for_restore);
}

Supervisor::~Supervisor() = default;

Worker& Supervisor::add_worker(const config::WorkerConfig& worker_config, bool with_instances) {
    auto worker = std::make_unique<Worker>();
    worker->config = worker_config;
    Worker& added = *worker;
    workers_.push_back(std::move(worker));
    if (with_instances) {
        for (int i = 0; i < worker_config.instances; ++i) add_instance(added, i);
        // Not started with fdsupd: watched from the start (a restore brings its own).
        if (worker_config.start == config::StartMode::on_demand) watch_for_demand(added);
    }
    return added;
}

Instance& Supervisor::add_instance(Worker& worker, int index) {
    uint64_t id = next_instance_id_++;
    worker.instances.push_back(std::make_unique<Instance>(loop_, &worker, index, id));
    instances_by_id_[id] = worker.instances.back().get();
    return *worker.instances.back();
}

Instance& Supervisor::add_replacement(Worker& worker, const Instance& old) {
    uint64_t id = next_instance_id_++;
    auto position = std::find_if(worker.instances.begin(), worker.instances.end(),
                                 [&](const auto& i) { return i.get() == &old; });
    auto inserted = worker.instances.insert(position + 1, std::make_unique<Instance>(loop_, &worker, old.index, id));
    Instance& fresh = **inserted;
    fresh.replacement = true;
    fresh.health.replaced = old.health.replaced;  // the slot's, as its restart count is
    fresh.health.replaced_at = old.health.replaced_at;
    instances_by_id_[id] = &fresh;
    return fresh;
}

Worker* Supervisor::find_worker(const std::string& name) const {
    for (const auto& worker : workers_)
        if (worker->config.name == name && !worker->removing) return worker.get();
    return nullptr;
}

Instance* Supervisor::find_instance(uint64_t id) const {
    auto it = instances_by_id_.find(id);
    return it == instances_by_id_.end() ? nullptr : it->second;
}

void Supervisor::apply_pending_config(Worker& worker) {
    if (!worker.pending_config || worker.any_process()) return;
    about(worker).info("worker {}: new configuration in effect", worker.config.name);
    for (const auto& instance : worker.instances) instances_by_id_.erase(instance->id);
    worker.instances.clear();
    worker.config = std::move(*worker.pending_config);
    worker.pending_config.reset();
    worker.config_source.clear();
    for (int i = 0; i < worker.config.instances; ++i) add_instance(worker, i);
}

// Deep enough for shells, wrappers and worker pools; bounded so a hostile process tree
// cannot make one datagram (or fd request) expensive.
constexpr int kMaxAncestorDepth = 32;

Supervisor::ProcessOwner Supervisor::owner_of(pid_t pid) const {
    if (auto it = instances_by_pid_.find(pid); it != instances_by_pid_.end()) return {it->second, true};
    pid_t self = context_.supervisor_pid;
    pid_t current = pid;
    for (int depth = 0; depth < kMaxAncestorDepth; ++depth) {
        auto parent = parent_pid_of(current);
        if (!parent || *parent <= 1 || *parent == self) break;
        if (auto it = instances_by_pid_.find(*parent); it != instances_by_pid_.end()) return {it->second, false};
        current = *parent;
    }
    return {};
}

// ---- starting ---------------------------------------------------------------------

void Supervisor::start_all() {
    for (auto& worker : workers_) start_worker(*worker);
}

bool Supervisor::dependencies_ready(const Worker& worker) const {
    // An idle on-demand worker is as good as ready: its sockets accept, and a connection
    // waits in the backlog until the worker it starts is ready.
    for (const auto& name : worker.config.after)
        if (const Worker* other = find_worker(name); other && !other->demand.watched && !other->all_ready())
            return false;
    return true;
}

void Supervisor::start_worker(Worker& worker) {
    if (shutting_down_ || worker.stopped_by_operator || worker.removing) return;
    if (worker.demand.watched) {  // idle on demand: a connection starts it (instances added by scale too)
        watch_for_demand(worker);
        return;
    }
    if (!dependencies_ready(worker)) {
        if (!worker.waiting_for_dependencies) {
            std::string names;
            for (const auto& n : worker.config.after) names += (names.empty() ? "" : ", ") + n;
            about(worker).info("worker {}: waiting for {} to be ready", worker.config.name, names);
        }
        worker.waiting_for_dependencies = true;
        return;
    }
    worker.waiting_for_dependencies = false;
    for (auto& instance : worker.instances)
        if (!instance->has_process() && !instance->retiring && instance->state != InstanceState::backoff &&
            instance->state != InstanceState::failed && instance->state != InstanceState::idle)
            spawn(*instance);
    if (worker.config.start == config::StartMode::on_demand && worker.config.idle_stop) {
        // Started (by a connection, an operator, a dependency now ready): the idle clock
        // runs from now.
        if (!worker.demand.idle_timer || !worker.demand.idle_timer->active()) worker.demand.last_active = Clock::now();
        arm_idle_check(worker);
    }
}

void Supervisor::start_waiting_dependents() {
    for (auto& worker : workers_)
        if (worker->waiting_for_dependencies) start_worker(*worker);
}

// ---- waiters ------------------------------------------------------------------------

void Supervisor::add_waiter(std::function<bool()> waiter, bool rollout) {
    waiters_.push_back({std::move(waiter), rollout});
    state_changed();  // it may be finished already
}

size_t Supervisor::command_waiters() const {
    return static_cast<size_t>(std::count_if(waiters_.begin(), waiters_.end(), [](const Waiter& w) { return !w.rollout; }));
}

// ---- events ----

void Supervisor::emit(EventKind kind, const Instance& instance, EventFields fields) {
    Event event;
    event.kind = kind;
    event.worker = instance.worker->config.name;
    event.instance = instance.index;
    event.pid = instance.has_process() ? instance.pid : -1;
    event.fields = std::move(fields);
    events_.add(std::move(event));
}

void Supervisor::emit(EventKind kind, const std::string& worker, EventFields fields) {
    Event event;
    event.kind = kind;
    event.worker = worker;
    event.fields = std::move(fields);
    events_.add(std::move(event));
}

void Supervisor::emit_rollout_began(const RollingRestart& rollout) {
    const char* why = rollout.recycle    ? "recycle"
                      : rollout.rollback ? "rollback"
                      : rollout.reason.empty() ? (rollout.plan.canary() > 0 ? "canary" : "restart")
                                               : "liveness";
    EventFields fields{{"total", static_cast<int64_t>(rollout.slots.size())}, {"reason", std::string(why)}};
    if (!rollout.reason.empty()) fields.emplace_back("detail", rollout.reason);
    emit(EventKind::rollout_began, rollout.worker, std::move(fields));
}

void Supervisor::state_changed() {
    // A waiter's callback may change state again (restart's start phase) or add
    // waiters: run to a fixed point, never recursively.
    if (checking_waiters_) {
        check_again_ = true;
        return;
    }
    checking_waiters_ = true;
    do {
        check_again_ = false;
        sweep();
        settle_on_demand();
        // Readiness can change in many ways (READY=1, a replacement taking over, a
        // not-ready instance scaled away): whatever the way, dependents start now.
        start_waiting_dependents();
        auto current = std::move(waiters_);
        waiters_.clear();
        std::vector<Waiter> unfinished;
        for (auto& waiter : current)
            if (!waiter.check()) unfinished.push_back(std::move(waiter));
        if (!waiters_.empty()) check_again_ = true;  // added meanwhile: not checked yet
        for (auto& waiter : waiters_) unfinished.push_back(std::move(waiter));
        waiters_ = std::move(unfinished);
    } while (check_again_);
    checking_waiters_ = false;
    if (manager_.notify && !manager_status_timer_.active())
        manager_status_timer_.start(std::chrono::milliseconds(250), [this] {
            std::string summary = status_summary();
            if (summary == manager_status_sent_) return;
            manager_status_sent_ = summary;
            manager_.notify("STATUS=" + summary);
        });
}

std::string Supervisor::status_summary() const {
    size_t workers = 0, instances = 0;
    std::map<InstanceState, size_t> by_state;
    for (const auto& worker : workers_) {
        if (worker->removing) continue;
        ++workers;
        for (const auto& instance : worker->instances) {
            if (instance->retiring || instance->replacement) continue;
            ++instances;
            ++by_state[instance->state];
        }
    }
    std::string text = std::to_string(workers) + (workers == 1 ? " worker, " : " workers, ") +
                       std::to_string(by_state[InstanceState::running]) + " of " + std::to_string(instances) +
                       (instances == 1 ? " instance" : " instances") + " running";
    for (auto state : {InstanceState::starting, InstanceState::stopping, InstanceState::backoff, InstanceState::failed,
                       InstanceState::exited, InstanceState::stopped, InstanceState::idle})
        if (by_state[state] > 0) text += ", " + std::to_string(by_state[state]) + " " + (state == InstanceState::backoff ? "in backoff" : state_name(state));
    return text;
}

void Supervisor::sweep() {
    for (auto& worker : workers_) {
        fd_stores_.release_ended(*worker);
        std::erase_if(worker->instances, [this](const std::unique_ptr<Instance>& instance) {
            if (!instance->retiring || instance->has_process()) return false;
            health_.stop(*instance);
            instances_by_id_.erase(instance->id);
            return true;
        });
    }
    for (auto it = workers_.begin(); it != workers_.end();) {
        Worker& worker = **it;
        if (!worker.removing || worker.any_process()) {
            ++it;
            continue;
        }
        about(worker).info("worker {}: removed", worker.config.name);
        for (const auto& instance : worker.instances) {
            health_.stop(*instance);
            instances_by_id_.erase(instance->id);
        }
        if (find_worker(worker.config.name) == nullptr) outputs_.book().forget(worker.config.name);
        fd_stores_.forget(worker);
        it = workers_.erase(it);
    }
    sockets_.close_unheld([this](uint64_t serial) {
        for (const auto& worker : workers_)
            for (const auto& instance : worker->instances)
                if (instance->has_process() && std::find(instance->sockets_used.begin(), instance->sockets_used.end(),
                                                         serial) != instance->sockets_used.end())
                    return true;
        return false;
    });
}

// ---- upgrade -----------------------------------------------------------------------

std::string Supervisor::upgrade_refusal() const {
    if (shutting_down_) return "fdsupd is shutting down";
    if (reloading_) return "a reload is in progress; try again when it is done";
    for (const auto& worker : workers_) {
        if (worker->removing) return "worker " + worker->config.name + " is being removed; try again when it is gone";
        if (worker->pending_config)
            return "worker " + worker->config.name + " is being restarted with a new configuration; try again when it is done";
    }
    // Commands waiting on processes (a stop-start restart between its halves, a scale)
    // would lose their second half: only rollouts, which are carried over, may wait.
    if (size_t waiting = command_waiters(); waiting > 0)
        return "a command is in progress (" + std::to_string(waiting) + " waiting); try again when it is done";
    return "";
}

}  // namespace fdsup
