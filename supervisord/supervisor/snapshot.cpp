// The supervisor's state for an in-place upgrade (SPEC "upgrade"): written by the old
// image just before execve, read back by the new one. The document is JSON (its version
// is kStateVersion, checked by the caller); every fd it names is kept open across the
// exec, and the new image adopts it: listening sockets, pidfds, output pipes, stored fds.
// It travels as JSON text in a memfd (upgrade/state_file.h).
//
// Times are CLOCK_MONOTONIC nanoseconds (steady_clock), which go on across execve, so a
// deadline stays a deadline: a backoff due in 300 ms is still due then.
//
// What is not carried: control and fd-socket connections (their clients see the
// connection close), the output ring of `fdsupctl logs`, commands waiting for a result.
// That is why an upgrade is refused while a command other than a rolling restart is in
// flight (upgrade_refusal): the rollout itself is carried and goes on.
#include <fcntl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>
#include <unordered_set>

#include "sockets/listen_address.h"
#include "json/json_writer.h"
#include "rollout/rolling_restart.h"
#include "state/state_format.h"
#include "supervisor/supervisor.h"

namespace fdsup {
namespace {

using Json = StateDocument;

int64_t ns(Clock::time_point t) { return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count(); }
Clock::time_point time_at(const Json& j) {
    return Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(j.get<int64_t>())));
}

const char* kill_reason_name(KillReason reason) {
    switch (reason) {
        case KillReason::none: return "none";
        case KillReason::ready_timeout: return "ready_timeout";
        case KillReason::watchdog: return "watchdog";
    }
    return "none";
}

KillReason kill_reason_of(const std::string& name) {
    if (name == "ready_timeout") return KillReason::ready_timeout;
    if (name == "watchdog") return KillReason::watchdog;
    return KillReason::none;
}


InstanceState state_of(const std::string& name) {
    for (auto state : kAllInstanceStates)
        if (name == state_name(state)) return state;
    throw std::runtime_error("unknown instance state \"" + name + "\"");
}

// A positional record (state_format.h), written field by field in its order: a field
// out of order is a bug that would restore garbage, so it stops the snapshot instead.
class Record {
public:
    explicit Record(JsonWriter& w) : w_(w) { w_.begin_array(); }
    ~Record() { w_.end_array(); }
    JsonWriter& field(int which) {
        if (which != next_++) throw std::logic_error("upgrade state: record field " + std::to_string(which) + " out of order");
        return w_;
    }

private:
    JsonWriter& w_;
    int next_ = 0;
};

// null, or [signaled, code, signal]
void write_exit(JsonWriter& w, const std::optional<ExitStatus>& exit) {
    if (exit) w.begin_array().value(exit->signaled).value(exit->code).value(exit->signal).end_array();
    else w.null();
}

std::optional<ExitStatus> read_exit(const Json& e) {
    if (e.is_null()) return std::nullopt;
    return ExitStatus{e.at(0).get<bool>(), e.at(1).get<int>(), e.at(2).get<int>()};
}

// Restoring reads with .at()/.get<>(), which throw on a missing field or a wrong type:
// restore() turns that into an error (and the caller into a rollback).
void write_instance(JsonWriter& w, const Instance& in, std::vector<int>& keep) {
    using namespace state_format;
    if (in.pidfd) keep.push_back(in.pidfd.get());
    Record r(w);
    r.field(kId).value(in.id);
    r.field(kIndex).value(in.index);
    r.field(kRetiring).value(in.retiring);
    r.field(kReplacement).value(in.replacement);
    r.field(kState).value(state_name(in.state));
    r.field(kReady).value(in.ready);
    r.field(kPid).value(static_cast<int64_t>(in.pid));
    r.field(kPidfd).value(in.pidfd ? in.pidfd.get() : -1);
    r.field(kStartedAt).value(ns(in.started_at));
    r.field(kStopEscalated).value(in.stop_escalated);
    r.field(kSocketsUsed).begin_array();
    for (uint64_t serial : in.sockets_used) w.value(serial);
    w.end_array();
    r.field(kTimerActive).value(in.timer.active());
    r.field(kTimerDeadline).value(ns(in.timer_deadline));
    r.field(kKillReason).value(kill_reason_name(in.kill_reason));
    r.field(kStatusText).value(in.status_text);
    r.field(kReloading).value(in.reloading);
    r.field(kStoppingNotified).value(in.stopping_notified);
    r.field(kWatchdogTimeoutMs).value(static_cast<int64_t>(in.watchdog_timeout.count()));
    r.field(kWatchdogActive).value(in.watchdog_timer.active());
    r.field(kWatchdogDeadline).value(ns(in.watchdog_deadline));
    r.field(kLastWatchdogPing).value(ns(in.last_watchdog_ping));
    r.field(kRestarts).value(in.restarts);
    write_exit(r.field(kLastExit), in.last_exit);
    r.field(kLastError).value(in.last_error);
    r.field(kBackoffMs).value(static_cast<int64_t>(in.backoff.last().count()));
    r.field(kRecentStarts).begin_array();
    for (auto t : in.start_limiter.starts()) w.value(ns(t));
    w.end_array();
    r.field(kCgroup).value(in.cgroup);
    if (in.cgroup_events) keep.push_back(in.cgroup_events.get());
    r.field(kCgroupEventsFd).value(in.cgroup_events ? in.cgroup_events.get() : -1);
    write_exit(r.field(kExitPending), in.exit_pending);
}

