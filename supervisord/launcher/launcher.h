// The parent side of spawning: clone(CLONE_VM|CLONE_VFORK|CLONE_PIDFD) (clone3 with
// CLONE_INTO_CGROUP as well for kill_mode = "cgroup") into
// run_spawn_child with every signal blocked, then either a running worker with its
// pidfd or the child's {stage, errno} turned into a message.
#pragma once

#include <sys/types.h>

#include "launcher/spawn_plan.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace fdsup {

struct LaunchedProcess {
    pid_t pid = -1;
    UniqueFd pidfd;  // CLOEXEC; readable when the process exits
};

class Launcher {
public:
    Launcher();
    ~Launcher();
    Launcher(const Launcher&) = delete;
    Launcher& operator=(const Launcher&) = delete;

    // Runs `plan`. On success the program has been exec'd (CLONE_VFORK returns only
    // after execve or _exit). On failure the child has been reaped and the error says
    // "exec /usr/bin/x: No such file or directory (stage: execve)" (describe_child_failure),
    // `permanent` when retrying cannot help (is_permanent_child_failure).
    Result<LaunchedProcess> launch(SpawnPlan& plan);

    // 0 while plans with a cgroup are spawned by clone3 straight into it; else the
    // errno that made the launcher fall back to clone plus a write to cgroup.procs.
    int clone3_errno() const { return clone3_errno_; }

    // 0 while children share the fd table until their CLOSE_RANGE_UNSHARE (a spawn's
    // cost flat in the supervisor's open fds); else the errno that made the launcher
    // fall back to copying the whole table at clone.
    int fd_table_unshare_errno() const { return fd_table_unshare_errno_; }

private:
    // The child runs on its own stack (CLONE_VM): it cannot clobber the parent's frames.
    // One stack serves every launch: the parent is suspended while a child uses it.
    void* stack_ = nullptr;
    size_t stack_size_ = 0;
    bool clone3_works_ = true;
    int clone3_errno_ = 0;
    bool fd_table_unshare_works_ = true;
    int fd_table_unshare_errno_ = 0;
};

}  // namespace fdsup
