// Before an upgrade execs a new binary, the binary is tried out as a child process:
// `BINARY --check-config -c CONFIG --state-formats` must accept the configuration (and
// say so) and list the state format this image writes. One run, not one per check: the
// binary's start-up is most of what a pre-flight costs. A binary that cannot be
// executed, fails either check, or hangs (kPreflightTimeout) is refused, and the running
// supervisor never notices. Runs on the loop, never blocking it. The child is spawned
// through the launcher (launcher/launcher.h), with /dev/null for stdin and the output
// pipe for stdout and stderr, and nothing else of fdsupd's; like a worker, in a session
// of its own (a Ctrl-C at a terminal running fdsupd in the foreground does not reach
// it), and a failure names its stage ("cannot run PATH: ... (stage: execve)").
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <chrono>
#include <functional>
#include <string>

#include "sys/result.h"

namespace fdsup::upgrade {

constexpr auto kPreflightTimeout = std::chrono::seconds(10);

using PreflightDone = std::function<void(Result<void>)>;

// `pid` is a pre-flight child still running (reaped through its pidfd, not by anyone
// reaping orphans).
bool is_preflight_child(pid_t pid);

// `done` is called once, from the loop (never from within this call).
void run_preflight(uv_loop_t* loop, const std::string& binary, const std::string& config_path, int state_version,
                   PreflightDone done);

}  // namespace fdsup::upgrade
