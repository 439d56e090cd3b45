// fdsupd assembled: the loop, the supervisor and every server around it, each a member
// in start-up order, so that shutdown is the reverse. The supervisor knows none of the
// servers; they call into it, and this wires them:
//   notify socket  -> notify handler (notify/)   -> supervisor
//   fd socket      -> fd server (fdserver/)      -> supervisor
//   control socket -> control commands (control/) -> supervisor, upgrader, shutdown
//   metrics        -> the exposition (control/metrics.h)
//   signals: TERM/INT shutdown, HUP reload, USR2 upgrade, CHLD orphans (PID 1, subreaper)
//   the service manager: READY=1, STATUS=, STOPPING=1, WATCHDOG=1, its fd store
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "control/commands.h"
#include "control/control_server.h"
#include "control/metrics_server.h"
#include "daemon/options.h"
#include "daemon/startup.h"
#include "fdserver/fd_server.h"
#include "loop/event_loop.h"
#include "loop/uv_handles.h"
#include "notify/notify_handler.h"
#include "notify/notify_socket.h"
#include "supervisor/supervisor.h"
#include "upgrade/upgrader.h"

namespace fdsup::daemon {

class Daemon {
public:
    // The loop and the supervisor, from what start-up loaded and bound.
    Daemon(const Options& options, Startup startup);
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Restores the state (when restoring), opens the control, notify and fd sockets
    // (adopted from the previous image when restoring) and the metrics endpoint, and
    // installs the signal handlers. An error means fdsupd cannot run.
    Result<void> open();
    // A restored image answers its upgrade and applies a configuration changed since;
    // a fresh one starts every worker and tells its manager it is ready. Then the loop
    // runs until the shutdown is over. Returns fdsupd's exit status: 0.
    int run();
    // The state an upgrade handed over (restoring, until it has settled), for a rollback.
    std::optional<StateDocument> take_state() { return std::move(startup_.state); }

private:
    void open_signals();
    void start_manager_watchdog();
    // Every way to shut down (SIGTERM, SIGINT, `fdsupctl shutdown`) ends here;
    // `on_stopped` runs once all workers have stopped, before the loop ends.
    void begin_shutdown(std::function<void()> on_stopped);
    void reload_on_signal();
    // After a restore: the upgrade's client answered, the configuration file reloaded
    // if it changed since the previous image loaded it.
    void finish_restore();
    // An upgrade's own event (fdsupd's, no worker) in the supervisor's journal.
    void upgrade_event(EventKind kind, EventFields fields);
    // The fds an upgrade's previous image handed over for the servers (-1: none).
    int inherited(const char* key) const;
    // What the daemon's own parts carry across an upgrade, beside the supervisor's state.
    void write_state(JsonWriter& w, std::vector<int>& keep) const;

    const Options& options_;
    Startup startup_;  // the state, until the restore has settled; the manager
    EventLoop loop_;
    Supervisor supervisor_;
    notify::NotifyHandler notify_handler_;
    std::vector<std::function<void()>> on_stopped_;
    control::CommandContext commands_;
    std::unique_ptr<control::ControlServer> control_;
    std::unique_ptr<notify::NotifySocket> notify_;
    std::unique_ptr<fdserver::FdServer> fd_server_;
    std::unique_ptr<control::MetricsServer> metrics_;
    std::unique_ptr<upgrade::Upgrader> upgrader_;
    std::vector<std::unique_ptr<SignalWatch>> signals_;
    Timer watchdog_;  // the service manager's (WatchdogSec=)
    std::function<void()> ping_watchdog_;
    Timer settle_;  // a second after a restore: the state document and the warm heap go
};

}  // namespace fdsup::daemon
