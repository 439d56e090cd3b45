// Orphans: processes fdsupd never started, reparented to it because it is PID 1 (of a
// container's PID namespace) or a subreaper (PR_SET_CHILD_SUBREAPER, --subreaper) and
// their own parent exited first (a worker's double-forked daemon, say). Nobody else
// will wait for them: left alone they stay zombies forever.
#pragma once

#include <sys/types.h>

#include <functional>
#include <utility>
#include <vector>

#include "sys/process.h"

namespace fdsup {

// Reaps every exited child `ours` does not claim (the children fdsupd reaps itself,
// through their pidfds: workers, pre-flights), and only those: never waitpid(-1),
// which could take a worker's exit status from under its pidfd. The children are
// listed from /proc/self/task/<pid>/children; each unclaimed one is waited for with
// WNOHANG (a running one is left alone).
std::vector<std::pair<pid_t, ExitStatus>> reap_orphans(const std::function<bool(pid_t)>& ours);

}  // namespace fdsup