void write_rollout(JsonWriter& w, const RollingRestart& rollout) {
    w.begin_object().member("generation", rollout.generation).key("slots").begin_array();
    for (const auto& s : rollout.slots)
        w.begin_object()
            .member("index", s.index)
            .member("old_id", s.old_id)
            .member("old_pid", static_cast<int64_t>(s.old_pid))
            .member("new_id", s.new_id)
            .member("new_pid", static_cast<int64_t>(s.new_pid))
            .member("in_place", s.in_place)
            .member("failure", s.failure)
            .end_object();
    w.end_array().key("states").begin_array();
    for (auto state : rollout.plan.states()) w.value(static_cast<int>(state));
    w.end_array()
        .member("max_surge", rollout.plan.max_surge())
        .member("stopped", rollout.plan.stopped())
        .member("stop_reason", rollout.stop_reason)
        .end_object();
}

}  // namespace

// The fds a restore takes over. Each must be one the previous image kept open across the
// exec (the state's "keep" list), and each is taken once: a damaged state naming another
// number would otherwise adopt, and one day close, whatever this image opened under it
// (libuv's own fds among them). Checked without a syscall per fd: there are thousands.
// They are close-on-exec already (make_inherited_fds_cloexec did all at once).
class FdClaims {
public:
    explicit FdClaims(const Json& keep) {
        for (const auto& fd : keep) kept_.insert(fd.get<int>());
    }
    // `ask_kernel`: also checked to be open (F_GETFD), for the few fds not per instance.
    int claim(int fd, const std::string& what, bool ask_kernel = false) {
        const std::string named = what + ": fd " + std::to_string(fd);
        if (!kept_.contains(fd)) throw std::runtime_error(named + " was not kept across the exec");
        if (!claimed_.insert(fd).second) throw std::runtime_error(named + " is named twice in the state");
        if (ask_kernel && ::fcntl(fd, F_GETFD) < 0) throw std::runtime_error(named + " is not open");
        return fd;
    }

private:
    std::unordered_set<int> kept_;
    std::unordered_set<int> claimed_;
};

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

