// Turns a worker's config into a ready-to-run SpawnPlan: expanded argv, the worker's
// environment (with the LISTEN_FDS protocol), its fd map, ids, limits and directory.
// Everything that may allocate or look up users happens here, in the parent, before
// vfork; a bare command name's PATH candidates are listed here and tried by the child
// (launcher/path_search.h), once it runs as the worker's user.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/model.h"
#include "config/placeholders.h"
#include "launcher/fd_map.h"
#include "launcher/spawn_plan.h"
#include "sys/result.h"

namespace fdsup {

using config::expand_placeholders;

// What every spawn shares, fixed when the supervisor starts.
struct SpawnContext {
    rlim_t nofile_soft_at_start = 1024;  // the default RLIMIT_NOFILE soft limit for workers
    pid_t supervisor_pid = 0;
    bool is_root = false;
    int close_fallback_limit = 1024;     // bound for the close loop without close_range
    std::string notify_socket;           // NOTIFY_SOCKET for workers that speak sd_notify
    std::string fd_socket;               // FDSUP_FD_SOCKET for workers with scm_rights or an fd store

    // Captures the current process: environment (filtered by filter_inherited_env),
    // pid, euid, and the fallback close loop's bound (from RLIMIT_NOFILE's hard limit;
    // the workers' own limit is read at each spawn). `nofile_soft_at_start` must be read
    // before the supervisor raises it.
    static SpawnContext capture(rlim_t nofile_soft_at_start);

    // The supervisor's env without its own protocol vars, in its order. Shared, never
    // changed once set: a PreparedSpawn points into it and keeps it alive, whatever
    // becomes of this context (or its copies).
    const std::shared_ptr<const std::vector<std::string>>& base_env() const { return base_env_; }
    // Sets it, sorted once here for every spawn: by key, the last entry of a key kept
    // (as a map would keep it).
    void set_base_env(std::vector<std::string> env);
    // The base env's entries in key order, each key once, as indices into it.
    const std::vector<size_t>& base_env_by_key() const { return base_env_by_key_; }

private:
    std::shared_ptr<const std::vector<std::string>> base_env_ = std::make_shared<const std::vector<std::string>>();
    std::vector<size_t> base_env_by_key_;
};

// Drops what belongs to the supervisor's own manager and must never reach a worker:
// LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES, NOTIFY_SOCKET, WATCHDOG_*, FDSUP_*.
std::vector<std::string> filter_inherited_env(const std::vector<std::string>& env);

// The stdio a spawn uses (supervisor fds); fds the worker maps to 0-2 take precedence.
struct StdioFds {
    int in = -1;
    int out = -1;
    int err = -1;
};

// An fd from the worker's fd store, handed to its next process after the configured
// sockets and named in LISTEN_FDNAMES.
struct StoredFdRef {
    std::string name;
    int fd;  // the supervisor's
};

// "FDSUP_FD_HTTP_ADMIN" for socket "http-admin".
std::string socket_env_name(const std::string& socket);

class PreparedSpawn {
public:
    // `socket_fds` maps socket names to the supervisor's fds for them; `stored` follow
    // the worker's highest socket fd (3 if it has none), in order.
    static Result<std::unique_ptr<PreparedSpawn>> make(const SpawnContext& context,
                                                       const config::WorkerConfig& worker,
                                                       int instance,
                                                       const std::map<std::string, int>& socket_fds,
                                                       const std::vector<StoredFdRef>& stored,
                                                       StdioFds stdio);

    SpawnPlan& plan() { return plan_; }
    const std::string& path() const { return path_; }  // the command as configured
    // For a bare command name: the PATH searched and the candidates in the order the
    // child tries them (empty for a path with a '/').
    const std::string& search_path() const { return search_path_; }
    const std::vector<std::string>& search_candidates() const { return search_candidates_; }
    const std::vector<std::string>& argv() const { return argv_strings_; }
    // Whether the worker is given NOTIFY_SOCKET.
    bool notify_socket_given() const { return notify_socket_given_; }
    // The worker's environment, as envp has it (a copy).
    std::vector<std::string> env() const;

    PreparedSpawn(const PreparedSpawn&) = delete;
    PreparedSpawn& operator=(const PreparedSpawn&) = delete;

private:
    PreparedSpawn() = default;
    Result<void> resolve_ids(const SpawnContext& context, const config::WorkerConfig& worker);
    void build_env(const SpawnContext& context, const config::WorkerConfig& worker, int instance,
                   const std::vector<StoredFdRef>& stored);
    void resolve_path();
    void link_plan(const SpawnContext& context, const config::WorkerConfig& worker);

    std::string path_;
    std::string search_path_;
    std::vector<std::string> search_candidates_;
    std::vector<const char*> search_candidate_ptrs_;
    std::vector<std::string> argv_strings_;
    bool notify_socket_given_ = false;
    std::shared_ptr<const std::vector<std::string>> inherited_env_;  // envp points into it too
    std::vector<std::string> env_strings_;  // fdsupd's own entries; envp_ merges them with the context's
    std::vector<char*> argv_;
    std::vector<char*> envp_;
    int pid_slot_index_[2] = {-1, -1};  // index in env_strings_ of "LISTEN_PID=...", "WATCHDOG_PID=..."
    std::optional<FdMapPlan> fd_map_;
    std::vector<RlimitValue> rlimits_;
    bool change_ids_ = false;
    uid_t uid_ = 0;
    gid_t gid_ = 0;
    std::vector<gid_t> groups_;
    std::vector<gid_t> groups_readback_;  // the child's getgroups buffer (it may not allocate)
    std::string user_name_, user_home_, user_shell_;
    std::string cwd_;
    SpawnPlan plan_{};
};

}  // namespace fdsup
