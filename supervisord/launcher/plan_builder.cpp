#include "launcher/plan_builder.h"

#include "launcher/path_search.h"
#include "sys/users.h"

#include <grp.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <climits>

extern char** environ;

namespace fdsup {
namespace {

// Env keys whose value the vfork child fills with its own pid.
constexpr const char* kPidKeys[] = {"LISTEN_PID", "WATCHDOG_PID"};
constexpr size_t kPidDigitsRoom = 21;  // 20 digits + NUL

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// A failure retrying cannot mend (see Error::permanent).
std::unexpected<Error> permanent_failure(std::string message) {
    return std::unexpected<Error>(Error{std::move(message), 0, true});
}

}  // namespace

std::vector<std::string> filter_inherited_env(const std::vector<std::string>& env) {
    static const char* const kDropped[] = {"LISTEN_FDS=", "LISTEN_PID=", "LISTEN_FDNAMES=",
                                           "NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID=",
                                           "FDSTORE=", "FDSUP_"};
    std::vector<std::string> kept;
    for (const auto& entry : env) {
        bool drop = std::any_of(std::begin(kDropped), std::end(kDropped),
                                [&](const char* prefix) { return starts_with(entry, prefix); });
        if (!drop) kept.push_back(entry);
    }
    return kept;
}

SpawnContext SpawnContext::capture(rlim_t nofile_soft_at_start) {
    SpawnContext context;
    std::vector<std::string> env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) env.emplace_back(*e);
    context.set_base_env(filter_inherited_env(env));
    context.nofile_soft_at_start = nofile_soft_at_start;
    context.supervisor_pid = getpid();
    context.is_root = geteuid() == 0;
    struct rlimit nofile{};
    getrlimit(RLIMIT_NOFILE, &nofile);
    // The fallback close loop runs only where close_range is refused; bound it by the
    // hard limit (no fd can be higher), capped so a huge limit cannot make it crawl.
    rlim_t bound = nofile.rlim_max == RLIM_INFINITY ? (1u << 20) : nofile.rlim_max;
    context.close_fallback_limit = static_cast<int>(std::min<rlim_t>(bound, 1u << 20));
    return context;
}

void SpawnContext::set_base_env(std::vector<std::string> env) {
    base_env_ = std::make_shared<const std::vector<std::string>>(std::move(env));
    const std::vector<std::string>& entries = *base_env_;
    auto key_of = [&](size_t i) { return std::string_view(entries[i]).substr(0, entries[i].find('=')); };
    base_env_by_key_.resize(entries.size());
    for (size_t i = 0; i < entries.size(); ++i) base_env_by_key_[i] = i;
    std::stable_sort(base_env_by_key_.begin(), base_env_by_key_.end(),
                     [&](size_t a, size_t b) { return key_of(a) < key_of(b); });
    // unique keeps the first of a run: reversed, the first is the last inherited.
    auto same_key = [&](size_t a, size_t b) { return key_of(a) == key_of(b); };
    std::reverse(base_env_by_key_.begin(), base_env_by_key_.end());
    base_env_by_key_.erase(std::unique(base_env_by_key_.begin(), base_env_by_key_.end(), same_key),
                           base_env_by_key_.end());
    std::reverse(base_env_by_key_.begin(), base_env_by_key_.end());
}

std::string socket_env_name(const std::string& socket) {
    std::string name = "FDSUP_FD_";
    for (unsigned char c : socket) name += c == '-' ? '_' : static_cast<char>(std::toupper(c));
    return name;
}

