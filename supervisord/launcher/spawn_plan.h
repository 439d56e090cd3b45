// SpawnPlan: everything the vfork child needs, flattened by the parent before vfork
// into plain pointers and integers. The child must not allocate, lock, log or run a
// destructor, so nothing here owns memory: the parent's PreparedSpawn (plan_builder.h)
// owns the storage and outlives the child's use of it.
#pragma once

#include <signal.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <type_traits>

#include "launcher/fd_map.h"

namespace fdsup {

// Where the child failed. Reported through ChildFailure in memory shared with the
// parent (CLONE_VM), then the child _exits with 127.
enum class ChildStage : int {
    none = 0,
    cgroup,        // joining the instance's cgroup where clone3 cannot spawn into it
    unshare_fds,   // taking its own copy of the shared fd table (CLONE_FILES)
    reset_signals,
    setsid,
    dup_fds,       // fd map step 1-2
    close_fds,     // fd map step 3-4
    setrlimit,
    setgroups,
    setresgid,
    setresuid,
    verify_ids,    // the ids read back are not those asked for
    pdeathsig,
    chdir,
    sigmask,
    execve,
};
const char* child_stage_name(ChildStage stage);

struct ChildFailure {
    ChildStage stage = ChildStage::none;
    int err = 0;
    // PATH search: the index in SpawnPlan::search_candidates of the candidate `err`
    // came from (-1: none in particular, the command was not found). After a successful
    // exec: the candidate that ran.
    int candidate = -1;
};

struct RlimitValue {
    int resource;
    rlim_t soft;
    rlim_t hard;
};

struct SpawnPlan {
    const char* path;              // what execve runs: the command as configured
    // A bare command name (no '/') is searched like execvp does, by the child once it
    // runs as the worker's user and in its working_dir: it execs each candidate
    // ("DIR/NAME", one per PATH entry) in turn (launcher/path_search.h). Empty for a
    // path with a '/', which is exec'd as is.
    const char* const* search_candidates;
    size_t search_candidate_count;
    const char* search_path;       // the PATH they come from, for messages
    char* const* argv;
    char* const* envp;
    // Env values the child fills with its own pid (LISTEN_PID, WATCHDOG_PID): only the
    // child knows it before execve. Unused slots are null.
    char* pid_slots[2];
    FdMapView fd_map;
    int umask_value;               // -1: keep the supervisor's
    const RlimitValue* rlimits;
    size_t rlimit_count;
    bool change_ids;               // setgroups/setresgid/setresuid (only as root)
    uid_t uid;
    gid_t gid;
    const gid_t* groups;           // sorted
    size_t group_count;
    gid_t* groups_readback;        // group_count + 1 entries, for the child's check
    int pdeathsig;                 // 0: none
    pid_t parent_pid;              // the supervisor, to detect dying before PR_SET_PDEATHSIG
    const char* cwd;               // null: keep the supervisor's
    sigset_t exec_sigmask;         // the signal mask the program starts with
    // Bit (sig - 1): the signals whose disposition the child puts back to SIG_DFL, those
    // that are not the default in the supervisor (set by the launcher).
    uint64_t reset_signals;
    int close_fallback_limit;      // close loop bound when close_range is unavailable
    // CLONE_FILES (set by the launcher): the child starts on the supervisor's own fd
    // table, so copying it costs nothing at clone, and its first table operation is
    // close_range(keep_fds_below, ~0U, CLOSE_RANGE_UNSHARE), which copies only the fds
    // below that (the kernel's dup_fd stops there): a spawn then costs the same with
    // 10 or 10,000 fds open in the supervisor. Without it (kernels before 5.9, or a
    // seccomp filter refusing close_range) the clone copies the whole table and the fd
    // map closes it all.
    bool fd_table_shared = false;
    // 1 + the highest fd the child reads after the unshare: the fd map's sources (the
    // cgroup writes come before it, on the shared table).
    int keep_fds_below = 0;
    // kill_mode = "cgroup": the instance's cgroup directory, which clone3 spawns the
    // child straight into (-1: none). Where clone3 is missing (before 5.7, or refused by
    // a seccomp filter, as container runtimes' default profiles do), the launcher opens
    // its cgroup.procs here instead and the child moves itself before anything else.
    int cgroup_fd = -1;
    int cgroup_procs_fd = -1;
    // Limits on the hybrid layout (cgroups/instance_limits.h): the cgroup.procs of the
    // instance's cgroup in each v1 hierarchy, joined by the child first of all.
    const int* v1_procs_fds = nullptr;
    size_t v1_procs_count = 0;
    ChildFailure* failure;         // written by the child on failure
};
static_assert(std::is_trivially_destructible_v<SpawnPlan>,
              "the vfork child must never run a destructor");

// The child's entry point (clone's fn). Never returns on success.
int run_spawn_child(void* plan);

}  // namespace fdsup
