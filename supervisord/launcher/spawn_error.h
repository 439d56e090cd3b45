// What a failed spawn means: the message the launcher reports, and whether trying again
// can help (the supervisor stops retrying a worker whose failures cannot mend).
#pragma once

#include <string>

#include "launcher/spawn_plan.h"

namespace fdsup {

// The launcher's message for a child that reported `failure` while running `plan`:
//   "exec /usr/bin/x: No such file or directory (stage: execve)"
// and for a bare command name searched in PATH, the candidate the error came from, or
// the PATH it was not found in:
//   "exec python3: Permission denied (stage: execve; /root/bin/python3; searched PATH=/root/bin:/usr/bin)"
//   "exec app: No such file or directory (stage: execve; searched PATH=/usr/local/bin:/usr/bin)"
std::string describe_child_failure(const SpawnPlan& plan, const ChildFailure& failure);

// True if a spawn that failed at `stage` with `err` cannot succeed when simply tried
// again: until the config or the system changes, it fails the same way. The program
// cannot be run (ENOENT, EACCES, ENOEXEC, ENOTDIR, ELOOP, EISDIR, ENAMETOOLONG, EPERM,
// E2BIG, EINVAL, ELIBBAD at execve), its working_dir cannot be entered, its user or
// group cannot be taken on, or its limits cannot be set. Everything else is transient
// (EAGAIN from RLIMIT_NPROC, ENOMEM, EMFILE, ENFILE, ETXTBSY, EIO, ...), and so is any
// errno not named here: retrying a worker that might start is the safer mistake.
bool is_permanent_child_failure(ChildStage stage, int err);

}  // namespace fdsup
