// What a failed spawn means: the message the launcher reports.
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

}  // namespace fdsup
