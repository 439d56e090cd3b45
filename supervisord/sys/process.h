// Process handles by pidfd: signalling and reaping without pid-reuse races.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "sys/result.h"

namespace fdsup {

struct ExitStatus {
    bool signaled = false;  // killed by `signal`; otherwise exited with `code`
    int code = 0;
    int signal = 0;
    // SIGKILLed by the kernel's OOM killer, as its cgroup counted (kill_mode = "cgroup"),
    // and the limit it hit, for messages ("memory_max 64M"; "" if none of its own).
    bool oom_kill = false;
    std::string oom_limit;

    // "exited with code 3", "killed by signal KILL", "killed by the OOM killer (memory_max 64M)"
    std::string describe() const;
    bool operator==(const ExitStatus&) const = default;
};

// pidfd_send_signal(2).
Result<void> pidfd_signal(int pidfd, int signal);

// waitid(P_PIDFD, WEXITED|WNOHANG): the status if the process has exited (and it is
// now reaped), nullopt while it runs.
Result<std::optional<ExitStatus>> pidfd_try_reap(int pidfd);

// waitid(P_PIDFD, WEXITED|WNOHANG|WNOWAIT): true once the process has exited, without
// reaping it (the zombie keeps its pid and process group id reserved meanwhile).
Result<bool> pidfd_has_exited(int pidfd);

// waitid(P_PIDFD, WEXITED): blocks until the process exits; for children known to be
// exiting already (a launch that failed after clone).
Result<ExitStatus> pidfd_reap(int pidfd);

}  // namespace fdsup

namespace fdsup {

// The parent of `pid`, from /proc/PID/stat (0 for a process without one).
Result<pid_t> parent_pid_of(pid_t pid);

}  // namespace fdsup

namespace fdsup {

// True once the process behind `pidfd` has exited (the pidfd polls readable). Unlike
// signal 0 it needs no permission over the process.
bool pidfd_exited(int pidfd);

}  // namespace fdsup
