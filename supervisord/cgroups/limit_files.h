// What a worker's limits (config ResourceLimits, SPEC "Resources") become in cgroup
// files, as systemd writes MemoryMax=, CPUQuota=, TasksMax= and the rest. Pure: the
// files are written by cgroups/instance_limits.h.
//
// On cgroup v2 each limit is a file of the instance's own cgroup. On the hybrid layout
// (cgroup2 without controllers, the controllers as v1 hierarchies) each controller is a
// hierarchy of its own, and the instance gets a cgroup in each one a limit needs; the
// files differ, and two limits have no v1 form: memory_high (an error there, never a
// silently unbounded worker), and memory_swap_max alone (memsw bounds memory + swap
// together, so it needs memory_max beside it).
#pragma once

#include <set>
#include <string>
#include <vector>

#include "config/model.h"
#include "sys/result.h"

namespace fdsup {

enum class Controller { memory, cpu, pids, io };
inline constexpr Controller kAllControllers[] = {Controller::memory, Controller::cpu, Controller::pids,
                                                 Controller::io};
// "memory", "cpu", "pids", "io" (cgroup.controllers); v1: "memory", "cpu", "pids", "blkio".
const char* v2_name(Controller controller);
const char* v1_name(Controller controller);

// The controllers `limits` need.
std::set<Controller> controllers_needed(const config::ResourceLimits& limits);

struct LimitFile {
    Controller controller;
    std::string file;   // "memory.max"
    std::string value;  // "67108864"
    std::string key;    // the config key it comes from, for messages: "memory_max"
};

// The files to write, in order: one per limit that is set (a new cgroup starts without
// limits), and, for the controllers in `reset`, the kernel's "no limit" for each one
// that is not (a reload that takes a limit away from running instances).
std::vector<LimitFile> v2_limit_files(const config::ResourceLimits& limits, const std::set<Controller>& reset = {});
// The same for v1 hierarchies; fails for what v1 cannot express.
Result<std::vector<LimitFile>> v1_limit_files(const config::ResourceLimits& limits,
                                              const std::set<Controller>& reset = {});

// "64M", "1.5G", "512K", "123B": a measured size for messages (what an instance
// used), base 1024. A configured size is shown as written: config::size_text.
std::string format_size(uint64_t bytes);

}  // namespace fdsup
