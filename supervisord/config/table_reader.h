// The config loader's table readers (internal to config/): loader.cpp reads the top
// level, [supervisor] and [sockets.NAME], and checks what refers across tables;
// worker_table.cpp reads [workers.NAME]. The values in them are read with
// value_reader.h.
#pragma once

#include <sys/resource.h>

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/value_reader.h"

namespace fdsup::config {

// An fd store larger than this is a mistake (each fd is one of fdsupd's, and every
// name goes into the worker's environment).
constexpr int kMaxFdStore = 4096;
// pids_max at most: the kernel's PID_MAX_LIMIT (pids.max refuses more).
constexpr int64_t kMaxPids = 4 * 1024 * 1024;
// cpu_weight and io_weight: as cgroup v2's cpu.weight and io.weight.
constexpr int kMaxWeight = 10000;

constexpr std::string_view kTopLevelKeys[] = {"supervisor", "sockets", "workers"};

constexpr std::string_view kSupervisorKeys[] = {
    "control_socket", "control_mode",   "control_group",    "runtime_dir",
    "log_level",      "metrics_listen", "shutdown_timeout", "control_idle_timeout",
    "control_max_clients", "log_format",
};

constexpr std::string_view kSocketKeys[] = {
    "listen",    "backlog",        "reuse_port",  "free_bind", "ipv6_only", "nodelay",
    "keepalive", "receive_buffer", "send_buffer", "mode",      "owner",     "group",
    "adopt",
};

constexpr std::string_view kSocketAdoptKeys[] = {"pid_file"};

constexpr std::string_view kWorkerKeys[] = {
    "command",     "instances",         "fds",           "sockets",          "scm_rights",
    "env",         "clear_env",         "working_dir",   "user",             "group",
    "umask",       "rlimits",           "restart",       "success_exit_codes", "backoff",
    "backoff_max", "healthy_after",     "start_limit_burst", "start_limit_interval", "ready",
    "ready_delay", "ready_timeout",     "watchdog",      "notify_access",    "stop_signal",
    "stop_timeout", "kill_mode",        "after",         "reload_signal",    "restart_strategy",
    "max_surge",   "fd_store_max",      "stdout",        "stderr",           "ready_probe",
    "liveness_probe", "memory_max",     "memory_high",   "memory_swap_max",  "cpu_max",
    "cpu_weight",  "pids_max",          "io_weight",     "recycle_memory",   "recycle_after",
    "max_age",     "max_age_jitter",    "stop_delay",
    "start",       "idle_stop",         "log_max_size",  "log_keep",         "log_compress",
    "log_timestamps",
};

constexpr std::string_view kProbeKeys[] = {"http", "tcp", "exec", "interval", "timeout", "failures"};

constexpr Choice<std::string_view> kLogLevels[] = {
    {"trace", "trace"}, {"debug", "debug"}, {"info", "info"}, {"warn", "warn"}, {"error", "error"}};
constexpr Choice<std::string_view> kLogFormats[] = {{"text", "text"}, {"json", "json"}};
constexpr Choice<RestartPolicy> kRestartPolicies[] = {
    {"always", RestartPolicy::always},
    {"on-failure", RestartPolicy::on_failure},
    {"never", RestartPolicy::never}};
constexpr Choice<ReadyMode> kReadyModes[] = {
    {"exec", ReadyMode::exec},           {"notify", ReadyMode::notify}, {"delay", ReadyMode::delay},
    {"accepting", ReadyMode::accepting}, {"probe", ReadyMode::probe}};
constexpr Choice<StartMode> kStartModes[] = {
    {"with-supervisor", StartMode::with_supervisor}, {"on-demand", StartMode::on_demand}};
constexpr Choice<NotifyAccess> kNotifyAccess[] = {
    {"main", NotifyAccess::main}, {"all", NotifyAccess::all}};
constexpr Choice<LogTimestamps> kLogTimestamps[] = {
    {"utc", LogTimestamps::utc}, {"local", LogTimestamps::local}, {"none", LogTimestamps::none}};
constexpr Choice<KillMode> kKillModes[] = {
    {"process", KillMode::process}, {"group", KillMode::group}, {"cgroup", KillMode::cgroup}};
constexpr Choice<RestartStrategy> kRestartStrategies[] = {
    {"rolling", RestartStrategy::rolling}, {"stop-start", RestartStrategy::stop_start}};

constexpr Choice<int> kRlimits[] = {
    {"as", RLIMIT_AS},           {"core", RLIMIT_CORE},         {"cpu", RLIMIT_CPU},
    {"data", RLIMIT_DATA},       {"fsize", RLIMIT_FSIZE},       {"locks", RLIMIT_LOCKS},
    {"memlock", RLIMIT_MEMLOCK}, {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},
    {"nofile", RLIMIT_NOFILE},   {"nproc", RLIMIT_NPROC},       {"rss", RLIMIT_RSS},
    {"rtprio", RLIMIT_RTPRIO},   {"rttime", RLIMIT_RTTIME},     {"sigpending", RLIMIT_SIGPENDING},
    {"stack", RLIMIT_STACK},
};

// A socket or worker as read, with what the cross-reference checks need.
struct ReadSocket {
    SocketConfig config;
    const toml::node* listen = nullptr;  // set iff `listen` parsed
};

struct ReadWorker {
    WorkerConfig config;
    const toml::table* table = nullptr;
    std::string path;
};

class Loader : ValueReader {
public:
    explicit Loader(std::string file) : ValueReader(std::move(file)) {}