void Supervisor::snapshot(JsonWriter& w, std::vector<int>& keep) const {
    // The sets of pidfds and of output pipes go as they are: the next image adopts
    // every registration in them.
    int exit_watch_fd = exits_ ? exits_->fd() : -1;
    if (exit_watch_fd >= 0) keep.push_back(exit_watch_fd);
    int output_pipes_fd = outputs_.pipes() ? outputs_.pipes()->fd() : -1;
    if (output_pipes_fd >= 0) keep.push_back(output_pipes_fd);
    int cgroup_events_fd = cgroups_.events() ? cgroups_.events()->fd() : -1;
    if (cgroup_events_fd >= 0) keep.push_back(cgroup_events_fd);
    w.member("config_path", config_.path)
        .member("config_source", config_.source)
        .member("started_at", ns(started_at_))
        .member("upgrades", upgrades_)
        .member("notify_dropped", notify_dropped_)
        .member("next_instance_id", next_instance_id_)
        .member("next_socket_serial", sockets_.next_serial())
        .member("nofile_soft_at_start", static_cast<uint64_t>(context_.nofile_soft_at_start))
        .member("exit_watch_fd", exit_watch_fd)
        .member("output_pipes_fd", output_pipes_fd)
        .member("cgroup_events_fd", cgroup_events_fd)
        .member("next_cgroup_serial", cgroups_.next_serial())
        .member("next_capture_key", outputs_.next_key());

    w.key("sockets").begin_array();
    auto write_socket = [&](const OwnedSocket& s, bool retired) {
        keep.push_back(s.fd.get());
        w.begin_object()
            .member("name", s.config.name)
            .member("listen", s.config.listen)
            .member("bound", s.bound)
            .member("serial", s.serial)
            .member("fd", s.fd.get())
            .member("retired", retired)
            .member("held_by_manager", s.held_by_manager)
            .end_object();
    };
    for (const auto& s : sockets_.current()) write_socket(s, false);
    for (const auto& s : sockets_.retired()) write_socket(s, true);
    w.end_array();

    w.key("workers").begin_array();
    for (const auto& worker : workers_) {
        w.begin_object()
            .member("name", worker->config.name)
            .member("instances_wanted", worker->config.instances)
            .member("stopped_by_operator", worker->stopped_by_operator)
            .member("waiting_for_dependencies", worker->waiting_for_dependencies)
            .member("generation", worker->generation);
        w.key("instances").begin_array();
        for (const auto& instance : worker->instances) write_instance(w, *instance, keep);
        w.end_array();
        w.key("fd_stores").begin_array();
        for (const auto& [index, store] : worker->fd_stores) {
            w.begin_object().member("index", index).key("fds").begin_array();
            for (const auto& entry : store.entries()) {
                keep.push_back(entry.fd.get());
                w.begin_object()
                    .member("name", entry.name)
                    .member("fd", entry.fd.get())
                    .member("poll", entry.watched)
                    .end_object();
            }
            w.end_array().end_object();
        }
        w.end_array();
        w.key("rollout");
        if (worker->rollout) write_rollout(w, *worker->rollout);
        else w.null();
        w.end_object();
    }
    w.end_array();

    // Positional too (there are two per instance); the label is made again from the
    // worker and index, as add_capture made it.
    w.key("captures").begin_array();
    for (const auto& [key, entry] : outputs_.captures()) {
        using namespace state_format;
        keep.push_back(entry.capture->fd());
        Record r(w);
        r.field(kCaptureKey).value(key);
        r.field(kCaptureFd).value(entry.capture->fd());
        r.field(kCaptureWorker).value(entry.worker);
        r.field(kCaptureIndex).value(entry.index);
        r.field(kCaptureStderr).value(entry.from_stderr);
        r.field(kCapturePartial).value(entry.capture->partial());
    }
    w.end_array();
}

// nlohmann turns a fractional number into an integer type with a plain cast: undefined
// behaviour out of the type's range (fuzz_upgrade_state found "started_at": 1.6e137).
// A state holds integers only (JsonWriter writes no other numbers), so any other is
// damage, refused before anything is read.
void check_integers_only(const Json& j) {
    if (j.is_number_float()) throw std::runtime_error("a fractional number (" + j.dump() + ") in a state of integers");
    if (j.is_structured())
        for (const auto& item : j) check_integers_only(item);
}

Result<void> Supervisor::restore(const Json& state, bool rolled_back) {
    try {
        check_integers_only(state);
        restore_or_throw(state, rolled_back);
    } catch (const std::exception& e) {
        return fail(std::string("the state cannot be restored: ") + e.what());
    }
    return {};
}

