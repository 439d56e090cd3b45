// The sd_notify message format (sd_notify(3)): newline-separated KEY=VALUE
// assignments in one datagram. Pure parsing, no I/O; the receiver is notify_socket.h.
//
// Stricter than systemd on purpose, because the sender may be any process that can
// reach the socket: a datagram with a NUL byte, a line without '=', a key that is not
// [A-Z0-9_]+, a known key with a value it cannot have (READY=yes, EXTEND_TIMEOUT_USEC=x)
// or a STATUS that is not printable UTF-8 is rejected as a whole. Unknown keys are
// ignored (listed in `ignored_keys`), as systemd does, so newer clients keep working.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sys/result.h"

namespace fdsup::notify {

// systemd's own limit (NOTIFY_BUFFER_MAX = PIPE_BUF): a longer datagram is truncated
// by the receiver and dropped.
constexpr size_t kMaxMessageSize = 4096;

enum class WatchdogRequest { none, ping, trigger };

struct NotifyMessage {
    bool ready = false;          // READY=1
    bool reloading = false;      // RELOADING=1
    bool stopping = false;       // STOPPING=1
    bool barrier = false;        // BARRIER=1 (sd_notify_barrier: the fd it carries is closed)
    bool fd_store = false;       // FDSTORE=1
    bool fd_store_remove = false;  // FDSTOREREMOVE=1
    WatchdogRequest watchdog = WatchdogRequest::none;  // WATCHDOG=1 | WATCHDOG=trigger
    std::optional<std::string> status;              // STATUS=
    std::optional<std::string> fd_name;             // FDNAME=
    std::optional<bool> fd_poll;                    // FDPOLL=0|1
    std::optional<uint64_t> extend_timeout_usec;    // EXTEND_TIMEOUT_USEC=
    std::optional<uint64_t> watchdog_usec;          // WATCHDOG_USEC= (new watchdog timeout)
    std::optional<uint64_t> monotonic_usec;         // MONOTONIC_USEC= (sent with RELOADING=1)
    std::optional<pid_t> main_pid;                  // MAINPID=
    std::optional<int> errno_value;                 // ERRNO=
    std::vector<std::string> ignored_keys;          // understood by nobody here

    bool operator==(const NotifyMessage&) const = default;
};

// Parses one datagram's payload. The error says what was wrong ("line 2: READY must be 1").
Result<NotifyMessage> parse_notify_message(std::string_view datagram);

}  // namespace fdsup::notify
