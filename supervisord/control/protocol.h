// The control protocol: fdsupctl <-> fdsupd over the control socket. Shared by both.
//
// Wire format, version kProtocolVersion (bump it on every change):
//   1  the first
//   2  the "upgrading" notice and resuming across an in-place upgrade; the `rollout`
//      command; status: "used_by_scm_rights" (sockets), "scm_rights" (workers)
//   3  canaries: "canary" and "pause" of `restart` and `reload`, `rollout`'s "action"
//      (promote, abort), ROLLOUT's "phase", "canary", "pause", "pause_left", "reason";
//      status: an instance's "draining", a rollout's "phase", "canary", "pause_left"
//      on-demand: instance and worker state "idle" (start = "on-demand", no process
//      until a connection), a worker's "on_demand" (null, or {"watched", "starts",
//      "idle_stop_s"})
//      the `adopt` command; reload's "sockets" has "adopted"; status: a socket's
//      "adopted_from"
//      the `events` command, {"event": EVENT} lines after it with "follow", and its
//      "resume" across an in-place upgrade (with "after")
//      the `reopen-logs` command
//      logs: "instance", "since" and "after"; LOGLINE's "seq" and "timestamp"; the
//      ring is carried across an in-place upgrade (a follower resumes with "after")
//
//   A SOCK_STREAM unix socket. Each way, one JSON object per line (UTF-8, "\n" ends it).
//   The client sends a request and reads lines until the one that has "ok"; it may then
//   send its next request on the same connection. A request line longer than
//   kMaxRequestLine gets an error reply and is skipped up to its newline.
//
//   Request   {"cmd": "restart", "names": ["web"]}
//   Progress  {"progress": "web[0]: pid 1234 exited with status 0 after 120ms"}
//             zero or more, before the final reply of a long operation
//   Reply     {"ok": true, ...}  or  {"ok": false, "error": "message", ...}
//   Log line  {"log": LOGLINE}   after a `logs` reply with "follow": true, until the
//             client disconnects
//   Event     {"event": EVENT}   after an `events` reply with "follow": true, until the
//             client disconnects (version 3)
//   Upgrading {"upgrading": true, "pid": 4242, "from": "0.1.0", "binary": "/usr/sbin/fdsupd",
//              "upgrades": 3, "resume": REQUEST?, "instances": [INSTANCE]?}
//             an in-place upgrade is about to exec the next image (version 2). Sent to
//             every client whose request has not had its final reply yet (a rolling
//             `restart`, a `rollout` that waits) or that follows logs, except the
//             client of the `upgrade` itself (the next image answers it); nothing
//             follows it but the connection's close, by the exec. The next image (or,
//             after a rollback, this one restored) answers on the same socket path
//             once it has restored the state, as the same pid. "resume": the request
//             that picks up there: send it on a new connection and take its answer as
//             this request's (a `logs` with "follow" and "after": the last line this
//             image handed to the client or passed over, the ring being carried over,
//             so that no line is lost or shown twice; an
//             `events` with "follow" and "after": the last event this image handed
//             to the client, the journal being carried over; a
//             `rollout` with "wait" for the rolling restarts still going on).
//             "instances": what the request reported as done before the upgrade, to
//             be shown with the resumed answer. No "resume": the request's outcome
//             cannot be followed across the upgrade. "pid", "upgrades": fdsupd's pid
//             and its count of upgrades so far (the next image has one more, a
//             rolled-back one the same).
//   {"upgrading": false, "error": "why"}  the exec failed after the notice: this image
//             goes on, and so does the request on this connection.
//
//   cmd        fields                                   reply fields (besides "ok")
//   status     names?: [str]                            supervisor, sockets, workers (SPEC);
//                                                       a socket's "adopted_from": {"pid": N,
//                                                       "fd": M} it was taken from (only a
//                                                       socket taken over, fdsupctl adopt);
//                                                       a socket's "used_by": the workers that
//                                                       inherit it (fds), "used_by_scm_rights":
//                                                       those that fetch it over SCM_RIGHTS;
//                                                       a worker's "fds" and "scm_rights" (the
//                                                       socket names it fetches)
//   start      names: [str]                             instances: [INSTANCE]
//   stop       names: [str]                             instances: [INSTANCE]
//   restart    names: [str], canary?: int,              instances: [INSTANCE]
//              pause?: str ("30s"; needs canary)
//              canary: replace that many instances of each named worker (each must roll
//              and have more), then hold for pause (none: until `rollout` promote); see
//              rollout/rolling_restart.h. The reply waits through the hold and the rest.
//   signal     name: str, signal?: str|int              signal: str, pids: [int]
//   scale      name: str, instances: int                worker, from, to, instances: [INSTANCE]
//   reload     canary?: int, pause?: str                config, workers{added, removed,
//                                                       changed, scaled, unchanged},
//                                                       sockets{added, removed, replaced},
//                                                       sockets.adopted: [ADOPTED], warnings: [str]
//                                                       on invalid config: errors: [str]
//   adopt      socket: str, pid: int, fd?: int          as reload (version 3)
//              a reload in which [sockets.SOCKET], new in the file, is taken over from
//              the running process PID (its fd FD, else the one listening on the
//              socket's address) instead of bound. Refused, changing nothing, when the
//              file has no [sockets.SOCKET], fdsupd owns it already, the caller (by
//              SO_PEERCRED) is neither root nor the process's uid, fdsupd may not
//              ptrace the process, the fd is not a listening socket of the kind and
//              address the file says, or the reload fails otherwise.
//   logs       name: str, lines?: int, follow?: bool,   lines: [LOGLINE], follow: bool
//              instance?: int, since?: str, after?: int
//              the last "lines" (default 50, at most 1,000) of the kept lines that
//              match: of instance "instance" (an index no instance has: none), read
//              within "since" (a duration back from now, "10m"), with "seq" above
//              "after" (version 3); with "follow", each later line of the worker (of
//              "instance" only, with it) as a {"log": LOGLINE} line as it is read
//   shutdown   -                                        message (sent once all workers
//                                                       stopped; then fdsupd exits)
//   version    -                                        version, protocol, state_format, pid,
//                                                       upgrades
//   rollout    names: [str], wait?: bool,               rollouts: [ROLLOUT], instances: [INSTANCE]
//              action?: "promote" | "abort"
//              action: checked for every name before any is acted on (all or none):
//              promote lets a held canary go on; abort stops an operator's rolling
//              restart and rolls back what it replaced. Not with "wait".
//              where each worker's rolling restart is; with "wait", the reply comes once
//              none of them has one in progress, with the reports of each one's last
//              rolling restart (as `restart` gives them) and "ok" true only if every
//              one replaced all its instances (else "error" says why, as `restart`
//              does). Without "wait", "ok" is true and the states say the rest.
//              This fdsupd image's memory: a rolling restart that finished before an
//              in-place upgrade is not known to the next image (state "none").
//   events     names?: [str], follow?: bool,            events: [EVENT], follow: bool
//              after?: int
//              the kept events (the last 1,000 fdsupd had, oldest first) whose "seq" is
//              above "after" (default 0: all), of the named workers and fdsupd's own
//              (worker null; all without names); with "follow", each later one as an
//              {"event": EVENT} line as it happens. A name must be a worker, or one
//              that kept events mention (removed since). A follower that does not read
//              is dropped as any client is (kMaxPendingOutput).
//   reopen-logs  -                                      reopened: [path], failed: [str]
//              (version 3) every "rotate:" file fdsupd has open is opened again at its
//              path (flushed, closed, opened: after an outside rotation, a new file);
//              "failed": "open PATH: why" for each that could not be (it goes on with
//              the file open before); "ok" false (and "error") if any failed.
//
//   INSTANCE   {"worker": "web", "index": 0, "state": "running", "pid": 1250 | null,
//               "previous_pid": 1234 | null, "ok": true, "message": "web[0]: started pid 1250"}
//   ROLLOUT    {"worker": "web", "state": "running" | "done" | "stopped" | "none",
//               "total": 4, "replaced": 2, "replacing": 1, "stop_reason": "web[1] failed" | null,
//               "phase": "canary" | "paused" | "rolling" | "aborted" | "stopped",
//               "canary": 1 (0: none), "pause": 30.0 (seconds) | null, "pause_left": 12.5 | null,
//               "reason": "rollback after: ..." | null}
//               (no phase... reason for "none"); pause_left: only while a canary holds
//               with a pause; reason: why fdsupd began it itself
//               done: every instance was replaced; stopped: a replacement failed, a later
//               command or the shutdown ended it; none: no rolling restart known (the
//               counts are then 0)
//   ADOPTED    {"socket": "web", "pid": 1234, "fd": 5, "bound": "127.0.0.1:8080"}: a socket
//               taken over from a running process (adopt, or adopt = { pid_file })
//   LOGLINE    {"seq": 812, "time": 1763900000.123456 (unix seconds),
//               "timestamp": "2025-11-23T12:13:20.123456Z", "worker": "web", "instance": 0,
//               "stream": "stdout" | "stderr", "text": "the line, without newline"}
//               time, timestamp: when the read that brought the line returned (the
//               same instant; timestamp RFC 3339, UTC, microseconds; version 3).
//               seq: numbered from 1 over all workers, across in-place upgrades
//               (version 3)
//   EVENT      {"seq": 42, "time": 1763900000.123 (unix seconds), "worker": "web" | null,
//               "instance": 0 | null, "pid": 1250 | null, "event": NAME, ...its fields}
//               "seq": numbered from 1, monotonic over fdsupd's life across in-place
//               upgrades (a restart of fdsupd starts again at 1). A text field is cut
//               at 1 KiB ("..." ends it), a list at 32 entries (the last: "... N more").
//               "worker": null for
//               fdsupd's own (reload, upgrade); "instance": null for a worker's
//               rollout; "pid": null where no process is meant. Durations are seconds
//               (fractions). NAME, a closed list (events/event_log.h), and its fields:
//     started            pid; restarts: int (the instance's count so far)
//     ready              pid; after: s since exec
//     start_failed       error (a start that failed before exec)
//     exited             pid; status: int | null (exit code), signal: int | null,
//                        reason: "stopped" (asked to: operator, scale, rollout, reload,
//                        shutdown) | "exit" (ended on its own, a success code) | "crash"
//                        (on its own, any other code or a signal) | "not_ready" (ended
//                        before it was ready) | "ready_timeout" | "watchdog" | "liveness"
//                        (killed by fdsupd for it; error: why) | "oom" (the kernel's OOM
//                        killer; limit: "memory_max 64M" or ""), ran: s
//     restart_scheduled  delay: s, restarts: int, detail: why
//     not_restarted      detail: "restart = never" | "restart = on-failure" | "shutting down"
//     failed             error (start limit, cannot exec, restart = never)
//     stopping           pid; signal: "TERM", timeout: s (stop_timeout), reason:
//                        "requested" | "ready_timeout" | "watchdog" | "liveness", error?
//     stop_timeout       pid; timeout: s (SIGKILL sent)
//     stopped            (the instance is stopped: its process exited, or it had none)
//     probe_failed       pid; probe: "ready" | "liveness", detail, failures: int
//                        (liveness: failures in a row); a ready probe's first failure
//                        of each start only
//     recycle            pid; limit: "recycle_memory" | "max_age", detail
//     draining           pid; delay: s (stop_delay: out of readiness, stop_signal after it)
//     on_demand_start    instance null; socket (where a connection waited), starts: int
//     idle_stop          instance null; idle: s (no connection that long: stopped)
//     rollout_began      instance null; total: int, reason: "restart" | "canary" |
//                        "liveness" | "recycle" | "rollback", detail?
//     rollout_step       pid (the new process, in service); step: int (instances
//                        replaced so far), total: int, old_pid: int | null
//     rollout_finished   instance null; replaced: int, total: int
//     rollout_stopped    instance null; replaced: int, total: int, reason
//     rollout_paused     instance null; canary: int, pause: s | null (until promoted)
//     rollout_promoted   instance null; by: "operator" | "pause"
//     rollout_aborted    instance null; reason (a rollout_stopped follows, then a
//                        rollout_began with reason "rollback" for what it replaced)
//     reload             worker null; ok: bool, added, removed, changed, scaled,
//                        sockets_added, sockets_removed, sockets_replaced: [str], error?
//     reload_refused     worker null; error, errors?: [str] (FILE:LINE:COL: message)
//     socket_adopted     worker null; socket, from_pid: int, fd: int, address (fdsupctl
//                        adopt, or a reload adding a socket with adopt = {pid_file})
//     upgrade_began      worker null; binary, upgrades: int (so far); the last event of
//                        the old image
//     upgrade_done       worker null; from, to (versions), upgrades: int; the first of
//                        the new image
//     upgrade_failed     worker null; error (refused, or the exec failed)
//     upgrade_rolled_back  worker null; error, upgrades: int
//
//   Errors the server sends on its own, then closes: permission denied (SO_PEERCRED),
//   too many connections. An idle client (no request in flight) is closed after the
//   idle timeout; a client that does not read its replies is closed once its unsent
//   output would exceed kMaxPendingOutput (a single reply larger than that by itself,
//   the metrics of 10,000 instances, is sent whole when nothing else waits).
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sys/result.h"

