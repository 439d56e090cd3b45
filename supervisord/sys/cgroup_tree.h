// kill_mode = "cgroup": the cgroup v2 directories fdsupd makes for its instances.
// (With limits, also the controllers they get: enable_subtree_controllers.)
//
// fdsupd makes one directory of its own, "fdsupd-PID", below the cgroup it runs in (a
// delegated subtree under systemd, the namespace's root in a container), and one per
// spawned instance below that. A process spawned into an instance's cgroup cannot
// leave it unless it runs as fdsupd's own uid (moving a process takes write access to
// the cgroup.procs files fdsupd owns): for a worker with a `user` of its own,
// `cgroup.kill` reaches every descendant, daemonized or not, and `cgroup.events` says
// when the last one is gone. Without limits no controller is enabled: the tree
// only groups processes, so it never breaks cgroup v2's no-internal-process rule.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sys/result.h"
#include "sys/unique_fd.h"

namespace fdsup {

class CgroupTree {
public:
    // Finds the cgroup v2 directory this process runs in (/proc/self/cgroup, resolved
    // through /proc/self/mountinfo) and makes "fdsupd-PID" below it. After an in-place
    // upgrade (same PID) the directory is already there and is taken as it is. Fails,
    // with the reason as the message, when there is no cgroup v2 hierarchy, it is not
    // writable, or the kernel has no cgroup.kill (before 5.14).
    static Result<std::unique_ptr<CgroupTree>> open();
    // Removes "fdsupd-PID" if it is empty (it is not while any instance's cgroup is
    // left, so an upgrade or rollback that destroys the tree removes nothing).
    ~CgroupTree();
    CgroupTree(const CgroupTree&) = delete;
    CgroupTree& operator=(const CgroupTree&) = delete;

    // ".../fdsupd-PID"
    const std::string& path() const { return path_; }
    // The cgroup fdsupd was started in, which holds it.
    const std::string& parent() const { return parent_; }
    // What open() found and cleared of fdsupds that are gone (see remove_stale_trees),
    // one line each, for the log.
    const std::vector<std::string>& stale_removed() const { return stale_removed_; }

    // Makes the cgroup `name` and opens it, O_DIRECTORY, for clone3's CLONE_INTO_CGROUP.
    // One already there is an error (EEXIST): it is not this process's to join (a name
    // is used once, so it was left by an earlier fdsupd that had this PID).
    Result<UniqueFd> create(const std::string& name) const;
    // Its cgroup.events, to watch for "populated 0" (see cgroup_populated).
    Result<UniqueFd> open_events(const std::string& name) const;
    // SIGKILL to every process in it, atomically: nothing forks its way out.
    Result<void> kill(const std::string& name) const;
    // The processes in it now (cgroup.procs).
    Result<std::vector<pid_t>> processes(const std::string& name) const;
    // rmdir: fails (EBUSY) while a process is left in it.
    Result<void> remove(const std::string& name) const;

private:
    CgroupTree(std::string parent, std::string path, UniqueFd dir)
        : parent_(std::move(parent)), path_(std::move(path)), dir_(std::move(dir)) {}
    Result<UniqueFd> open_file(const std::string& name, const char* file, int flags) const;

    std::string parent_;
    std::string path_;
    UniqueFd dir_;
    std::vector<std::string> stale_removed_;
};

// The "fdsupd-PID" directories below `parent` that an fdsupd killed before it could
// remove its own left behind: for each whose PID is not `own_pid` and not a live
// process (`alive`), every instance cgroup in it that still holds processes (a
// worker's daemonized child) is killed (cgroup.kill; all of a directory's are then
// waited for together, up to 500 ms, to empty), and each instance cgroup is removed,
// then the directory. One that belongs to a live process is never touched, nor
// anything in it that is not an instance cgroup's.
// Returns a line per directory: "removed .../fdsupd-123 (pid 123 is gone): 2 cgroups,
// 1 with processes killed", or why it could not be removed (the next start tries again).
std::vector<std::string> remove_stale_trees(const std::string& parent, pid_t own_pid,
                                            const std::function<bool(pid_t)>& alive);

// A cgroup (or /proc) file's whole text, and one write to a cgroup file.
Result<std::string> read_cgroup_file(const std::string& path);
Result<void> write_cgroup_file(const std::string& path, const std::string& text);
// The VALUE of KEY in a flat-keyed cgroup file ("KEY VALUE" lines: cpu.stat,
// memory.events, the v1 memory.oom_control); nullopt if it has none.
std::optional<uint64_t> cgroup_keyed_value(const std::string& text, std::string_view key);
// `word` is one of the space-separated words of `text` (cgroup.controllers).
bool lists_word(const std::string& text, const std::string& word);

// Where fdsupd moves itself, below "fdsupd-PID", when its instances need controllers.
inline constexpr const char* kSupervisorLeaf = "supervisor";

// Limits on cgroup v2 (cgroups/instance_limits.h): the controllers `names` ("memory",
// "pids", ...) given to the instances' cgroups below `tree` ("fdsupd-PID", below `own`,
// the cgroup fdsupd was started in). v2's rule that a cgroup with processes cannot
// give controllers to its children means fdsupd first moves itself into the leaf
// `tree`/supervisor; then "+NAME" goes into own's and tree's cgroup.subtree_control.
// Fails, naming the file and the errno, when own's cgroup.controllers lacks one
// (nothing delegated), or another process in `own` keeps it from giving any (EBUSY).
// Nothing is moved or written when every controller is enabled already.
Result<void> enable_subtree_controllers(const std::string& own, const std::string& tree,
                                        const std::vector<std::string>& names);

// Reads "populated 0|1" from a cgroup.events fd, from its start. Reading also rearms
// the fd: the kernel reports it with EPOLLPRI (and EPOLLERR) once after each change.
Result<bool> cgroup_populated(int events_fd);

// "web@2.17": the cgroup of worker web's instance 2, the 17th made by this fdsupd. And
// the check for a name read back from an upgrade state, which becomes a path: only
// WORKER@INDEX.SERIAL, WORKER made of letters, digits, '_', '.' and '-' (so never
// "..", never a '/').
std::string instance_cgroup_name(const std::string& worker, int index, uint64_t serial);
bool is_instance_cgroup_name(std::string_view name);

// The cgroup v2 directory a process runs in, from the contents of /proc/PID/cgroup and
// /proc/PID/mountinfo; pure, for the tests. Fails when no cgroup2 mount holds it.
Result<std::string> cgroup_dir_from(const std::string& proc_cgroup, const std::string& mountinfo);
// The same in the cgroup v1 hierarchy that holds `controller` ("memory", "blkio"; the
// hybrid layout): fails when there is none.
Result<std::string> cgroup_v1_dir_from(const std::string& proc_cgroup, const std::string& mountinfo,
                                       std::string_view controller);

}  // namespace fdsup
