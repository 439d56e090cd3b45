// The configuration as plain data: what config/loader.cpp produces from TOML and
// everything else consumes. Defaults here are the SPEC's defaults.
#pragma once

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <csignal>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/listen_address.h"

namespace fdsup::config {

using Duration = std::chrono::milliseconds;
using namespace std::chrono_literals;

// Where a table was written, for messages that point back into the file. Never part
// of a value's identity: two configs that differ only in layout are equal.
struct SourcePos {
    int line = 0;
    int column = 0;
    bool operator==(const SourcePos&) const { return true; }
};

struct SupervisorConfig {
    std::string control_socket;            // resolved default applied by the loader
    mode_t control_mode = 0600;
    std::optional<std::string> control_group;
    std::string runtime_dir;               // default: dirname(control_socket)
    std::string log_level = "info";        // trace|debug|info|warn|error
    std::string log_format = "text";       // text|json (logging/json_log_format.h)
    std::optional<std::string> metrics_listen;
    Duration shutdown_timeout = 30s;
    // Control socket limits (extensions to the SPEC, which fixes only the 30 s default):
    // a client with no request in flight for this long is closed ...
    Duration control_idle_timeout = 30s;
    // ... and no more than this many clients are served at once.
    int control_max_clients = 64;

    bool operator==(const SupervisorConfig&) const = default;
};

// [sockets.NAME] adopt = { pid_file = "/run/nginx.pid" }: the socket is taken from the
// running process the pid file names (sockets/take_over.h) instead of being bound, at
// start-up and when a reload adds it. Once fdsupd owns the socket the key has done its
// work: changing or removing it later changes nothing (config/diff.h).
struct SocketAdopt {
    std::string pid_file;  // absolute
    bool operator==(const SocketAdopt&) const = default;
};

struct SocketConfig {
    std::string name;
    std::string listen;                    // as written
    ListenAddress address;                 // parsed
    int backlog = SOMAXCONN;
    bool reuse_port = false;
    bool free_bind = false;
    bool ipv6_only = false;
    bool nodelay = false;
    bool keepalive = false;
    int receive_buffer = 0;                // 0 = kernel default
    int send_buffer = 0;
    std::optional<mode_t> mode;            // unix path sockets only
    std::optional<std::string> owner;
    std::optional<std::string> group;
    std::optional<SocketAdopt> adopt;
    SourcePos pos;

    bool operator==(const SocketConfig&) const = default;
};

enum class RestartPolicy { always, on_failure, never };
enum class ReadyMode { exec, notify, delay, accepting, probe };
enum class NotifyAccess { main, all };
enum class KillMode { process, group, cgroup };
enum class RestartStrategy { rolling, stop_start };
enum class OutputKind { log, inherit, null, file, rotate, journal };
enum class LogTimestamps { utc, local, none };
constexpr int kMaxLogKeep = 1000;  // rotated files kept per log (log_keep)
enum class StartMode { with_supervisor, on_demand };

struct OutputTarget {
    OutputKind kind = OutputKind::log;
    std::string path;                      // for file and rotate (rotate: {instance} allowed)
    bool operator==(const OutputTarget&) const = default;
};
// Captured: fdsupd reads the stream through a pipe (and keeps its lines for `logs`).
inline bool is_captured(OutputKind kind) {
    return kind == OutputKind::log || kind == OutputKind::rotate || kind == OutputKind::journal;
}
// As written in the config ("log", "file:/path", ...), and back (nullopt: none of them).
std::optional<OutputTarget> output_from_text(std::string_view text);
inline std::string output_text(const OutputTarget& target) {
    switch (target.kind) {
        case OutputKind::log: return "log";
        case OutputKind::inherit: return "inherit";
        case OutputKind::null: return "null";
        case OutputKind::journal: return "journal";
        case OutputKind::file: return "file:" + target.path;
        case OutputKind::rotate: return "rotate:" + target.path;
    }
    return "?";
}

// log_timestamps as written in the config, and back (nullopt: none of them).
inline const char* log_timestamps_text(LogTimestamps mode) {
    switch (mode) {
        case LogTimestamps::utc: return "utc";
        case LogTimestamps::local: return "local";
        case LogTimestamps::none: return "none";
    }
    return "?";
}
inline std::optional<LogTimestamps> log_timestamps_from_text(std::string_view text) {
    for (auto mode : {LogTimestamps::utc, LogTimestamps::local, LogTimestamps::none})
        if (text == log_timestamps_text(mode)) return mode;
    return std::nullopt;
}

// A [workers.NAME.ready_probe] or [workers.NAME.liveness_probe] table (health/).
enum class ProbeKind { http, tcp, exec };
struct ProbeConfig {
    ProbeKind kind = ProbeKind::http;
    // http: the URL; tcp: HOST:PORT or a unix socket; as written, {instance} allowed.
    std::string target;
    std::vector<std::string> command;      // exec: the argv, placeholders as in `command`
    Duration interval = 10s;
    Duration timeout = 1s;
    int failures = 3;                      // liveness: failed checks in a row that replace the instance
    SourcePos pos;

