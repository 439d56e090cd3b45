// The limits of kill_mode = "cgroup" workers (config ResourceLimits): where each
// controller is to be had, and the files that bound each instance.
//
// On cgroup v2 a controller fdsupd's own cgroup has (cgroup.controllers) is enabled
// for the instances' cgroups (sys/cgroup_tree.h: enable_subtree_controllers, which
// moves fdsupd into a leaf first), and each limit is a file of the instance's cgroup.
// On the hybrid layout (cgroup2 without controllers; memory, cpu, pids and blkio as v1
// hierarchies) fdsupd makes "fdsupd-PID" below its own cgroup in each v1 hierarchy a
// limit needs, and an instance gets a cgroup there under the same name as its v2 one
// ("web@0.17"), with the v1 files written; the launcher's child joins each (one
// cgroup.procs write per hierarchy, fds opened here) before exec. The names are all an
// upgrade needs to carry: the next image finds the same directories.
//
// A controller that cannot be had is an error at start or reload (naming the file and
// the errno), never a worker that silently runs unbounded.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cgroups/limit_files.h"
#include "config/model.h"
#include "sys/cgroup_tree.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace fdsup {

class InstanceLimits {
public:
    InstanceLimits() = default;
    // Removes each v1 "fdsupd-PID" that is empty (as CgroupTree does its v2 one).
    ~InstanceLimits();
    InstanceLimits(const InstanceLimits&) = delete;
    InstanceLimits& operator=(const InstanceLimits&) = delete;

    // Every controller the limits in `config` need is found, and made ready: enabled for
    // the instances on v2, "fdsupd-PID" made in its v1 hierarchy, and each file a limit
    // is written to checked for. Idempotent (a reload, an upgraded image: same PID).
    Result<void> prepare(const config::Config& config, const CgroupTree& tree);
    bool in_use() const { return !v2_.empty() || !v1_.empty(); }

    // A spawn's cgroup `name` (made below `tree`): its limits written, its v1 cgroups
    // made and bounded. Returns their cgroup.procs, open for the child to join.
    Result<std::vector<UniqueFd>> apply(const CgroupTree& tree, const std::string& name,
                                        const config::ResourceLimits& limits);
    // A reload changed a running instance's limits: each file written again, and the
    // kernel's "no limit" where one was taken away. A controller the instance was not
    // started with (a v1 cgroup it never joined) is left to its next start: the message
    // says so.
    Result<void> update(const CgroupTree& tree, const std::string& name, const config::ResourceLimits& before,
                        const config::ResourceLimits& after);
    // The instance is gone: its v1 cgroups removed (its v2 one is cgroups/instance_cgroups.h's).
    void remove(const std::string& name) const;

    // What its v1 memory cgroup says, where it has one: bytes in use, OOM kills.
    std::optional<uint64_t> v1_memory_current(const std::string& name) const;
    std::optional<uint64_t> v1_oom_kills(const std::string& name) const;

private:
    std::string v1_dir(Controller controller, const std::string& name) const;

    std::set<Controller> v2_;                   // enabled for the instances' v2 cgroups
    std::map<Controller, std::string> v1_;      // ".../memory/.../fdsupd-PID", per v1 hierarchy in use
    // Those an earlier config (or image) used that the limits need no longer: only
    // removed from, with the instances that still have a cgroup there.
    std::map<Controller, std::string> v1_leftover_;
};

// Writes each file below `dir(file)`. A write the kernel refuses for its order
// (memory.limit_in_bytes above memory.memsw.limit_in_bytes: EINVAL) is tried again
// after the others; "no limit" for a file that does not exist (swap accounting off)
// is nothing to do.
Result<void> write_limit_files(const std::vector<LimitFile>& files,
                               const std::function<std::string(const LimitFile&)>& dir);

// "oom_kill N" from memory.events (v2) or memory.oom_control (v1).
std::optional<uint64_t> oom_kill_count(const std::string& text);


}  // namespace fdsup
