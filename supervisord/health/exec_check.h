// The check of `exec = [argv]`: the command runs as the worker's own processes do
// (launcher/, as its user and group, in its working_dir, with its environment, limits
// and umask, FDSUP_WORKER and FDSUP_INSTANCE set), but with none of its sockets (no
// `fds`, no `scm_rights`: LISTEN_FDS is not set), no NOTIFY_SOCKET, no fd socket, and
// stdin, stdout and stderr on /dev/null. Exit 0 passes; anything else fails:
// "exit status 1", "killed by SIGTERM", "timed out after 1.0s", or the launcher's
// message when it could not run ("exec /usr/bin/x: No such file or directory (stage: execve)").
//
// Processes: the launcher starts each in its own session and process group (setsid),
// never in the worker's cgroup. At the timeout, or when a check is destroyed before its
// result, the whole group gets SIGKILL (a shell's children too). When the probe exits,
// whatever it left in its group is SIGKILLed as well, before the probe is reaped (the
// zombie pins the group id). A process that made a session or group of its own escapes
// that, as it would escape kill_mode = "group".
//
// Reaping outlives the checks: ExecChecks owns every probe process until it is reaped
// through its pidfd (watched on the loop, waitid(P_PIDFD)), so a cancelled or timed-out
// check leaves no zombie. The orphan reaper must leave these children alone (owns()).
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/model.h"
#include "health/probe_check.h"
#include "launcher/launcher.h"
#include "launcher/plan_builder.h"
#include "loop/uv_handles.h"
#include "sys/unique_fd.h"

namespace fdsup::health {

class ExecChecks {  // one per supervisor
public:
    // `launcher`, `context` and the /dev/null fd `null_fd` (O_RDWR) must outlive this.
    ExecChecks(uv_loop_t* loop, Launcher& launcher, const SpawnContext& context, int null_fd);
    // Kills and reaps every probe process (blocking); the checks still alive report nothing.
    ~ExecChecks();
    ExecChecks(const ExecChecks&) = delete;
    ExecChecks& operator=(const ExecChecks&) = delete;

    // Starts `argv` (placeholders expanded as in `command`: {instance}, {name}; {fd:NAME}
    // gives -1, the probe has no sockets) for instance `instance` of `worker`. An error
    // (an unknown user, a program that cannot be exec'd: the launcher says so at once) is
    // reported through `done` too, from a later loop turn.
    std::unique_ptr<ProbeCheck> start(const config::WorkerConfig& worker, int instance,
                                      const std::vector<std::string>& argv,
                                      std::chrono::milliseconds timeout, ProbeDone done);

    // A probe process not yet reaped: the orphan reaper must leave it alone.
    bool owns(pid_t pid) const { return processes_.contains(pid); }
    // Probe processes not yet reaped (tests, metrics).
    size_t running() const { return processes_.size(); }

    // Before an in-place upgrade's exec: every probe process is SIGKILLed and reaped
    // (blocking: they die at once), so the new image inherits no child it does not know.
    // Their checks fail on a later loop turn, if the loop runs again (the exec failed).
    void kill_all();

private:
    class Check;
    struct Process {
        pid_t pid = -1;
        UniqueFd pidfd;
        std::optional<FdWatch> watch;  // after pidfd: destroyed first
        Check* check = nullptr;        // null once the check is gone, timed out or killed
    };

    // The check is gone or timed out: kill the process; it is reaped when it exits.
    void abandon(pid_t pid);
    void on_exit(pid_t pid);
    void kill_and_reap_all(bool report);

    uv_loop_t* loop_;
    Launcher& launcher_;
    const SpawnContext& context_;
    int null_fd_;
    std::map<pid_t, std::unique_ptr<Process>> processes_;
};

}  // namespace fdsup::health
