// fdsupd's own service manager (systemd with Type=notify, or anything that passes
// NOTIFY_SOCKET): the sd_notify protocol spoken from this side, without libsystemd.
// One datagram per message to $NOTIFY_SOCKET (a path, or "@name" for an abstract
// socket); nothing is sent when it is unset. The variable stays in fdsupd's environment
// (workers never see it: plan_builder filters it), so an in-place upgrade's next image
// finds it too.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace fdsup {

class ManagerNotify {
public:
    ManagerNotify();  // reads $NOTIFY_SOCKET
    bool enabled() const { return !address_.empty(); }
    // The manager's watchdog timeout for this process (WATCHDOG_USEC), if it wants
    // WATCHDOG=1 pings from us: as sd_watchdog_enabled() decides, WATCHDOG_PID, when
    // set, must be our pid (the variables may have been meant for a parent).
    static std::optional<std::chrono::microseconds> watchdog_timeout();
    // Sends `message` ("READY=1\nSTATUS=..."), with `fd` in SCM_RIGHTS if it is >= 0;
    // false if it could not be sent (logged once).
    bool send(const std::string& message, int fd = -1);
    // The manager's fd store size for us ($FDSTORE, which systemd sets from
    // FileDescriptorStoreMax= since v254; fdsupd.service sets it for older ones): 0 if
    // there is none, and fdsupd then parks nothing there.
    static size_t fd_store_max();
    // FDSTOREREMOVE=1 for the fds stored under `name`.
    bool unpark(const std::string& name) { return send("FDSTOREREMOVE=1\nFDNAME=" + name); }
    // "RELOADING=1\nMONOTONIC_USEC=...": what systemd wants before a reload or re-exec.
    static std::string reloading_message();

private:
    std::string address_;
    bool warned_ = false;
};

}  // namespace fdsup
