// The event journal behind `fdsupctl events`: what happened to the workers and to
// fdsupd itself, as it happened, for a reader who follows and for one who comes late.
//
// Bounded by construction: the last kCapacity events are kept (the oldest go first),
// each of bounded size: a text field longer than kMaxText bytes is cut there (with
// "..."), a list longer than kMaxList keeps its first entries and says how many more
// (an exec error naming a long PATH, a reload's thousand config errors).
// Every event has a sequence number, monotonic over fdsupd's whole life: an in-place
// upgrade carries the ring and the next number over (state/), so a reader that resumes
// with "the ones after N" in the next image misses nothing and sees nothing twice.
//
// The event names are a closed list (EventKind, event_name); what each one carries
// is documented with the wire format (control/protocol.h, EVENT). The supervisor emits
// them; it knows nothing of who reads them.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace fdsup {

enum class EventKind {
    started,            // an instance's process was exec'd
    ready,              // ... and is ready (in service)
    start_failed,       // a start that failed before exec (exec error, fds, cgroup)
    exited,             // a process exited: how, and why
    restart_scheduled,  // ... it will be started again after a backoff
    not_restarted,      // ... it stays exited (restart = never / on-failure with success)
    failed,             // the instance is failed (start limit, cannot exec, restart = never)
    stopping,           // stop_signal sent (an operator's stop, or fdsupd's kill for a failure)
    stop_timeout,       // still running after stop_timeout: SIGKILL sent
    stopped,            // the instance is stopped (its process exited, or it had none)
    probe_failed,       // a ready or liveness probe failed
    recycle,            // recycle_memory or max_age reached: the instance is replaced
    draining,           // stop_delay: a planned stop took it out of readiness; still serving
    on_demand_start,    // start = "on-demand": a connection waiting on a socket starts the worker
    idle_stop,          // ... no connection for idle_stop: the worker is stopped until the next
    rollout_began,      // a rolling restart began (a restart, a liveness failure, a recycle)
    rollout_step,       // ... one instance was replaced (its new process is in service)
    rollout_finished,   // ... every instance was replaced
    rollout_stopped,    // ... it ended early (a failed replacement, a later command, shutdown)
    rollout_paused,     // a canary is in service: the rollout holds
    rollout_promoted,   // ... and goes on (promoted, or its pause ended)
    rollout_aborted,    // ... aborted (a canary failed, `rollout abort`): what it replaced is rolled back
    reload,             // a reload was carried out
    reload_refused,     // a reload changed nothing (invalid config, busy, shutting down)
    socket_adopted,     // a listening socket was taken over from a running process
    upgrade_began,      // an in-place upgrade is about to exec the next image (old image)
    upgrade_done,       // the next image took over (new image)
    upgrade_failed,     // an upgrade did not happen (refused, or the exec failed)
    upgrade_rolled_back,  // the next image could not take over; the previous one goes on
};
inline constexpr size_t kEventKinds = static_cast<size_t>(EventKind::upgrade_rolled_back) + 1;

// "restart_scheduled"; and back (nullopt for a name not on the list).
const char* event_name(EventKind kind);
std::optional<EventKind> event_kind(std::string_view name);

// An event's own fields: a few scalars, strings, or lists of names.
using EventValue = std::variant<std::nullptr_t, bool, int64_t, double, std::string, std::vector<std::string>>;
using EventFields = std::vector<std::pair<std::string, EventValue>>;

struct Event {
    uint64_t seq = 0;  // set by EventLog::add
    std::chrono::system_clock::time_point time{};  // set by add unless given
    EventKind kind = EventKind::started;
    std::string worker;  // "": fdsupd itself (reload, upgrade)
    int instance = -1;   // -1: none (a worker's rollout, fdsupd's own events)
    pid_t pid = -1;      // -1: none
    EventFields fields;
};

class EventLog {
public:
    static constexpr size_t kCapacity = 1000;
    static constexpr size_t kMaxText = 1024;
    static constexpr size_t kMaxList = 32;

    using Follower = std::function<void(const Event&)>;

    // Numbers the event, bounds its fields, keeps it and hands it to every follower.
    void add(Event event);

    // The kept events with a sequence number above `after`, oldest first, and only
    // those `pick` accepts (all without one).
    std::vector<Event> after(uint64_t after, const std::function<bool(const Event&)>& pick = nullptr) const;
    // A worker named by a kept event (one removed since may still be asked about).
    bool mentions(const std::string& worker) const;
    // The sequence number of the last event added (0: none yet).
    uint64_t last_seq() const { return next_seq_ - 1; }

    // `follower` gets every later event until unfollow(id). A follower may unfollow
    // itself (or others) from inside the call.
    uint64_t follow(Follower follower);
    void unfollow(uint64_t id);
    size_t follower_count() const { return followers_.size(); }

    // For the upgrade state: what is kept, and taking it back in the next image.
    const std::deque<Event>& kept() const { return ring_; }
    uint64_t next_seq() const { return next_seq_; }
    // `events` in order, numbered below `next_seq`; the oldest beyond kCapacity dropped.
    void restore(std::deque<Event> events, uint64_t next_seq);

private:
    std::deque<Event> ring_;
    uint64_t next_seq_ = 1;
    std::map<uint64_t, Follower> followers_;
    uint64_t next_id_ = 1;
};

}  // namespace fdsup
