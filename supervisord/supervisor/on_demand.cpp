// start = "on-demand" and idle_stop.
//
// An on-demand worker is not started with fdsupd. While it is idle (no process meant to
// run: `DemandState::watched`, its instances in state `idle`), fdsupd watches a dup of
// each listening socket the worker inherits for readability: a connection in the accept
// queue, or a datagram. The first readiness stops the watch at once (a listening socket
// stays readable until the worker accepts, so a level-triggered watch would spin) and
// starts the worker as an operator's start would; the waiting connection is then
// accepted by the worker. Nothing wakes fdsupd while an idle worker gets no connection.
//
// Idle again, either way:
//   - idle_stop: while the worker runs, a timer samples the connections of its sockets
//     (sockets/connection_count.h) every idle_stop/10, from 100 ms up to 10 s. The idle
//     clock starts again whenever a connection is open, queued or half-closed, or a tcp
//     connection was closed since; an instance not ready yet also counts as activity.
//     Idle for idle_stop: every instance is stopped gracefully (stop_signal,
//     stop_timeout), and once none runs, the worker is watched again. A connection that
//     opens and closes between two samples (closed by the client, or on a unix socket)
//     is not seen: the worker may be stopped while such short connections keep coming,
//     and the next one starts it again (it waits in the backlog meanwhile; none is
//     refused). A sample that fails counts as activity: never stopped on a guess.
//   - the app itself: an instance that exits with status 0 is idle, not a crash: no
//     restart, no restart counted. Once no instance runs, the worker is watched again.
//
// The operator: `start` starts it now (idle_stop then applies as if a connection had);
// `stop` stops it and it stays stopped, not watched, until `start`; `restart` of an idle
// worker starts it. A worker whose `after` names an idle on-demand worker does not wait
// for it: its socket accepts (the connection waits in the backlog until it is ready).
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <fcntl.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "config/values.h"
#include "sockets/connection_count.h"
#include "supervisor/supervisor.h"
#include "table/log_about.h"