Result<std::unique_ptr<PreparedSpawn>> PreparedSpawn::make(const SpawnContext& context,
                                                           const config::WorkerConfig& worker,
                                                           int instance,
                                                           const std::map<std::string, int>& socket_fds,
                                                           const std::vector<StoredFdRef>& stored,
                                                           StdioFds stdio) {
    std::unique_ptr<PreparedSpawn> spawn(new PreparedSpawn());
    if (worker.command.empty()) return fail("empty command");

    for (const auto& arg : worker.command) spawn->argv_strings_.push_back(expand_placeholders(arg, worker, instance));

    // The fd map: stdio first, then the worker's sockets, which win on 0-2.
    std::map<int, int> moves{{0, stdio.in}, {1, stdio.out}, {2, stdio.err}};
    for (const auto& [target, socket] : worker.fds) {
        auto it = socket_fds.find(socket);
        if (it == socket_fds.end()) return fail("socket " + socket + " is not open");
        moves[target] = it->second;
    }
    int next_target = std::max(3, worker.fds.empty() ? 3 : worker.fds.rbegin()->first + 1);
    for (const auto& fd : stored) moves[next_target++] = fd.fd;
    std::vector<FdMapEntry> entries;
    for (const auto& [target, source] : moves) entries.push_back({source, target});
    auto fd_map = FdMapPlan::make(std::move(entries));
    if (!fd_map) return std::unexpected(fd_map.error());
    spawn->fd_map_ = std::move(*fd_map);

    if (auto ids = spawn->resolve_ids(context, worker); !ids) return std::unexpected(ids.error());
    spawn->build_env(context, worker, instance, stored);
    spawn->resolve_path();

    // RLIMIT_NOFILE goes back to what the supervisor was started with: the supervisor
    // raised its own soft limit for itself, not for its workers (select() users break).
    bool nofile_set = false;
    for (const auto& limit : worker.rlimits) {
        spawn->rlimits_.push_back({limit.resource, limit.value, limit.value});
        nofile_set |= limit.resource == RLIMIT_NOFILE;
    }
    if (!nofile_set) {
        // Read at each spawn (one cheap syscall): an operator who raised fdsupd's limits
        // from outside (prlimit --pid) has the workers started from then on get them.
        struct rlimit current{};
        getrlimit(RLIMIT_NOFILE, &current);
        spawn->rlimits_.push_back({RLIMIT_NOFILE, std::min(context.nofile_soft_at_start, current.rlim_max),
                                   current.rlim_max});
    }

    spawn->link_plan(context, worker);
    return spawn;
}

Result<void> PreparedSpawn::resolve_ids(const SpawnContext& context, const config::WorkerConfig& worker) {
    if (!worker.user && !worker.group) return {};
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (worker.user) {
        auto user = find_user(*worker.user);
        if (!user) return std::unexpected(user.error());
        if (!user->has_passwd_entry && !worker.group)
            return permanent_failure("user " + *worker.user + " has no passwd entry: set `group` too");
        uid = user->uid;
        gid = user->gid;
        user_name_ = user->name;
        user_home_ = user->home;
        user_shell_ = user->shell;
    }
    if (worker.group) {
        auto group = find_group(*worker.group);
        if (!group) return std::unexpected(group.error());
        gid = *group;
    }
    if (!context.is_root) {
        if (uid == geteuid() && gid == getegid()) return {};  // already who the worker wants
        return permanent_failure("cannot switch to user/group: fdsupd is not running as root");
    }
    // Supplementary groups: the user's from the group database, or just the gid.
    groups_.assign(1, gid);
    if (!user_name_.empty()) {
        int count = 64;
        std::vector<gid_t> list(count);
        while (getgrouplist(user_name_.c_str(), gid, list.data(), &count) < 0) list.resize(count);
        list.resize(count);
        groups_ = list;
    }
    // Sorted as the kernel keeps them, so that the child can compare its read-back
    // (getgroups) with this list directly; room for one more shows a longer list.
    std::sort(groups_.begin(), groups_.end());
    groups_readback_.assign(groups_.size() + 1, 0);
    change_ids_ = true;
    uid_ = uid;
    gid_ = gid;
    return {};
}

