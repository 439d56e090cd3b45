// What the operator's lifecycle commands (start, stop, restart, scale, reload) report:
// per instance, what happened, and whether the command as a whole succeeded. These
// commands wait for the processes (a stop for the exit, a start for readiness), so
// they finish through a callback, with progress messages on the way.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "table/instance.h"

namespace fdsup {

struct InstanceReport {
    std::string worker;
    int index = 0;
    InstanceState state = InstanceState::stopped;
    pid_t pid = -1;           // the instance's process now, -1 if none
    pid_t previous_pid = -1;  // its process when the command began, -1 if none
    bool ok = true;           // false: this instance did not reach what was asked
    std::string message;      // "web[0]: pid 1234 exited with code 0 after 1.2s; stopped"
};

struct OperationResult {
    bool ok = true;
    std::string error;        // set when !ok: why, in one line
    std::vector<InstanceReport> instances;
};

struct ReloadResult {
    bool ok = true;
    std::string error;
    std::vector<std::string> config_errors;  // "FILE:LINE:COL: message", when invalid
    std::string config_path;
    std::vector<std::string> workers_added, workers_removed, workers_changed, workers_scaled,
        workers_unchanged;
    std::vector<std::string> workers_retuned;  // limits or recycling changed live
    std::vector<std::string> sockets_added, sockets_removed, sockets_replaced, sockets_updated;
    std::vector<std::string> warnings;
    std::vector<InstanceReport> instances;
    // Sockets taken over from running processes instead of bound (fdsupctl adopt, and
    // added sockets with adopt = { pid_file }).
    struct Adopted {
        std::string socket;
        int pid = 0;
        int fd = -1;
        std::string bound;
    };
    std::vector<Adopted> sockets_adopted;
};

// restart --canary N --pause D (and reload's): replace `count` instances of each
// worker that rolls, then hold for `pause` (0: until `rollout promote`).
struct CanaryOptions {
    int count = 0;  // 0: no canary
    config::Duration pause{};
};

using ProgressFn = std::function<void(const std::string& message)>;
using OperationDoneFn = std::function<void(OperationResult)>;
using ReloadDoneFn = std::function<void(ReloadResult)>;

}  // namespace fdsup
