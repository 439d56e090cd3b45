// Reading the supervisor's state back in the next image (state.h).
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <deque>
#include <limits>
#include <map>
#include <type_traits>
#include <unordered_set>

#include "config/listen_address.h"
#include "config/loader.h"
#include "state/codec.h"
#include "state/state_format.h"
#include "state/restore_timings.h"

namespace fdsup::state {

using Json = StateDocument;
namespace {

Clock::time_point time_at(const Json& j) {
    return Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(j.get<int64_t>())));
}

KillReason kill_reason_of(const std::string& name) {
    if (name == "ready_timeout") return KillReason::ready_timeout;
    if (name == "watchdog") return KillReason::watchdog;
    if (name == "liveness") return KillReason::liveness;
    return KillReason::none;
}


std::chrono::system_clock::time_point wall_time_at(const Json& j) {
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(j.get<int64_t>())));
}

InstanceHealth read_health(const Json& h) {
    InstanceHealth health;
    health.failures = h.at(0).get<int>();
    if (const Json& last = h.at(1); !last.is_null())
        health.last = ProbeOutcome{last.at(0).get<bool>(), last.at(1).get<std::string>(),
                                   std::chrono::microseconds(last.at(2).get<int64_t>()), wall_time_at(last.at(3))};
    health.accepting = h.at(2).get<std::string>();
    health.replaced = h.at(3).get<std::string>();
    health.replaced_at = wall_time_at(h.at(4));
    return health;
}

InstanceState state_of(const std::string& name) {
    for (auto state : kAllInstanceStates)
        if (name == state_name(state)) return state;
    throw std::runtime_error("unknown instance state \"" + name + "\"");
}

std::optional<ExitStatus> read_exit(const Json& e) {
    if (e.is_null()) return std::nullopt;
    return ExitStatus{e.at(0).get<bool>(), e.at(1).get<int>(), e.at(2).get<int>(), e.at(3).get<bool>(),
                      e.at(4).get<std::string>()};
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

}  // namespace

// The fds a restore takes over. Each must be one the previous image kept open across the
// exec (the state's "keep" list), and each is taken once: a damaged state naming another
// number would otherwise adopt, and one day close, whatever this image opened under it
// (libuv's own fds among them). Checked without a syscall per fd: there are thousands.
// They are close-on-exec already (make_inherited_fds_cloexec did all at once).
class FdClaims {
public:
    // A mark per fd number, not hash sets: tens of thousands of fds at 10,000 instances
    // with their output captured, each a node allocated in two sets, showed in the
    // profile of an upgrade. Numbers at or above this process's hard fd limit cannot be
    // open fds: such an entry in "keep" is not kept (claiming it is an error).
    explicit FdClaims(const Json& keep) {
        struct rlimit nofile{};
        size_t limit = ::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_max != RLIM_INFINITY
                           ? static_cast<size_t>(nofile.rlim_max)
                           : kMaxMarks;
        limit = std::min(limit, kMaxMarks);
        for (const auto& entry : keep) {
            int fd = entry.get<int>();
            if (fd < 0 || static_cast<size_t>(fd) >= limit) continue;
            if (static_cast<size_t>(fd) >= marks_.size()) marks_.resize(static_cast<size_t>(fd) + 1, Mark::none);
            marks_[static_cast<size_t>(fd)] = Mark::kept;
        }
    }
    // `ask_kernel`: also checked to be open (F_GETFD), for the few fds not per instance.
    // `what` names the fd in the error: a string, or (per instance and per pipe, where
    // building one each time costs more than the check) a callable that makes one.
    template <typename What>
    int claim(int fd, const What& what, bool ask_kernel = false) {
        auto named = [&] {
            if constexpr (std::is_invocable_v<What>) return what() + ": fd " + std::to_string(fd);
            else return std::string(what) + ": fd " + std::to_string(fd);
        };
        Mark* mark = fd >= 0 && static_cast<size_t>(fd) < marks_.size() ? &marks_[static_cast<size_t>(fd)] : nullptr;
        if (mark == nullptr || *mark == Mark::none) throw std::runtime_error(named() + " was not kept across the exec");
        if (*mark == Mark::claimed) throw std::runtime_error(named() + " is named twice in the state");
        *mark = Mark::claimed;
        if (ask_kernel && ::fcntl(fd, F_GETFD) < 0) throw std::runtime_error(named() + " is not open");
        return fd;
    }

private:
    enum class Mark : uint8_t { none, kept, claimed };
    static constexpr size_t kMaxMarks = size_t{1} << 24;  // a bound for the table, whatever the limit says
    std::vector<Mark> marks_;
};