void PreparedSpawn::build_env(const SpawnContext& context, const config::WorkerConfig& worker, int instance,
                              const std::vector<StoredFdRef>& stored) {
    // The env is sorted by key, each key once. What fdsupd sets (below) goes in a map,
    // key -> "KEY=value", later entries overriding; the inherited entries, dozens of
    // them and the same at every spawn, were sorted once (SpawnContext::set_base_env)
    // and are only pointed at, unless overridden.
    static const std::vector<size_t> kNone;
    const std::vector<size_t>& inherited = worker.clear_env ? kNone : context.base_env_by_key();
    inherited_env_ = context.base_env();  // kept: envp points into it
    const std::vector<std::string>& base = *inherited_env_;
    auto inherited_key = [&](size_t i) { return std::string_view(base[i]).substr(0, base[i].find('=')); };
    std::map<std::string, std::string, std::less<>> env;  // fdsupd's own
    auto set = [&](const std::string& key, const std::string& value) { env[key] = key + "=" + value; };
    // The child writes its pid into these values; only slots made here have the room
    // (a worker's own `env` entry of the same name is overwritten, never written into).
    std::vector<std::string> pid_slot_keys;
    auto set_pid_slot = [&](const std::string& key) {
        set(key, std::string(kPidDigitsRoom - 1, '0'));
        pid_slot_keys.push_back(key);
    };
    if (!user_name_.empty()) {
        set("USER", user_name_);
        set("LOGNAME", user_name_);
        set("HOME", user_home_);
        set("SHELL", user_shell_);
    }
    for (const auto& [key, value] : worker.env) set(key, value);

    set("FDSUP_WORKER", worker.name);
    set("FDSUP_INSTANCE", std::to_string(instance));
    for (const auto& [fd, socket] : worker.fds) {
        std::string key = socket_env_name(socket);
        if (!env.contains(key)) set(key, std::to_string(fd));  // the lowest fd of a socket mapped twice
    }

    // systemd's protocol only when the inherited sockets are exactly 3..3+n-1; the
    // stored fds follow them (make() put them there).
    std::vector<std::string> names;
    int expected = 3;
    bool contiguous = true;
    for (const auto& [fd, socket] : worker.fds) {
        if (fd < 3) continue;
        contiguous &= fd == expected++;
        names.push_back(socket);
    }
    for (const auto& fd : stored) names.push_back(fd.name);
    if (!names.empty() && contiguous) {
        set("LISTEN_FDS", std::to_string(names.size()));
        std::string joined;
        for (const auto& n : names) joined += (joined.empty() ? "" : ":") + n;
        set("LISTEN_FDNAMES", joined);
        set_pid_slot("LISTEN_PID");
    }

    // sd_notify: readiness, the watchdog and the fd store all speak it.
    bool speaks_notify = worker.ready == config::ReadyMode::notify || worker.watchdog > config::Duration::zero() ||
                         worker.fd_store_max > 0;
    if (speaks_notify && !context.notify_socket.empty()) set("NOTIFY_SOCKET", context.notify_socket);
    // The fd socket: where to fetch `scm_rights` sockets, and the other way into the fd store.
    if ((!worker.scm_rights.empty() || worker.fd_store_max > 0) && !context.fd_socket.empty())
        set("FDSUP_FD_SOCKET", context.fd_socket);
    if (worker.watchdog > config::Duration::zero()) {
        set("WATCHDOG_USEC", std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(worker.watchdog).count()));
        set_pid_slot("WATCHDOG_PID");
    }

    // fdsupd's, or one the worker's own `env` sets: either way it may speak to fdsupd.
    notify_socket_given_ = env.contains("NOTIFY_SOCKET");

    // Both in key order, merged into envp; fdsupd's entry wins over an inherited one of
    // its key. (env_strings_ is sized first: envp points into its strings.)
    env_strings_.reserve(env.size());
    envp_.reserve(inherited.size() + env.size() + 1);
    auto point_at = [&](const std::string& entry) { envp_.push_back(const_cast<char*>(entry.c_str())); };
    auto from = inherited.begin();
    for (auto& [key, entry] : env) {
        for (; from != inherited.end() && inherited_key(*from) < key; ++from) point_at(base[*from]);
        if (from != inherited.end() && inherited_key(*from) == key) ++from;
        for (size_t slot = 0; slot < std::size(kPidKeys); ++slot)
            if (key == kPidKeys[slot] && std::find(pid_slot_keys.begin(), pid_slot_keys.end(), key) != pid_slot_keys.end())
                pid_slot_index_[slot] = static_cast<int>(env_strings_.size());
        env_strings_.push_back(std::move(entry));
        point_at(env_strings_.back());
    }
    for (; from != inherited.end(); ++from) point_at(base[*from]);
}