    bool operator==(const ProbeConfig&) const = default;
};

struct RlimitSetting {
    int resource = 0;                      // RLIMIT_*
    std::string name;                      // "nofile"
    rlim_t value = 0;                      // soft = hard = value; RLIM_INFINITY for "infinity"
    bool operator==(const RlimitSetting&) const = default;
};

// What an instance may use (SPEC "Resources"), written into its cgroup: only with
// kill_mode = "cgroup" (cgroups/resource_limits.h). Unset ("infinity" in the file):
// no limit. Sizes in bytes, as systemd's MemoryMax= etc. mean them.
struct ResourceLimits {
    std::optional<uint64_t> memory_max;       // memory.max / memory.limit_in_bytes
    std::optional<uint64_t> memory_high;      // memory.high (cgroup v2 only)
    std::optional<uint64_t> memory_swap_max;  // memory.swap.max / memory.memsw.limit_in_bytes - memory_max
    std::optional<int> cpu_max_percent;       // "150%" = 1.5 CPUs: cpu.max / cpu.cfs_quota_us
    std::optional<int> cpu_weight;            // 1..10000: cpu.weight / cpu.shares
    std::optional<int64_t> pids_max;          // pids.max
    std::optional<int> io_weight;             // 1..10000: io.weight / blkio.weight

    bool any() const {
        return memory_max || memory_high || memory_swap_max || cpu_max_percent || cpu_weight || pids_max ||
               io_weight;
    }
    bool operator==(const ResourceLimits&) const = default;
};

// Replacing an instance the graceful way (a rolling restart of the one instance) when it
// has used too much memory for too long, or has run long enough; any kill_mode.
struct RecyclePolicy {
    std::optional<uint64_t> memory;           // recycle_memory: bytes
    Duration memory_after = 30s;              // recycle_after: over it this long
    std::optional<Duration> max_age;          // since it became ready
    Duration max_age_jitter = 0s;             // each instance's max_age + [0, jitter)

    bool any() const { return memory || max_age; }
    bool operator==(const RecyclePolicy&) const = default;
};

struct WorkerConfig {
    std::string name;
    std::vector<std::string> command;      // may contain {fd:NAME}, {instance}, {name}
    int instances = 1;
    std::map<int, std::string> fds;        // fd number -> socket name (inherited)
    std::vector<std::string> scm_rights;
    std::map<std::string, std::string> env;
    bool clear_env = false;
    std::string working_dir;               // empty: the supervisor's
    std::optional<std::string> user;
    std::optional<std::string> group;
    std::optional<mode_t> umask;           // unset: the supervisor's
    std::vector<RlimitSetting> rlimits;    // nofile absent: the supervisor's starting soft limit
    RestartPolicy restart = RestartPolicy::always;
    std::vector<int> success_exit_codes{0};
    Duration backoff = 100ms;
    Duration backoff_max = 30s;
    Duration healthy_after = 10s;
    int start_limit_burst = 10;
    Duration start_limit_interval = 60s;
    ReadyMode ready = ReadyMode::exec;
    Duration ready_delay = 1s;
    Duration ready_timeout = 60s;
    Duration watchdog = 0s;
    NotifyAccess notify_access = NotifyAccess::main;
    int stop_signal = SIGTERM;
    Duration stop_timeout = 10s;
    // A planned stop (rollout, scale down, recycle) first takes the process out of
    // readiness and leaves it serving this long (a load balancer moves away meanwhile).
    Duration stop_delay = 0s;
    KillMode kill_mode = KillMode::group;
    std::vector<std::string> after;
    int reload_signal = SIGHUP;
    RestartStrategy restart_strategy = RestartStrategy::rolling;
    int max_surge = 1;
    int fd_store_max = 0;
    OutputTarget stdout_target;
    OutputTarget stderr_target;
    // For "rotate:" files: rotated when the next line would take the file past
    // log_max_size (nullopt: never by size, only by `fdsupctl reopen-logs` after an
    // outside rotation), into log_keep numbered files, gzip-compressed if log_compress.
    // Each line is stamped per log_timestamps.
    std::optional<uint64_t> log_max_size = 10 * 1024 * 1024;
    int log_keep = 5;
    bool log_compress = false;
    LogTimestamps log_timestamps = LogTimestamps::utc;
    std::optional<ProbeConfig> ready_probe;     // used by ready = "probe"
    std::optional<ProbeConfig> liveness_probe;  // checked while running
    ResourceLimits limits;
    RecyclePolicy recycle;
    // start = "on-demand": not started with fdsupd but by the first connection (or
    // datagram) waiting on one of its inherited sockets; idle_stop (on-demand only):
    // stopped again after this long with no connection open or queued on them.
    StartMode start = StartMode::with_supervisor;
    std::optional<Duration> idle_stop;
    SourcePos pos;

    bool operator==(const WorkerConfig&) const = default;
};

struct Config {
    std::string path;                      // the file it was read from
    std::string source;                    // the text it was read from (an upgrade carries it)
    SupervisorConfig supervisor;
    std::vector<SocketConfig> sockets;     // sorted by name
    std::vector<WorkerConfig> workers;     // sorted by name

    const SocketConfig* find_socket(const std::string& name) const {
        for (const auto& s : sockets)
            if (s.name == name) return &s;
        return nullptr;
    }
    const WorkerConfig* find_worker(const std::string& name) const {
        for (const auto& w : workers)
            if (w.name == name) return &w;
        return nullptr;
    }
    WorkerConfig* find_worker(const std::string& name) {
        return const_cast<WorkerConfig*>(std::as_const(*this).find_worker(name));
    }
};

}  // namespace fdsup::config

namespace fdsup {

// How an instance is named in messages and labels: "web[2]".
inline std::string instance_label(const std::string& worker, int index) {
    return worker + "[" + std::to_string(index) + "]";
}

}  // namespace fdsup