namespace fdsup::control {

// ordered: replies keep the order they are built in ("ok" first), as people read them.
using Json = nlohmann::ordered_json;

inline constexpr int kProtocolVersion = 3;
inline constexpr size_t kMaxRequestLine = 64 * 1024;
inline constexpr size_t kMaxPendingOutput = 8 * 1024 * 1024;

// One line -> a JSON object. Never throws; an error says what is wrong in words.
Result<Json> decode_line(std::string_view line);
// The same, except that the top-level member `skipped` is checked but not built (it is
// absent from the result): for a client that prints the line as it came and reads only
// its other members (a status of 10,000 instances is megabytes of "workers").
Result<Json> decode_line_without(std::string_view line, std::string_view skipped);

// A JSON value -> one line with its "\n". Never throws: invalid UTF-8 in strings (a
// worker's output may contain anything) is replaced by U+FFFD.
std::string encode_line(const Json& value);

// {"ok": false, "error": message}
Json error_reply(std::string message);

// Splits a byte stream into lines. A line longer than `max_line` (without its "\n") is
// reported once as too long and then skipped up to and including its newline, so the
// stream stays in sync.
class LineSplitter {
public:
    explicit LineSplitter(size_t max_line) : max_line_(max_line) {}

    struct Line {
        std::string text;     // without the "\n"; empty when too_long
        bool too_long = false;
    };

    void feed(std::string_view bytes);
    // The next complete line, if one is buffered.
    std::optional<Line> next();
    // Bytes buffered that do not yet form a line.
    size_t pending() const { return buffer_.size() - start_; }

private:
    std::string buffer_;
    size_t start_ = 0;         // first unconsumed byte in buffer_
    size_t max_line_;
    bool skipping_ = false;    // inside an over-long line: drop until its newline
    std::vector<size_t> overlong_at_;  // buffer offsets where a dropped long line was
};

// Request field readers: each says which field is wrong and why.
Result<std::string> string_field(const Json& request, const char* key);
Result<std::vector<std::string>> names_field(const Json& request, const char* key, bool required);
Result<std::optional<long long>> optional_int_field(const Json& request, const char* key);
Result<bool> bool_field(const Json& request, const char* key, bool default_value);

}  // namespace fdsup::control