    LoadResult load(std::string_view text);

private:
    std::set<std::string> socket_names_;  // every [sockets.X], even a broken one
    std::set<std::string> worker_names_;

    bool is_known_socket(const toml::node& n, const std::string& name, const std::string& path);

    // --- tables
    void read_top_level(const toml::table& root, Config& config);
    void read_supervisor(const toml::node& node, SupervisorConfig& out);
    std::vector<ReadSocket> read_sockets(const toml::node& node);
    ReadSocket read_socket(const Section& s, const std::string& name);
    void check_socket_kind_options(const Section& s, const ListenAddress& address);
    std::optional<SocketAdopt> read_socket_adopt(const Section& s);
    void check_env_name_clashes(const toml::table& sockets);
    void check_duplicate_addresses(const std::vector<ReadSocket>& sockets);
    std::vector<ReadWorker> read_workers(const toml::node& node);
    ReadWorker read_worker(const Section& s, const std::string& name);
    void read_command(const Section& s, WorkerConfig& w);
    void read_fds(const Section& s, WorkerConfig& w);
    void read_socket_shorthand(const Section& s, WorkerConfig& w);
    void read_scm_rights(const Section& s, WorkerConfig& w);
    void read_env(const Section& s, WorkerConfig& w);
    void read_rlimits(const Section& s, WorkerConfig& w);
    void read_exit_codes(const Section& s, WorkerConfig& w);
    void read_after(const Section& s, WorkerConfig& w);
    void check_backoff(const Section& s, const WorkerConfig& w);
    void check_command_fds(const Section& s, const WorkerConfig& w);
    void check_stdio_sockets(const Section& s, const WorkerConfig& w);
    void check_fd_store(const Section& s, const WorkerConfig& w);
    void check_after_cycles(const std::vector<ReadWorker>& workers);
    // log_paths.cpp
    void check_log_paths(const std::vector<ReadWorker>& workers);
    // resource_keys.cpp
    void read_limits(const Section& s, ResourceLimits& limits);
    void read_recycle(const Section& s, RecyclePolicy& recycle);
    void check_limits(const Section& s, const WorkerConfig& w);
    void check_recycle(const Section& s, const WorkerConfig& w);
    // on_demand_keys.cpp
    void read_on_demand(const Section& s, WorkerConfig& w);
    void check_on_demand_sockets(const std::vector<ReadSocket>& sockets, const std::vector<ReadWorker>& workers);
    // probe_table.cpp
    std::optional<ProbeConfig> read_probe(const Section& worker, std::string_view key, const WorkerConfig& w);
    bool read_probe_command(const toml::node& n, const std::string& path, ProbeConfig& probe);
    bool check_probe_target(const toml::node& n, const std::string& path, const ProbeConfig& probe,
                            const WorkerConfig& w);
    void check_ready_mode(const Section& s, const WorkerConfig& w);
    void check_probe_targets(const std::vector<ReadSocket>& sockets, const std::vector<ReadWorker>& workers);
};

// "250ms", "10s", "5m", "1h": a duration as it would be written in the file.
std::string duration_text(Duration d);

}  // namespace fdsup::config
