// A rolling restart in progress: the plan (rollout_plan.h) and, per slot, which
// processes are involved. Owned by the worker (Worker::rollout) and by the waiter
// that drives it (Supervisor::advance_rollout in rolling_restart.cpp).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "supervisor/operation.h"
#include "rollout/rollout_plan.h"

namespace fdsup {

struct RollingRestart {
    struct Slot {
        int index = 0;
        uint64_t old_id = 0;     // the instance in service when the rollout began
        pid_t old_pid = -1;      // its process then (-1: none; the slot is started in place)
        uint64_t new_id = 0;     // the replacement (== old_id when started in place)
        pid_t new_pid = -1;
        bool in_place = false;   // nothing was running: the instance itself is started
        std::string failure;     // why the replacement failed
    };

    RollingRestart(std::string worker, uint64_t generation, std::vector<Slot> slots, int max_surge)
        : worker(std::move(worker)), generation(generation), slots(std::move(slots)),
          plan(this->slots.size(), max_surge) {}

    std::string worker;
    uint64_t generation;  // the worker's generation when it began: a later command ends it
    std::vector<Slot> slots;
    RolloutPlan plan;
    std::string stop_reason;  // why the rollout stopped early ("web[1] failed", "fdsupd is shutting down")
    ProgressFn progress;
    std::function<void(std::vector<InstanceReport>)> then;
};

}  // namespace fdsup
