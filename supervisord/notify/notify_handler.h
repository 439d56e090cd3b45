// What the workers tell the supervisor over the notify socket (SPEC "Notify socket"):
// each datagram from notify_socket.h is parsed (notify_message.h) and applied to the
// sender's instance: READY=1, RELOADING=1, STOPPING=1, STATUS=, WATCHDOG=1,
// WATCHDOG=trigger, WATCHDOG_USEC=, EXTEND_TIMEOUT_USEC=, FDSTORE=1, FDSTOREREMOVE=1.
//
// The sender is identified by the pid the kernel attached (SCM_CREDENTIALS), never by
// anything in the message: a worker's main process, or — with notify_access = "all" —
// any process whose parent chain leads to one (read from /proc; a pid reused between
// the send and the check could be misattributed, the same limit systemd's
// NotifyAccess=all has without cgroups). Everything else is dropped and counted, with
// at most 20 log lines per 10 s and a summary line after a flood.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <cstdint>
#include <string>
#include <vector>

#include "logging/log_rate_limit.h"
#include "loop/uv_handles.h"
#include "notify/notify_message.h"
#include "notify/notify_socket.h"
#include "supervisor/supervisor.h"

namespace fdsup::notify {

class NotifyHandler {
public:
    NotifyHandler(uv_loop_t* loop, Supervisor& supervisor);
    NotifyHandler(const NotifyHandler&) = delete;
    NotifyHandler& operator=(const NotifyHandler&) = delete;

    // One datagram from the notify socket; anything wrong is dropped (fds closed) and
    // counted.
    void handle(Datagram datagram);

    // Datagrams dropped (unknown sender, malformed, refused), across upgrades.
    uint64_t dropped() const { return dropped_; }
    void restore_dropped(uint64_t count) { dropped_ = count; }

private:
    struct Sender {
        Instance* instance = nullptr;
        std::string refusal;  // why the sender may not notify, when instance is null
    };
    Sender find_sender(pid_t pid) const;
    void drop(pid_t pid, const std::string& who, const std::string& why);
    // FDSTORE=1 / FDSTOREREMOVE=1, as systemd takes them.
    void handle_fd_store(Instance& instance, const NotifyMessage& message, std::vector<UniqueFd> fds);

    Supervisor& supervisor_;
    uint64_t dropped_ = 0;
    LogRateLimit drop_log_{20, std::chrono::seconds(10)};
    Timer drop_summary_;
};

}  // namespace fdsup::notify