void Supervisor::restore_or_throw(const Json& state, bool rolled_back) {
    FdClaims fds(state.at("keep"));
    // The loop's clock is as old as the loop: timers armed below must count from now.
    uv_update_time(loop_);
    started_at_ = time_at(state.at("started_at"));
    upgrades_ = state.at("upgrades").get<uint64_t>() + (rolled_back ? 0 : 1);
    notify_dropped_ = state.at("notify_dropped").get<uint64_t>();
    next_instance_id_ = state.at("next_instance_id").get<uint64_t>();

    // Sockets: the current ones take their settings from the config, retired ones
    // (replaced by a reload, still held by old processes) only need their address.
    std::vector<OwnedSocket> current_sockets, retired_sockets;
    // Every field is read before an fd is owned: a throw must not close an fd that a
    // rollback hands back to the previous image.
    for (const auto& s : state.at("sockets")) {
        OwnedSocket socket;
        const std::string name = s.at("name").get<std::string>();
        const config::SocketConfig* current = config_.find_socket(name);
        bool retired = s.at("retired").get<bool>();
        int fd = s.at("fd").get<int>();
        socket.bound = s.at("bound").get<std::string>();
        socket.serial = s.at("serial").get<uint64_t>();
        socket.held_by_manager = s.at("held_by_manager").get<bool>();
        if (!retired && current == nullptr) throw std::runtime_error("socket " + name + " is not in the configuration");
        if (current != nullptr && !retired) socket.config = *current;
        else {
            socket.config.name = name;
            socket.config.listen = s.at("listen").get<std::string>();
            auto address = parse_listen_address(socket.config.listen);
            if (!address) throw std::runtime_error("socket " + name + ": " + address.error().text());
            socket.config.address = *address;
        }
        socket.fd.reset(fds.claim(fd, "socket " + name, true));
        (retired ? retired_sockets : current_sockets).push_back(std::move(socket));
    }
    sockets_.restore(std::move(current_sockets), std::move(retired_sockets), state.at("next_socket_serial").get<uint64_t>());

    // Adopted before the instances whose pidfds it holds (an adopted fd is never closed
    // on failure: a rollback hands it back to the previous image).
    if (int fd = state.at("exit_watch_fd").get<int>(); fd >= 0) {
        auto adopted = EpollSet::adopt(loop_, fds.claim(fd, "the set of exits", true), "process exits",
                                       [this](uint64_t id, uint32_t) { on_exit_reported(id); });
        if (!adopted) throw std::runtime_error(adopted.error().text());
        exits_ = std::move(*adopted);
    }
    int cgroup_events = state.at("cgroup_events_fd").get<int>();
    if (auto adopted = cgroups_.adopt(cgroup_events >= 0 ? fds.claim(cgroup_events, "the set of cgroup events", true) : -1,
                                      state.at("next_cgroup_serial").get<uint64_t>());
        !adopted)
        throw std::runtime_error(adopted.error().text());
    instances_by_id_.clear();
    instances_by_pid_.clear();
    for (const auto& w : state.at("workers")) {
        const std::string name = w.at("name").get<std::string>();
        Worker* worker = find_worker(name);
        if (worker == nullptr) throw std::runtime_error("worker " + name + " is not in the configuration");
        worker->config.instances = w.at("instances_wanted").get<int>();
        worker->stopped_by_operator = w.at("stopped_by_operator").get<bool>();
        worker->waiting_for_dependencies = w.at("waiting_for_dependencies").get<bool>();
        worker->generation = w.at("generation").get<uint64_t>();
        worker->instances.clear();
        for (const auto& j : w.at("instances")) restore_instance(*worker, j, fds);
        for (const auto& store : w.at("fd_stores")) {
            int index = store.at("index").get<int>();
            FdStore& fd_store = worker->fd_stores.try_emplace(index, fd_stores_.hangups()).first->second;
            for (const auto& entry : store.at("fds")) {
                int fd = entry.at("fd").get<int>();
                std::string name = entry.at("name").get<std::string>();
                bool poll = entry.at("poll").get<bool>();
                std::vector<UniqueFd> one;
                one.emplace_back(fds.claim(fd, "stored fd " + name, true));
                // Stored before, so they fit (and are no duplicates): no limit applies.
                fd_store.add(name, std::move(one), poll, std::numeric_limits<size_t>::max());
            }
        }
        if (const Json& r = w.at("rollout"); !r.is_null()) restore_rollout(*worker, r);
    }
    // The instances' cgroups are below the same "fdsupd-PID" (the PID is the same). Also
    // opened for a cgroup worker with no process now, so that the directory is removed
    // at exit; needed (a failure is a rollback) only if an instance has a cgroup.
    bool any_cgroup = false, cgroup_mode = false;
    for (const auto& worker : workers_) {
        cgroup_mode = cgroup_mode || worker->config.kill_mode == config::KillMode::cgroup;
        for (const auto& instance : worker->instances) any_cgroup = any_cgroup || !instance->cgroup.empty();
    }
    if (any_cgroup || cgroup_mode)
        if (auto opened = cgroups_.reopen_tree(any_cgroup); !opened) throw std::runtime_error(opened.error().text());
    // The pipes are in the adopted set already, each under its capture's key.
    uint64_t next_capture_key = state.at("next_capture_key").get<uint64_t>();
    int pipes = state.at("output_pipes_fd").get<int>();
    if (auto adopted = outputs_.adopt(pipes >= 0 ? fds.claim(pipes, "the set of output pipes", true) : -1, next_capture_key);
        !adopted)
        throw std::runtime_error(adopted.error().text());
    // Every record is checked before any pipe is owned (a throw must not close one).
    struct Capture {
        uint64_t key;
        int fd;
        std::string worker;
        int index;
        bool from_stderr;
        std::string partial;
    };
    std::vector<Capture> captures;
    std::unordered_set<uint64_t> keys;
    for (const auto& c : state.at("captures")) {
        using namespace state_format;
        const auto& v = c.get_ref<const Json::array_t&>();  // throws if it is not an array
        if (v.size() != kCaptureFields) throw std::runtime_error("a capture of " + std::to_string(v.size()) + " fields");
        Capture capture{v[kCaptureKey].get<uint64_t>(), v[kCaptureFd].get<int>(), v[kCaptureWorker].get<std::string>(),
                        v[kCaptureIndex].get<int>(), v[kCaptureStderr].get<bool>(), v[kCapturePartial].get<std::string>()};
        // Keys name the registrations in the adopted set: each known, once, and below the
        // next key this image hands out.
        if (!outputs_.pipes() || capture.key == 0 || capture.key >= next_capture_key || !keys.insert(capture.key).second)
            throw std::runtime_error("a capture with a missing, repeated or unknown key (" + std::to_string(capture.key) + ")");
        fds.claim(capture.fd, "output pipe of " + instance_label(capture.worker, capture.index));
        captures.push_back(std::move(capture));
    }
    for (auto& c : captures)
        outputs_.adopt_capture(c.key, UniqueFd(c.fd), std::move(c.worker), c.index, c.from_stderr, std::move(c.partial));
}

