// Writing the supervisor's state for the next image (state.h).
#include <algorithm>
#include <charconv>
#include <type_traits>
#include <variant>

#include "state/codec.h"
#include "state/state_format.h"

namespace fdsup::state {

using Json = StateDocument;
namespace {

int64_t ns(Clock::time_point t) { return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count(); }

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
    if (exit)
        w.begin_array()
            .value(exit->signaled)
            .value(exit->code)
            .value(exit->signal)
            .value(exit->oom_kill)
            .value(exit->oom_limit)
            .end_array();
    else w.null();
}

int64_t wall_ns(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

void write_event_value(JsonWriter& w, const EventValue& value) {
    std::visit([&w](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::nullptr_t>) w.null();
        else if constexpr (std::is_same_v<T, double>) {
            // The state holds integers only (restore refuses any other number): a
            // fractional value goes as its shortest exact text, {"f": "0.25"}.
            char text[64];
            auto end = std::to_chars(text, text + sizeof text, v).ptr;
            w.begin_object().member("f", std::string_view(text, static_cast<size_t>(end - text))).end_object();
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            w.begin_array();
            for (const auto& item : v) w.value(item);
            w.end_array();
        } else w.value(v);
    }, value);
}

void write_health(JsonWriter& w, const InstanceHealth& h) {
    w.begin_array().value(h.failures);
    if (h.last)
        w.begin_array()
            .value(h.last->passed)
            .value(h.last->detail)
            .value(static_cast<int64_t>(h.last->latency.count()))
            .value(wall_ns(h.last->at))
            .end_array();
    else
        w.null();
    w.value(h.accepting).value(h.replaced).value(wall_ns(h.replaced_at)).end_array();
}

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
    write_health(r.field(kHealth), in.health);
    auto optional_ns = [&](const std::optional<Clock::time_point>& t) { return t ? ns(*t) : int64_t{-1}; };
    r.field(kUsage)
        .begin_array()
        .value(optional_ns(in.usage.recycle_at))
        .value(optional_ns(in.usage.memory_over_since))
        .value(ns(in.usage.retry_after))
        .value(in.usage.recycled)
        .end_array();
    r.field(kDraining).value(in.draining);
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
        .member("reason", rollout.reason)
        .member("recycle", rollout.recycle)
        .member("rollback", rollout.rollback)
        .member("aborted", rollout.aborted)
        .member("canary", rollout.plan.canary())
        .member("released", rollout.plan.released())
        .member("pause_ms", static_cast<int64_t>(rollout.pause.count()))
        .member("hold_until", rollout.restarts_at_hold < 0 || rollout.hold_until == Clock::time_point::max()
                                  ? int64_t{-1}
                                  : ns(rollout.hold_until))
        .member("restarts_at_hold", rollout.restarts_at_hold)
        .end_object();
}

}  // namespace