std::vector<std::string> PreparedSpawn::env() const {
    std::vector<std::string> env;
    for (const char* entry : envp_)
        if (entry != nullptr) env.emplace_back(entry);
    return env;
}

// Only lists where to look: the child searches, as the worker's user in its working_dir
// (a directory of root's PATH that the user may not enter is skipped, as execvp would).
void PreparedSpawn::resolve_path() {
    path_ = argv_strings_.front();
    if (!is_bare_command(path_)) return;  // relative to working_dir, or absolute
    search_path_ = search_path_in_envp(envp_);
    search_candidates_ = exec_candidates(path_, search_path_);
    for (const auto& candidate : search_candidates_) search_candidate_ptrs_.push_back(candidate.c_str());
}

void PreparedSpawn::link_plan(const SpawnContext& context, const config::WorkerConfig& worker) {
    for (auto& s : argv_strings_) argv_.push_back(s.data());
    argv_.push_back(nullptr);
    envp_.push_back(nullptr);  // build_env made the rest

    plan_.path = path_.c_str();
    plan_.search_candidates = search_candidate_ptrs_.data();
    plan_.search_candidate_count = search_candidate_ptrs_.size();
    plan_.search_path = search_path_.c_str();
    plan_.argv = argv_.data();
    plan_.envp = envp_.data();
    static_assert(std::size(kPidKeys) == std::size(SpawnPlan{}.pid_slots));
    for (size_t slot = 0; slot < std::size(kPidKeys); ++slot) {
        int index = pid_slot_index_[slot];
        plan_.pid_slots[slot] = index < 0 ? nullptr : env_strings_[static_cast<size_t>(index)].data() +
                                                          std::char_traits<char>::length(kPidKeys[slot]) + 1;
    }
    plan_.fd_map = fd_map_->view();
    plan_.umask_value = worker.umask ? static_cast<int>(*worker.umask) : -1;
    plan_.rlimits = rlimits_.data();
    plan_.rlimit_count = rlimits_.size();
    plan_.change_ids = change_ids_;
    plan_.uid = uid_;
    plan_.gid = gid_;
    plan_.groups = groups_.data();
    plan_.group_count = groups_.size();
    plan_.groups_readback = groups_readback_.data();
    // A worker must not outlive its supervisor unsupervised (and keep a port busy that a
    // restarted supervisor needs). The same thread stays alive across our own re-exec.
    plan_.pdeathsig = SIGKILL;
    plan_.parent_pid = context.supervisor_pid;
    cwd_ = worker.working_dir;
    plan_.cwd = cwd_.empty() ? nullptr : cwd_.c_str();
    sigemptyset(&plan_.exec_sigmask);
    plan_.close_fallback_limit = context.close_fallback_limit;
    plan_.fd_table_shared = false;  // the launcher's choice
    plan_.keep_fds_below = fd_map_->max_source() + 1;
    plan_.cgroup_fd = -1;  // set by the caller for kill_mode = "cgroup"
    plan_.cgroup_procs_fd = -1;
    plan_.failure = nullptr;
}

}  // namespace fdsup