void Supervisor::restore_instance(Worker& worker, const Json& j, FdClaims& fds) {
    using namespace state_format;
    const auto& v = j.get_ref<const Json::array_t&>();  // throws if it is not an array
    if (v.size() != kInstanceFields)
        throw std::runtime_error("an instance of " + std::to_string(v.size()) + " fields (" +
                                 std::to_string(kInstanceFields) + " expected)");
    auto id = v[kId].get<uint64_t>();
    worker.instances.push_back(std::make_unique<Instance>(loop_, &worker, v[kIndex].get<int>(), id));
    Instance& in = *worker.instances.back();
    instances_by_id_[id] = &in;
    in.retiring = v[kRetiring].get<bool>();
    in.replacement = v[kReplacement].get<bool>();
    in.state = state_of(v[kState].get<std::string>());
    in.ready = v[kReady].get<bool>();
    in.started_at = time_at(v[kStartedAt]);
    in.stop_escalated = v[kStopEscalated].get<bool>();
    in.sockets_used = v[kSocketsUsed].get<std::vector<uint64_t>>();
    in.timer_deadline = time_at(v[kTimerDeadline]);
    in.kill_reason = kill_reason_of(v[kKillReason].get<std::string>());
    in.status_text = v[kStatusText].get<std::string>();
    in.reloading = v[kReloading].get<bool>();
    in.stopping_notified = v[kStoppingNotified].get<bool>();
    in.watchdog_timeout = config::Duration(v[kWatchdogTimeoutMs].get<int64_t>());
    in.watchdog_deadline = time_at(v[kWatchdogDeadline]);
    in.last_watchdog_ping = time_at(v[kLastWatchdogPing]);
    in.restarts = v[kRestarts].get<int>();
    in.last_exit = read_exit(v[kLastExit]);
    in.last_error = v[kLastError].get<std::string>();
    in.backoff.restore(config::Duration(v[kBackoffMs].get<int64_t>()));
    std::vector<Clock::time_point> starts;
    for (const auto& t : v[kRecentStarts]) starts.push_back(time_at(t));
    in.start_limiter.restore(std::move(starts));

    // The process: adopted through its pidfd, which is registered in the adopted set of
    // exits under the same instance id (no syscall here: this runs once per instance,
    // thousands of times, while nothing is served). One that exited during the exec is
    // reported as soon as the loop runs, and handled as usual.
    int pidfd = v[kPidfd].get<int>();
    if (pidfd >= 0) {
        if (!exits_) throw std::runtime_error("worker " + in.label() + " has a process but the state has no set of exits");
        in.pid = v[kPid].get<pid_t>();
        in.pidfd.reset(fds.claim(pidfd, "worker " + in.label() + ": pidfd"));
        instances_by_pid_[in.pid] = &in;
    }
    // Its cgroup, likewise through the adopted set of cgroup events. An instance whose
    // main process has exited keeps its pid while the cgroup empties.
    // The name is used as a path below fdsupd-PID: it must be one this fdsupd made.
    in.cgroup = v[kCgroup].get<std::string>();
    if (!in.cgroup.empty() && !is_instance_cgroup_name(in.cgroup))
        throw std::runtime_error("worker " + in.label() + ": \"" + in.cgroup + "\" is no instance cgroup's name");
    in.exit_pending = read_exit(v[kExitPending]);
    int events = v[kCgroupEventsFd].get<int>();
    if (events >= 0 && (!cgroups_.events() || in.cgroup.empty()))
        throw std::runtime_error("worker " + in.label() + " has a cgroup.events fd but no cgroup or set to watch it in");
    if (in.exit_pending && (events < 0 || pidfd >= 0))
        throw std::runtime_error("worker " + in.label() + " waits for its cgroup to empty without a cgroup to watch");
    if (in.exit_pending) in.pid = v[kPid].get<pid_t>();
    if (events >= 0) in.cgroup_events.reset(fds.claim(events, "worker " + in.label() + ": cgroup.events"));

    // Its timers, to the same deadlines.
    if (v[kTimerActive].get<bool>() && in.exit_pending) {
        arm_cgroup_drain(in, in.timer_deadline);
    } else if (v[kTimerActive].get<bool>()) {
        switch (in.state) {
            case InstanceState::backoff: arm_restart(in, in.timer_deadline); break;
            case InstanceState::stopping: arm_stop_escalation(in, in.timer_deadline); break;
            case InstanceState::starting:
                if (worker.config.ready == config::ReadyMode::delay) arm_ready_delay(in, in.timer_deadline);
                else arm_ready_timeout(in, in.timer_deadline);
                break;
            default: break;
        }
    }
    if (v[kWatchdogActive].get<bool>() && in.has_process()) arm_watchdog_until(in, in.watchdog_deadline);
}

