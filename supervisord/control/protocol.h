// The control protocol: fdsupctl <-> fdsupd over the control socket. Shared by both.
//
// Wire format, version kProtocolVersion (bump it on every change):
//   1  the first
//   2  status: "used_by_scm_rights" (sockets), "scm_rights" (workers)
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
//
//   cmd        fields                                   reply fields (besides "ok")
//   status     names?: [str]                            supervisor, sockets, workers (SPEC);
//                                                       a socket's "used_by": the workers that
//                                                       inherit it (fds), "used_by_scm_rights":
//                                                       those that fetch it over SCM_RIGHTS;
//                                                       a worker's "fds" and "scm_rights" (the
//                                                       socket names it fetches)
//   start      names: [str]                             instances: [INSTANCE]
//   stop       names: [str]                             instances: [INSTANCE]
//   restart    names: [str]                             instances: [INSTANCE]
//   signal     name: str, signal?: str|int              signal: str, pids: [int]
//   scale      name: str, instances: int                worker, from, to, instances: [INSTANCE]
//   reload     -                                        config, workers{added, removed,
//                                                       changed, scaled, unchanged},
//                                                       sockets{added, removed, replaced},
//                                                       warnings: [str]
//                                                       on invalid config: errors: [str]
//   logs       name: str, lines?: int, follow?: bool    lines: [LOGLINE], follow: bool
//   shutdown   -                                        message (sent once all workers
//                                                       stopped; then fdsupd exits)
//   version    -                                        version, protocol, state_format, pid
//
//   INSTANCE   {"worker": "web", "index": 0, "state": "running", "pid": 1250 | null,
//               "previous_pid": 1234 | null, "message": "web[0]: started pid 1250"}
//   LOGLINE    {"time": 1763900000.123 (unix seconds), "worker": "web", "instance": 0,
//               "stream": "stdout" | "stderr", "text": "the line, without newline"}
//
//   Errors the server sends on its own, then closes: permission denied (SO_PEERCRED),
//   too many connections. An idle client (no request in flight) is closed after the
//   idle timeout; a client that does not read its replies is closed once its unsent
//   output exceeds kMaxPendingOutput.
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

inline constexpr int kProtocolVersion = 2;
inline constexpr size_t kMaxRequestLine = 64 * 1024;
inline constexpr size_t kMaxPendingOutput = 8 * 1024 * 1024;

// One line -> a JSON object. Never throws; an error says what is wrong in words.
Result<Json> decode_line(std::string_view line);

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