void Codec::write(const Supervisor& sup, JsonWriter& w, std::vector<int>& keep) {
    // Room for the bulk at once (about 200 bytes an instance, 130 a capture, and their
    // fds in the keep list): growing the text by doubling copied it a dozen times, into
    // fresh pages each time, while nothing is served.
    w.reserve(w.text().size() + (64 << 10) + 256 * sup.instances_by_id_.size() + 160 * sup.outputs_.captures().size());
    keep.reserve(keep.size() + 16 + sup.instances_by_id_.size() + 2 * sup.outputs_.captures().size());
    // The sets of pidfds and of output pipes go as they are: the next image adopts
    // every registration in them.
    int exit_watch_fd = sup.exits_ ? sup.exits_->fd() : -1;
    if (exit_watch_fd >= 0) keep.push_back(exit_watch_fd);
    int output_pipes_fd = sup.outputs_.pipes() ? sup.outputs_.pipes()->fd() : -1;
    if (output_pipes_fd >= 0) keep.push_back(output_pipes_fd);
    int cgroup_events_fd = sup.cgroups_.events() ? sup.cgroups_.events()->fd() : -1;
    if (cgroup_events_fd >= 0) keep.push_back(cgroup_events_fd);
    w.member("config_path", sup.config_.path)
        .member("config_source", sup.config_.source)
        .member("started_at", ns(sup.started_at_))
        .member("upgrades", sup.upgrades_)
        .member("next_instance_id", sup.next_instance_id_)
        .member("next_socket_serial", sup.sockets_.next_serial())
        .member("nofile_soft_at_start", static_cast<uint64_t>(sup.context_.nofile_soft_at_start))
        .member("exit_watch_fd", exit_watch_fd)
        .member("output_pipes_fd", output_pipes_fd)
        .member("cgroup_events_fd", cgroup_events_fd)
        .member("next_cgroup_serial", sup.cgroups_.next_serial())
        .member("next_capture_key", sup.outputs_.next_key());

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
            .key("adopted_from");
        if (s.adopted_from)
            w.begin_array().value(static_cast<int64_t>(s.adopted_from->pid)).value(s.adopted_from->fd).end_array();
        else
            w.null();
        w.end_object();
    };
    for (const auto& s : sup.sockets_.current()) write_socket(s, false);
    for (const auto& s : sup.sockets_.retired()) write_socket(s, true);
    w.end_array();

    w.key("workers").begin_array();
    for (const auto& worker : sup.workers_) {
        w.begin_object()
            .member("name", worker->config.name)
            .member("instances_wanted", worker->config.instances)
            .member("stopped_by_operator", worker->stopped_by_operator)
            .member("waiting_for_dependencies", worker->waiting_for_dependencies)
            .member("generation", worker->generation)
            .member("config_source", worker->config_source);
        // start = "on-demand": watched (idle), going idle, the starts connections made,
        // the idle clock (its sampling timer is armed again by resume()).
        w.key("on_demand")
            .begin_array()
            .value(worker->demand.watched)
            .value(worker->demand.going_idle)
            .value(worker->demand.starts)
            .value(ns(worker->demand.last_active))
            .end_array();
        w.key("instances").begin_array();
        for (const auto& instance : worker->instances) write_instance(w, *instance, keep);
        w.end_array();
        w.key("fd_stores").begin_array();
        for (const auto& [index, store] : sup.fd_stores_.of(*worker)) {
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

    // The event journal, so that `fdsupctl events` goes on without a gap: each event
    // [seq, wall time ns, name, worker, instance, pid, [[key, value], ...]].
    w.key("events").begin_object().member("next_seq", sup.events_.next_seq()).key("kept").begin_array();
    for (const auto& event : sup.events_.kept()) {
        w.begin_array()
            .value(event.seq)
            .value(wall_ns(event.time))
            .value(event_name(event.kind))
            .value(event.worker)
            .value(event.instance)
            .value(static_cast<int64_t>(event.pid))
            .begin_array();
        for (const auto& [key, value] : event.fields) {  // [key, value] pairs: their order is kept
            w.begin_array().value(key);
            write_event_value(w, value);
            w.end_array();
        }
        w.end_array().end_array();
    }
    w.end_array().end_object();

    // The "rotate:" files open (before the captures writing them): each goes on being
    // appended to through the same open file. Compressions in flight are not carried:
    // the next image's tidy() does again what the exec cut short.
    w.key("log_files").begin_array();
    for (const auto& log : sup.outputs_.log_files()) {
        using namespace state_format;
        keep.push_back(log.file->fd());
        const LogFileOptions& options = log.file->options();
        Record r(w);
        r.field(kLogFilePath).value(log.file->path());
        r.field(kLogFileFd).value(log.file->fd());
        r.field(kLogFileWorker).value(log.worker);
        r.field(kLogFileMaxSize);
        if (options.max_size) w.value(*options.max_size);
        else w.null();
        r.field(kLogFileKeep).value(options.keep);
        r.field(kLogFileCompress).value(options.compress);
        r.field(kLogFileTimestamps).value(config::log_timestamps_text(options.timestamps));
    }
    w.end_array();

    // The ring behind `fdsupctl logs`, so that it shows what came before the upgrade,
    // each line with its time and number: [seq, wall time ns, worker, instance,
    // from_stderr, text] (the text as every reply has it: invalid UTF-8 as U+FFFD).
    const LogBook& book = sup.outputs_.book();
    w.key("logs").begin_object().member("next_seq", book.next_seq()).key("lines").begin_array();
    book.each_line([&w](const LogLine& line) {
        w.begin_array()
            .value(line.seq)
            .value(wall_ns(line.time))
            .value(line.worker)
            .value(line.instance)
            .value(line.from_stderr)
            .value(line.text)
            .end_array();
    });
    w.end_array().end_object();

    // Positional too (there are two per instance); the label is made again from the
    // worker and index, as add_capture made it.
    w.key("captures").begin_array();
    for (const auto& [key, entry] : sup.outputs_.captures()) {
        using namespace state_format;
        keep.push_back(entry.capture->fd());
        Record r(w);
        r.field(kCaptureKey).value(key);
        r.field(kCaptureFd).value(entry.capture->fd());
        r.field(kCaptureWorker).value(entry.origin.worker);
        r.field(kCaptureIndex).value(entry.origin.index);
        r.field(kCaptureStderr).value(entry.origin.from_stderr);
        r.field(kCapturePartial).value(entry.capture->partial());
        r.field(kCapturePid).value(entry.origin.pid);
        r.field(kCaptureTarget).value(config::output_text(entry.target));
    }
    w.end_array();
}

void write_state(const Supervisor& supervisor, JsonWriter& w, std::vector<int>& keep) {
    Codec::write(supervisor, w, keep);
}

}  // namespace fdsup::state