void Supervisor::restore_rollout(Worker& worker, const Json& r) {
    std::vector<RollingRestart::Slot> slots;
    for (const auto& s : r.at("slots"))
        slots.push_back({s.at("index").get<int>(), s.at("old_id").get<uint64_t>(), s.at("old_pid").get<pid_t>(),
                         s.at("new_id").get<uint64_t>(), s.at("new_pid").get<pid_t>(), s.at("in_place").get<bool>(),
                         s.at("failure").get<std::string>()});
    std::vector<RolloutPlan::SlotState> states;
    for (const auto& s : r.at("states")) {
        int state = s.get<int>();
        if (state < 0 || state > static_cast<int>(RolloutPlan::SlotState::skipped))
            throw std::runtime_error("worker " + worker.config.name + ": a rollout slot in state " + std::to_string(state));
        states.push_back(static_cast<RolloutPlan::SlotState>(state));
    }
    if (states.size() != slots.size()) throw std::runtime_error("worker " + worker.config.name + ": a malformed rollout");
    auto rollout = std::make_shared<RollingRestart>(worker.config.name, r.at("generation").get<uint64_t>(),
                                                    std::move(slots), r.at("max_surge").get<int>());
    rollout->plan = RolloutPlan(std::move(states), r.at("max_surge").get<int>(), r.at("stopped").get<bool>());
    rollout->stop_reason = r.at("stop_reason").get<std::string>();
    // Nobody waits for its report any more: the command's client was disconnected.
    rollout->then = [name = worker.config.name](std::vector<InstanceReport> reports) {
        bool ok = std::all_of(reports.begin(), reports.end(), [](const InstanceReport& r) { return r.ok; });
        spdlog::info("worker {}: the rolling restart begun before the upgrade is done{}", name, ok ? "" : " (some instances failed)");
    };
    worker.rollout = rollout;
    add_rollout_waiter(rollout);
}

}  // namespace fdsup