Result<void> restore_state(Supervisor& supervisor, const Json& state, bool rolled_back, bool integers_only) {
    try {
        if (!integers_only) check_integers_only(state);
        state::restore_timings().lap("check");
        Codec::restore(supervisor, state, rolled_back);
    } catch (const std::exception& e) {
        return fail(std::string("the state cannot be restored: ") + e.what());
    }
    return {};
}

void Codec::restore(Supervisor& sup, const Json& state, bool rolled_back) {
    FdClaims fds(state.at("keep"));
    // The loop's clock is as old as the loop: timers armed below must count from now.
    uv_update_time(sup.loop_);
    sup.started_at_ = time_at(state.at("started_at"));
    sup.upgrades_ = state.at("upgrades").get<uint64_t>() + (rolled_back ? 0 : 1);
    sup.next_instance_id_ = state.at("next_instance_id").get<uint64_t>();
    restore_events(sup, state.at("events"));
    // (A state written before the ring was carried has none: the ring starts empty.)
    if (auto logs = state.find("logs"); logs != state.end()) restore_logs(sup, *logs);

    // Sockets: the current ones take their settings from the config, retired ones
    // (replaced by a reload, still held by old processes) only need their address.
    std::vector<OwnedSocket> current_sockets, retired_sockets;
    // Every field is read before an fd is owned: a throw must not close an fd that a
    // rollback hands back to the previous image.
    for (const auto& s : state.at("sockets")) {
        OwnedSocket socket;
        const std::string name = s.at("name").get<std::string>();
        const config::SocketConfig* current = sup.config_.find_socket(name);
        bool retired = s.at("retired").get<bool>();
        int fd = s.at("fd").get<int>();
        socket.bound = s.at("bound").get<std::string>();
        socket.serial = s.at("serial").get<uint64_t>();
        socket.held_by_manager = s.at("held_by_manager").get<bool>();
        if (const auto& from = s.at("adopted_from"); !from.is_null())
            socket.adopted_from = OwnedSocket::AdoptedFrom{from.at(0).get<pid_t>(), from.at(1).get<int>()};
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
    sup.sockets_.restore(std::move(current_sockets), std::move(retired_sockets), state.at("next_socket_serial").get<uint64_t>());

    // Adopted before the instances whose pidfds it holds (an adopted fd is never closed
    // on failure: a rollback hands it back to the previous image).
    if (int fd = state.at("exit_watch_fd").get<int>(); fd >= 0) {
        auto adopted = EpollSet::adopt(sup.loop_, fds.claim(fd, "the set of exits", true), "process exits",
                                       [&sup](uint64_t id, uint32_t) { sup.on_exit_reported(id); });
        if (!adopted) throw std::runtime_error(adopted.error().text());
        sup.exits_ = std::move(*adopted);
    }
    int cgroup_events = state.at("cgroup_events_fd").get<int>();
    if (auto adopted = sup.cgroups_.adopt(cgroup_events >= 0 ? fds.claim(cgroup_events, "the set of cgroup events", true) : -1,
                                      state.at("next_cgroup_serial").get<uint64_t>());
        !adopted)
        throw std::runtime_error(adopted.error().text());
    sup.instances_by_id_.clear();
    sup.instances_by_pid_.clear();
    // Sized once (10,000 instances would otherwise rehash both maps a dozen times).
    size_t instance_count = 0;
    for (const auto& w : state.at("workers"))
        if (auto list = w.find("instances"); list != w.end() && list->is_array()) instance_count += list->size();
    sup.instances_by_id_.reserve(instance_count);
    sup.instances_by_pid_.reserve(instance_count);
    for (const auto& w : state.at("workers")) {
        const std::string name = w.at("name").get<std::string>();
        Worker* worker = sup.find_worker(name);
        if (worker == nullptr) throw std::runtime_error("worker " + name + " is not in the configuration");
        worker->config.instances = w.at("instances_wanted").get<int>();
        worker->stopped_by_operator = w.at("stopped_by_operator").get<bool>();
        worker->waiting_for_dependencies = w.at("waiting_for_dependencies").get<bool>();
        worker->generation = w.at("generation").get<uint64_t>();
        if (std::string source = w.at("config_source").get<std::string>(); !source.empty()) {
            // A rolled-back reload left the worker on the spec of an earlier config.
            auto earlier = config::load_config_string(source, sup.config_.path);
            const config::WorkerConfig* spec = earlier.config ? earlier.config->find_worker(name) : nullptr;
            if (spec == nullptr) throw std::runtime_error("worker " + name + ": its earlier configuration does not load");
            int instances = worker->config.instances;
            worker->config = *spec;
            worker->config.instances = instances;
            if (config::WorkerConfig* entry = sup.config_.find_worker(name)) *entry = *spec;
            worker->config_source = std::move(source);
        }
        const auto& demand = w.at("on_demand");
        if (!demand.is_array() || demand.size() != 4) throw std::runtime_error("worker " + name + ": bad on_demand");
        worker->demand.watched = demand.at(0).get<bool>();
        worker->demand.going_idle = demand.at(1).get<bool>();
        worker->demand.starts = demand.at(2).get<uint64_t>();
        worker->demand.last_active = time_at(demand.at(3));
        worker->instances.clear();
        for (const auto& j : w.at("instances")) restore_instance(sup, *worker, j, fds);
        for (const auto& store : w.at("fd_stores")) {
            int index = store.at("index").get<int>();
            FdStore& fd_store = sup.fd_stores_.slot(*worker, index);
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
        if (const Json& r = w.at("rollout"); !r.is_null()) restore_rollout(sup, *worker, r);
    }
    state::restore_timings().lap("instances");
    // The instances' cgroups are below the same "fdsupd-PID" (the PID is the same). Also
    // opened for a cgroup worker with no process now, so that the directory is removed
    // at exit; needed (a failure is a rollback) only if an instance has a cgroup.
    bool any_cgroup = false, cgroup_mode = false;
    for (const auto& worker : sup.workers_) {
        cgroup_mode = cgroup_mode || worker->config.kill_mode == config::KillMode::cgroup;
        for (const auto& instance : worker->instances) any_cgroup = any_cgroup || !instance->cgroup.empty();
    }
    if (any_cgroup || cgroup_mode)
        if (auto opened = sup.cgroups_.reopen_tree(any_cgroup); !opened) throw std::runtime_error(opened.error().text());
    // The limits' controllers: the same v1 "fdsupd-PID" directories (the instances'
    // cgroups there go by the names carried above), v2 controllers already enabled.
    if (auto prepared = sup.cgroups_.prepare_limits(sup.config_); !prepared)
        throw std::runtime_error(prepared.error().text());
    // The pipes are in the adopted set already, each under its capture's key.
    uint64_t next_capture_key = state.at("next_capture_key").get<uint64_t>();
    int pipes = state.at("output_pipes_fd").get<int>();
    const Json& capture_records = state.at("captures");
    if (auto adopted = sup.outputs_.adopt(pipes >= 0 ? fds.claim(pipes, "the set of output pipes", true) : -1, next_capture_key,
                                          capture_records.size());
        !adopted)
        throw std::runtime_error(adopted.error().text());
    // The log files, read (and their fds claimed) before any is owned, as the pipes are.
    struct OpenLog {
        std::string path;
        int fd;
        std::string worker;
        LogFileOptions options;
    };
    std::vector<OpenLog> logs;
    std::unordered_set<std::string> log_paths;
    for (const auto& l : state.at("log_files")) {
        using namespace state_format;
        const auto& v = l.get_ref<const Json::array_t&>();
        if (v.size() != kLogFileFields) throw std::runtime_error("a log file of " + std::to_string(v.size()) + " fields");
        OpenLog log{v[kLogFilePath].get<std::string>(), v[kLogFileFd].get<int>(), v[kLogFileWorker].get<std::string>(), {}};
        if (!log.path.starts_with("/") || log.path.ends_with("/") || log.path.find('\0') != std::string::npos ||
            !log_paths.insert(log.path).second)
            throw std::runtime_error("a log file with a relative, repeated or unusable path (" + log.path + ")");
        if (!v[kLogFileMaxSize].is_null()) log.options.max_size = v[kLogFileMaxSize].get<uint64_t>();
        else log.options.max_size.reset();
        log.options.keep = v[kLogFileKeep].get<int>();
        if (log.options.keep < 0 || log.options.keep > config::kMaxLogKeep)
            throw std::runtime_error("log file " + log.path + ": log_keep " + std::to_string(log.options.keep) +
                                     " is out of range");
        log.options.compress = v[kLogFileCompress].get<bool>();
        auto timestamps = config::log_timestamps_from_text(v[kLogFileTimestamps].get<std::string>());
        if (!timestamps) throw std::runtime_error("log file " + log.path + ": unknown log_timestamps " + v[kLogFileTimestamps].dump());
        log.options.timestamps = *timestamps;
        // A regular file, as fdsupd opens it: a damaged state must not make it write
        // into a pipe or a socket it happens to hold.
        struct stat st {};
        if (::fstat(log.fd, &st) < 0 || !S_ISREG(st.st_mode))
            throw std::runtime_error("log file " + log.path + ": fd " + std::to_string(log.fd) + " is not a regular file");
        fds.claim(log.fd, "log file " + log.path, true);
        logs.push_back(std::move(log));
    }
    // Every record is checked before any pipe is owned (a throw must not close one).
    struct Capture {
        uint64_t key;
        int fd;
        StreamOrigin origin;
        std::string partial;
        config::OutputTarget target;
    };
    std::vector<Capture> captures;
    std::unordered_set<uint64_t> keys;
    captures.reserve(capture_records.size());
    keys.reserve(capture_records.size());
    for (const auto& c : capture_records) {
        using namespace state_format;
        const auto& v = c.get_ref<const Json::array_t&>();  // throws if it is not an array
        if (v.size() != kCaptureFields) throw std::runtime_error("a capture of " + std::to_string(v.size()) + " fields");
        auto target = config::output_from_text(v[kCaptureTarget].get<std::string>());
        if (!target || !config::is_captured(target->kind))
            throw std::runtime_error("a capture to " + v[kCaptureTarget].dump() + ", which is not captured");
        Capture capture{v[kCaptureKey].get<uint64_t>(), v[kCaptureFd].get<int>(),
                        StreamOrigin{v[kCaptureWorker].get<std::string>(), v[kCaptureIndex].get<int>(),
                                     v[kCapturePid].get<pid_t>(), v[kCaptureStderr].get<bool>()},
                        v[kCapturePartial].get<std::string>(), std::move(*target)};
        // Keys name the registrations in the adopted set: each known, once, and below the
        // next key this image hands out.
        if (!sup.outputs_.pipes() || capture.key == 0 || capture.key >= next_capture_key || !keys.insert(capture.key).second)
            throw std::runtime_error("a capture with a missing, repeated or unknown key (" + std::to_string(capture.key) + ")");
        fds.claim(capture.fd, [&] { return "output pipe of " + capture.origin.label(); });
        captures.push_back(std::move(capture));
    }
    for (auto& log : logs)
        sup.outputs_.adopt_log_file(std::move(log.path), std::move(log.worker), UniqueFd(log.fd), log.options);
    for (auto& c : captures)
        sup.outputs_.adopt_capture(c.key, UniqueFd(c.fd), std::move(c.origin), std::move(c.target), std::move(c.partial));
    state::restore_timings().lap("captures");
}

void Codec::restore_instance(Supervisor& sup, Worker& worker, const Json& j, FdClaims& fds) {
    using namespace state_format;
    const auto& v = j.get_ref<const Json::array_t&>();  // throws if it is not an array
    if (v.size() != kInstanceFields)
        throw std::runtime_error("an instance of " + std::to_string(v.size()) + " fields (" +
                                 std::to_string(kInstanceFields) + " expected)");
    auto id = v[kId].get<uint64_t>();
    worker.instances.push_back(std::make_unique<Instance>(sup.loop_, &worker, v[kIndex].get<int>(), id));
    Instance& in = *worker.instances.back();
    sup.instances_by_id_[id] = &in;
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
        if (!sup.exits_) throw std::runtime_error("worker " + in.label() + " has a process but the state has no set of exits");
        in.pid = v[kPid].get<pid_t>();
        in.pidfd.reset(fds.claim(pidfd, [&] { return "worker " + in.label() + ": pidfd"; }));
        sup.instances_by_pid_[in.pid] = &in;
    }
    // Its cgroup, likewise through the adopted set of cgroup events. An instance whose
    // main process has exited keeps its pid while the cgroup empties.
    // The name is used as a path below fdsupd-PID: it must be one this fdsupd made.
    in.cgroup = v[kCgroup].get<std::string>();
    if (!in.cgroup.empty() && !is_instance_cgroup_name(in.cgroup))
        throw std::runtime_error("worker " + in.label() + ": \"" + in.cgroup + "\" is no instance cgroup's name");
    in.exit_pending = read_exit(v[kExitPending]);
    int events = v[kCgroupEventsFd].get<int>();
    if (events >= 0 && (!sup.cgroups_.events() || in.cgroup.empty()))
        throw std::runtime_error("worker " + in.label() + " has a cgroup.events fd but no cgroup or set to watch it in");
    if (in.exit_pending && (events < 0 || pidfd >= 0))
        throw std::runtime_error("worker " + in.label() + " waits for its cgroup to empty without a cgroup to watch");
    if (in.exit_pending) in.pid = v[kPid].get<pid_t>();
    if (events >= 0) in.cgroup_events.reset(fds.claim(events, [&] { return "worker " + in.label() + ": cgroup.events"; }));

    in.draining = v[kDraining].get<bool>();
    if (in.draining && (!in.has_process() || in.state != InstanceState::running))
        throw std::runtime_error("worker " + in.label() + " drains without a running process");
    // Its timers, to the same deadlines.
    if (v[kTimerActive].get<bool>() && in.exit_pending) {
        sup.arm_cgroup_drain(in, in.timer_deadline);
    } else if (v[kTimerActive].get<bool>()) {
        switch (in.state) {
            case InstanceState::backoff: sup.arm_restart(in, in.timer_deadline); break;
            case InstanceState::stopping: sup.arm_stop_escalation(in, in.timer_deadline); break;
            case InstanceState::running:
                if (in.draining) sup.arm_drain_delay(in, in.timer_deadline);
                break;
            case InstanceState::starting:
                if (worker.config.ready == config::ReadyMode::delay) sup.arm_ready_delay(in, in.timer_deadline);
                else sup.arm_ready_timeout(in, in.timer_deadline);
                break;
            default: break;
        }
    }
    if (v[kWatchdogActive].get<bool>() && in.has_process()) sup.arm_watchdog_until(in, in.watchdog_deadline);

    // What its health checks found; they go on in Supervisor::resume().
    in.health = read_health(v[kHealth]);
    const Json& usage = v[kUsage];
    auto optional_time = [&](const Json& t) -> std::optional<Clock::time_point> {
        if (t.get<int64_t>() < 0) return std::nullopt;
        return time_at(t);
    };
    in.usage.recycle_at = optional_time(usage.at(0));
    in.usage.memory_over_since = optional_time(usage.at(1));
    in.usage.retry_after = time_at(usage.at(2));
    in.usage.recycled = usage.at(3).get<std::string>();
}

void Codec::restore_events(Supervisor& sup, const Json& events) {
    auto value_of = [](const Json& v) -> EventValue {
        if (v.is_null()) return nullptr;
        if (v.is_boolean()) return v.get<bool>();
        if (v.is_number_integer()) return v.get<int64_t>();
        if (v.is_number()) return v.get<double>();
        if (v.is_string()) return v.get<std::string>();
        if (v.is_array()) return v.get<std::vector<std::string>>();
        if (v.is_object()) return std::stod(v.at("f").get<std::string>());  // write.cpp: a fractional value
        throw std::runtime_error("an event field of an unknown kind");
    };
    std::deque<Event> kept;
    for (const auto& e : events.at("kept")) {
        Event event;
        event.seq = e.at(0).get<uint64_t>();
        if (!kept.empty() && event.seq <= kept.back().seq) throw std::runtime_error("events out of order");
        event.time = wall_time_at(e.at(1));
        auto kind = event_kind(e.at(2).get<std::string>());
        if (!kind) throw std::runtime_error("an event named " + e.at(2).dump());
        event.kind = *kind;
        event.worker = e.at(3).get<std::string>();
        event.instance = e.at(4).get<int>();
        event.pid = e.at(5).get<pid_t>();
        for (const auto& field : e.at(6)) event.fields.emplace_back(field.at(0).get<std::string>(), value_of(field.at(1)));
        kept.push_back(std::move(event));
    }
    sup.events_.restore(std::move(kept), events.at("next_seq").get<uint64_t>());
}

void Codec::restore_logs(Supervisor& sup, const Json& logs) {
    std::vector<LogLine> lines;
    std::map<std::string, uint64_t> last_seq;  // per worker: each ring's lines in order
    for (const auto& l : logs.at("lines")) {
        LogLine line;
        line.seq = l.at(0).get<uint64_t>();
        line.time = wall_time_at(l.at(1));
        line.worker = l.at(2).get<std::string>();
        line.instance = l.at(3).get<int>();
        line.from_stderr = l.at(4).get<bool>();
        line.text = l.at(5).get<std::string>();
        uint64_t& last = last_seq[line.worker];
        if (line.seq == 0 || line.seq <= last) throw std::runtime_error("log lines out of order");
        last = line.seq;
        lines.push_back(std::move(line));
    }
    sup.outputs_.book().restore(std::move(lines), logs.at("next_seq").get<uint64_t>());
}

void Codec::restore_rollout(Supervisor& sup, Worker& worker, const Json& r) {
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
    rollout->plan = RolloutPlan(std::move(states), r.at("max_surge").get<int>(), r.at("stopped").get<bool>(),
                                r.at("canary").get<size_t>(), r.at("released").get<bool>());
    rollout->stop_reason = r.at("stop_reason").get<std::string>();
    rollout->reason = r.at("reason").get<std::string>();
    rollout->aborted = r.at("aborted").get<bool>();
    rollout->rollback = r.at("rollback").get<bool>();
    rollout->pause = config::Duration(r.at("pause_ms").get<int64_t>());
    rollout->restarts_at_hold = r.at("restarts_at_hold").get<int>();
    // A hold without an end (until promoted) is written as -1, as is one not begun.
    if (const Json& until = r.at("hold_until"); until.get<int64_t>() >= 0) rollout->hold_until = time_at(until);
    else if (rollout->restarts_at_hold >= 0) rollout->hold_until = Clock::time_point::max();
    // Nobody waits for its report any more: the command's client was disconnected.
    // One fdsupd began itself (a failed liveness probe) ends as it would have.
    rollout->recycle = r.at("recycle").get<bool>();
    if (rollout->recycle)
        rollout->then = sup.recycle_done(*rollout);
    else if (rollout->rollback)
        rollout->then = sup.rollback_done(worker.config.name);
    else if (!rollout->reason.empty())
        rollout->then = sup.liveness_replacement_done(*rollout);
    else
        rollout->then = [name = worker.config.name](std::vector<InstanceReport> reports) {
            bool ok = std::all_of(reports.begin(), reports.end(), [](const InstanceReport& r) { return r.ok; });
            spdlog::info("worker {}: the rolling restart begun before the upgrade is done{}", name,
                         ok ? "" : " (some instances failed)");
        };
    worker.rollout = rollout;
    sup.add_rollout_waiter(rollout);
}

}  // namespace fdsup::state