namespace fdsup {
using config::format_duration;

namespace {

bool on_demand(const Worker& worker) { return worker.config.start == config::StartMode::on_demand; }

// The names of the sockets the worker inherits, once each.
std::set<std::string> inherited_sockets(const Worker& worker) {
    std::set<std::string> names;
    for (const auto& [fd, name] : worker.config.fds) names.insert(name);
    return names;
}

// idle_stop's sampling period: a tenth of it (stopped at most 10% late), at least
// 100 ms (a sample dumps a socket table), at most 10 s (short connections between
// samples go unseen).
config::Duration idle_sample_period(config::Duration idle_stop) {
    return std::clamp<config::Duration>(idle_stop / 10, std::chrono::milliseconds(100), std::chrono::seconds(10));
}

}  // namespace

void Supervisor::watch_for_demand(Worker& worker) {
    worker.demand.watched = true;
    worker.demand.going_idle = false;
    if (worker.demand.idle_timer) worker.demand.idle_timer->stop();
    for (auto& instance : worker.instances)
        if (!instance->has_process() && !instance->retiring && instance->state != InstanceState::failed &&
            instance->state != InstanceState::exited)
            instance->state = InstanceState::idle;
    if (!worker.demand.watches.empty()) return;
    for (const auto& name : inherited_sockets(worker)) {
        int fd = sockets_.fd_of(name);
        if (fd < 0) continue;
        UniqueFd dup(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
        if (!dup) {
            about(worker).error("worker {}: cannot watch socket {}: {}; starting it now", worker.config.name, name,
                                std::strerror(errno));
            return wake_on_demand(worker, name);
        }
        // uv_poll_init sets O_NONBLOCK, and the dup shares the open file description
        // with the listening socket every worker inherits (and, adopted, with the server
        // it came from): its mode is put back, as fdsupd never changes it (bind.h).
        int flags = ::fcntl(dup.get(), F_GETFL);
        auto watch = std::make_unique<FdWatch>(loop_, dup.get());
        if (flags >= 0) ::fcntl(dup.get(), F_SETFL, flags);
        int started = watch->start(UV_READABLE, [this, &worker, name](int, int) { wake_on_demand(worker, name); });
        if (started != 0) {
            about(worker).error("worker {}: cannot watch socket {}: {}; starting it now", worker.config.name, name,
                                uv_strerror(started));
            return wake_on_demand(worker, name);
        }
        worker.demand.watches.push_back({std::move(dup), std::move(watch)});
    }
    about(worker).info("worker {}: idle (on demand): waiting for a connection", worker.config.name);
}

void Supervisor::stop_watching(Worker& worker) {
    worker.demand.watches.clear();  // each watch goes before its fd
    worker.demand.watched = false;
}

void Supervisor::wake_on_demand(Worker& worker, const std::string& socket) {
    // Posted (the loop may report several sockets of one worker in one turn): only the
    // first does anything.
    if (!worker.demand.watched) return;
    stop_watching(worker);
    if (shutting_down_ || worker.removing || worker.stopped_by_operator) return;
    ++worker.demand.starts;
    about(worker).info("worker {}: a connection is waiting on socket {}; starting (on demand)", worker.config.name,
                       socket);
    emit(EventKind::on_demand_start, worker.config.name,
         {{"socket", socket}, {"starts", static_cast<int64_t>(worker.demand.starts)}});
    ++worker.generation;
    apply_pending_config(worker);
    start_now(worker, false);
    state_changed();
}

void Supervisor::settle_on_demand() {
    if (shutting_down_) return;
    for (auto& w : workers_) {
        Worker& worker = *w;
        if (!on_demand(worker) || worker.demand.watched || worker.removing || worker.stopped_by_operator ||
            worker.rollout || worker.pending_config || worker.any_process())
            continue;
        // Not while an instance waits to restart, or while the worker waits for its
        // dependencies (it is started then).
        bool restarting = std::any_of(worker.instances.begin(), worker.instances.end(), [](const auto& i) {
            return i->state == InstanceState::backoff || i->state == InstanceState::starting;
        });
        bool idle_instance = std::any_of(worker.instances.begin(), worker.instances.end(),
                                         [](const auto& i) { return i->state == InstanceState::idle; });
        if (restarting || worker.waiting_for_dependencies || !(worker.demand.going_idle || idle_instance)) continue;
        watch_for_demand(worker);
    }
}

void Supervisor::arm_idle_check(Worker& worker) {
    if (!on_demand(worker) || !worker.config.idle_stop || worker.demand.watched) return;
    if (!worker.demand.idle_timer) worker.demand.idle_timer = std::make_unique<Timer>(loop_);
    if (worker.demand.idle_timer->active()) return;
    if (worker.demand.last_active == Clock::time_point{}) worker.demand.last_active = Clock::now();
    worker.demand.idle_timer->start(idle_sample_period(*worker.config.idle_stop),
                                    [this, &worker] { on_idle_check(worker); });
}

void Supervisor::on_idle_check(Worker& worker) {
    if (!on_demand(worker) || !worker.config.idle_stop || worker.demand.watched || worker.demand.going_idle ||
        worker.removing || worker.stopped_by_operator || shutting_down_)
        return;  // not armed again: idle_stop has nothing to do now
    bool live = std::any_of(worker.instances.begin(), worker.instances.end(), [](const auto& i) {
        return i->has_process() || i->state == InstanceState::backoff;
    });
    if (!live) return;  // exited or failed: armed again when it starts
    auto now = Clock::now();
    // Not yet in service, or being replaced: busy, whatever the sockets say.
    bool busy = worker.rollout || worker.pending_config ||
                std::any_of(worker.instances.begin(), worker.instances.end(), [](const auto& i) {
                    return i->state == InstanceState::starting || i->state == InstanceState::backoff;
                });
    if (busy) worker.demand.last_active = now;
    for (const auto& name : inherited_sockets(worker)) {
        if (busy) break;
        int fd = sockets_.fd_of(name);
        if (fd < 0) continue;
        auto sample = sample_connections(fd);
        if (!sample) {
            about(worker).warn("worker {}: cannot count the connections of socket {}: {}; not stopped as idle",
                               worker.config.name, name, sample.error().text());
            worker.demand.last_active = now;
            break;
        }
        if (sample->open > 0) {
            worker.demand.last_active = now;
            break;
        }
        if (sample->last_closed_ago && now - *sample->last_closed_ago > worker.demand.last_active)
            worker.demand.last_active = now - *sample->last_closed_ago;
    }
    auto idle_for = std::chrono::duration_cast<config::Duration>(now - worker.demand.last_active);
    if (idle_for < *worker.config.idle_stop) {
        arm_idle_check(worker);
        return;
    }
    about(worker).info("worker {}: no connection for {} (idle_stop {}); stopping it until the next one",
                       worker.config.name, format_duration(idle_for), format_duration(*worker.config.idle_stop));
    worker.demand.going_idle = true;
    emit(EventKind::idle_stop, worker.config.name,
         {{"idle", std::chrono::duration<double>(idle_for).count()}});
    ++worker.generation;
    for (auto& instance : worker.instances)
        if (!instance->retiring) stop_instance(*instance);
    state_changed();
}

void Supervisor::on_demand_retuned(Worker& worker, const config::WorkerConfig& next) {
    bool was = on_demand(worker);
    worker.config.start = next.start;
    worker.config.idle_stop = next.idle_stop;
    worker.demand.last_active = Clock::now();  // the new idle_stop counts from now
    if (worker.demand.idle_timer) worker.demand.idle_timer->stop();
    if (was && !on_demand(worker)) {
        bool going_idle = std::exchange(worker.demand.going_idle, false);
        bool idle_instance = std::any_of(worker.instances.begin(), worker.instances.end(),
                                         [](const auto& i) { return i->state == InstanceState::idle; });
        if (worker.stopped_by_operator) return;
        if (worker.demand.watched || idle_instance) {
            about(worker).info("worker {}: start = \"with-supervisor\" now; starting it", worker.config.name);
            start_now(worker);
        }
        if (going_idle) {
            // Its instances are stopping for idle_stop: started again once they are gone.
            std::string name = worker.config.name;
            uint64_t generation = worker.generation;
            add_waiter([this, name, generation] {
                Worker* w = find_worker(name);
                if (w == nullptr || w->generation != generation || w->stopped_by_operator) return true;
                if (w->any_process()) return false;
                about_worker(name).info("worker {}: start = \"with-supervisor\" now; starting it", name);
                start_now(*w);
                return true;
            });
        }
        return;
    }
    if (!worker.any_process() && !worker.stopped_by_operator && !was) {
        watch_for_demand(worker);
        return;
    }
    arm_idle_check(worker);
}

}  // namespace fdsup
