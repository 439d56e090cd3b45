// The TOML loader. Reading is split from validation of cross-references:
//   1. syntax (toml++), one error and stop;
//   2. every table, key by key, into the model; each bad value is reported at its
//      own position and reading goes on, so one run shows every problem;
//   3. references between tables (sockets named by workers, `after` between workers,
//      duplicate addresses), which need all names first.
// Errors are sorted by position at the end, as a compiler would print them.

#include "config/loader.h"

#include <algorithm>
#include <cerrno>
#include <cctype>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <map>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "config/values.h"

namespace fdsup::config {

std::string ConfigError::text() const {
    if (line == 0) return file + ": " + message;
    return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

namespace {

// ---------------------------------------------------------------------------------
// Small helpers for names and messages

bool name_is_made_of(std::string_view name, std::string_view extra_chars) {
    if (name.empty()) return false;
    return std::all_of(name.begin(), name.end(), [&](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               extra_chars.find(c) != std::string_view::npos;
    });
}

// A key as TOML would need it written: bare when it can be, else quoted, so that a
// path like `workers."web.v2".backoff` stays unambiguous.
std::string key_part(std::string_view key) {
    if (name_is_made_of(key, "_-")) return std::string(key);
    std::string quoted = "\"";
    for (char c : key) {
        if (c == '"' || c == '\\') quoted += '\\';
        quoted += c;
    }
    return quoted + "\"";
}

std::string quote(std::string_view text) { return "\"" + std::string(text) + "\""; }

std::string type_phrase(const toml::node& node) {
    switch (node.type()) {
        case toml::node_type::table: return "a table";
        case toml::node_type::array: return "an array";
        case toml::node_type::string: return "a string";
        case toml::node_type::integer: return "an integer";
        case toml::node_type::floating_point: return "a float";
        case toml::node_type::boolean: return "a boolean";
        case toml::node_type::date: return "a date";
        case toml::node_type::time: return "a time";
        case toml::node_type::date_time: return "a date-time";
        case toml::node_type::none: break;
    }
    return "nothing";
}

std::string format_duration(Duration d) {
    auto ms = d.count();
    if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
    if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
            diagonal = above;
        }
    }
    return row[b.size()];
}

// ` (did you mean "command"?)` for a near miss (a typo), else nothing: a suggestion
// for a word that is merely short and different would only confuse.
template <class Names>
std::string did_you_mean(std::string_view word, const Names& candidates) {
    const size_t allowed = word.size() <= 3 ? 1 : 2;
    std::string_view best;
    size_t best_distance = allowed + 1;
    for (std::string_view candidate : candidates) {
        size_t d = edit_distance(word, candidate);
        if (d < best_distance && d < word.size()) best = candidate, best_distance = d;
    }
    if (best.empty()) return "";
    return " (did you mean " + quote(best) + "?)";
}

std::string dirname_of(const std::string& path) {
    auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    auto end = path.find_last_not_of('/', slash);
    if (end == std::string::npos) return "/";
    return path.substr(0, end + 1);
}

// $RUNTIME_DIRECTORY is set by systemd's RuntimeDirectory= (several entries are
// colon-separated; the first is ours).
std::string default_control_socket() {
    const char* env = std::getenv("RUNTIME_DIRECTORY");
    std::string first = env ? std::string(env).substr(0, std::string(env).find(':')) : "";
    if (first.empty()) return "/run/fdsup/control.sock";
    return first + "/control.sock";
}

// ---------------------------------------------------------------------------------
// Keys and choices

// An fd store larger than this is a mistake (each fd is one of fdsupd's, and every
// name goes into the worker's environment).
constexpr int kMaxFdStore = 4096;

constexpr std::string_view kTopLevelKeys[] = {"supervisor", "sockets", "workers"};

constexpr std::string_view kSupervisorKeys[] = {
    "control_socket", "control_mode",   "control_group",    "runtime_dir",
    "log_level",      "metrics_listen", "shutdown_timeout", "control_idle_timeout",
    "control_max_clients",
};

constexpr std::string_view kSocketKeys[] = {
    "listen",    "backlog",        "reuse_port",  "free_bind", "ipv6_only", "nodelay",
    "keepalive", "receive_buffer", "send_buffer", "mode",      "owner",     "group",
};

constexpr std::string_view kWorkerKeys[] = {
    "command",     "instances",         "fds",           "sockets",          "scm_rights",
    "env",         "clear_env",         "working_dir",   "user",             "group",
    "umask",       "rlimits",           "restart",       "success_exit_codes", "backoff",
    "backoff_max", "healthy_after",     "start_limit_burst", "start_limit_interval", "ready",
    "ready_delay", "ready_timeout",     "watchdog",      "notify_access",    "stop_signal",
    "stop_timeout", "kill_mode",        "after",         "reload_signal",    "restart_strategy",
    "max_surge",   "fd_store_max",      "stdout",        "stderr",
};

template <class E>
struct Choice {
    std::string_view name;
    E value;
};

constexpr Choice<std::string_view> kLogLevels[] = {
    {"trace", "trace"}, {"debug", "debug"}, {"info", "info"}, {"warn", "warn"}, {"error", "error"}};
constexpr Choice<RestartPolicy> kRestartPolicies[] = {
    {"always", RestartPolicy::always},
    {"on-failure", RestartPolicy::on_failure},
    {"never", RestartPolicy::never}};
constexpr Choice<ReadyMode> kReadyModes[] = {
    {"exec", ReadyMode::exec}, {"notify", ReadyMode::notify}, {"delay", ReadyMode::delay}};
constexpr Choice<NotifyAccess> kNotifyAccess[] = {
    {"main", NotifyAccess::main}, {"all", NotifyAccess::all}};
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

template <class E>
std::string choice_list(std::span<const Choice<E>> choices) {
    std::string list;
    for (size_t i = 0; i < choices.size(); ++i) {
        if (i > 0) list += i + 1 == choices.size() ? " or " : ", ";
        list += choices[i].name;
    }
    return list;
}

template <class E>
std::vector<std::string_view> choice_names(std::span<const Choice<E>> choices) {
    std::vector<std::string_view> names;
    for (const auto& c : choices) names.push_back(c.name);
    return names;
}

// ---------------------------------------------------------------------------------
// The loader

// A table being read, with the dotted path that names it in messages.
struct Section {
    const toml::table& table;
    std::string path;  // "workers.web"

    std::string at(std::string_view key) const { return path + "." + key_part(key); }
    const toml::node* get(std::string_view key) const { return table.get(key); }
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

class Loader {
public:
    explicit Loader(std::string file) : file_(std::move(file)) {}

    LoadResult load(std::string_view text);

private:
    std::string file_;
    std::vector<ConfigError> errors_;
    std::set<std::string> socket_names_;  // every [sockets.X], even a broken one
    std::set<std::string> worker_names_;

    // --- reporting
    void error(const toml::source_region& where, std::string message) {
        errors_.push_back({file_, static_cast<int>(where.begin.line),
                           static_cast<int>(where.begin.column), std::move(message)});
    }
    void error(const toml::node& node, const std::string& path, std::string_view message) {
        error(node.source(), path + ": " + std::string(message));
    }
    void type_error(const toml::node& node, const std::string& path, std::string_view expected) {
        error(node, path, "expected " + std::string(expected) + ", got " + type_phrase(node));
    }
    void check_keys(const Section& s, std::span<const std::string_view> known);

    // --- values: each reports its own error and returns nothing on failure
    const toml::table* as_table(const toml::node& n, const std::string& path);
    const toml::array* as_array(const toml::node& n, const std::string& path);
    std::optional<std::string> as_string(const toml::node& n, const std::string& path);
    std::optional<std::string> as_nonempty_string(const toml::node& n, const std::string& path);
    std::optional<int64_t> as_integer(const toml::node& n, const std::string& path, int64_t min,
                                      int64_t max);
    std::optional<bool> as_bool(const toml::node& n, const std::string& path);
    std::optional<Duration> as_duration(const toml::node& n, const std::string& path);
    std::optional<mode_t> as_mode(const toml::node& n, const std::string& path);
    std::optional<int> as_signal(const toml::node& n, const std::string& path);
    std::optional<std::string> as_account(const toml::node& n, const std::string& path);
    std::optional<OutputTarget> as_output(const toml::node& n, const std::string& path);
    template <class E>
    std::optional<E> as_choice(const toml::node& n, const std::string& path,
                               std::span<const Choice<E>> choices);
    bool is_known_socket(const toml::node& n, const std::string& name, const std::string& path);

    // --- "read key into field if present"
    template <class T, class Convert>
    void read(const Section& s, std::string_view key, T& out, Convert convert) {
        if (const toml::node* n = s.get(key))
            if (auto value = convert(*n, s.at(key))) out = T(std::move(*value));
    }
    void read_string(const Section& s, std::string_view key, auto& out) {
        read(s, key, out, [&](const auto& n, const auto& p) { return as_nonempty_string(n, p); });
    }
    void read_bool(const Section& s, std::string_view key, bool& out) {
        read(s, key, out, [&](const auto& n, const auto& p) { return as_bool(n, p); });
    }
    void read_int(const Section& s, std::string_view key, int& out, int64_t min, int64_t max) {
        read(s, key, out, [&](const auto& n, const auto& p) { return as_integer(n, p, min, max); });
    }
    void read_duration(const Section& s, std::string_view key, Duration& out) {
        read(s, key, out, [&](const auto& n, const auto& p) { return as_duration(n, p); });
    }
    void read_signal(const Section& s, std::string_view key, int& out) {
        read(s, key, out, [&](const auto& n, const auto& p) { return as_signal(n, p); });
    }
    template <class T, class E, size_t N>
    void read_choice(const Section& s, std::string_view key, T& out,
                     const Choice<E> (&choices)[N]) {
        read(s, key, out, [&](const auto& n, const auto& p) {
            return as_choice(n, p, std::span<const Choice<E>>(choices));
        });
    }

    // --- tables
    void read_top_level(const toml::table& root, Config& config);
    void read_supervisor(const toml::node& node, SupervisorConfig& out);
    std::vector<ReadSocket> read_sockets(const toml::node& node);
    ReadSocket read_socket(const Section& s, const std::string& name);
    void check_socket_kind_options(const Section& s, const ListenAddress& address);
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
    void check_fd_store(const Section& s, const WorkerConfig& w);
    void check_after_cycles(const std::vector<ReadWorker>& workers);
};

// ---------------------------------------------------------------------------------
// Values

void Loader::check_keys(const Section& s, std::span<const std::string_view> known) {
    for (auto&& [key, value] : s.table) {
        if (std::find(known.begin(), known.end(), key.str()) != known.end()) continue;
        error(key.source(), "unknown key " + quote(key.str()) + " in [" + s.path + "]" +
                                did_you_mean(key.str(), known));
    }
}

const toml::table* Loader::as_table(const toml::node& n, const std::string& path) {
    if (const auto* t = n.as_table()) return t;
    type_error(n, path, "a table");
    return nullptr;
}

const toml::array* Loader::as_array(const toml::node& n, const std::string& path) {
    if (const auto* a = n.as_array()) return a;
    type_error(n, path, "an array");
    return nullptr;
}

std::optional<std::string> Loader::as_string(const toml::node& n, const std::string& path) {
    const auto* s = n.as_string();
    if (!s) {
        type_error(n, path, "a string");
        return std::nullopt;
    }
    // argv, envp and paths are C strings: a NUL would silently cut the value short.
    if (s->get().find('\0') != std::string::npos) {
        error(n, path, "must not contain a NUL character");
        return std::nullopt;
    }
    return s->get();
}

std::optional<std::string> Loader::as_nonempty_string(const toml::node& n,
                                                      const std::string& path) {
    auto s = as_string(n, path);
    if (s && s->empty()) {
        error(n, path, "must not be empty");
        return std::nullopt;
    }
    return s;
}

std::optional<int64_t> Loader::as_integer(const toml::node& n, const std::string& path,
                                          int64_t min, int64_t max) {
    const auto* i = n.as_integer();
    if (!i) {
        type_error(n, path, "an integer");
        return std::nullopt;
    }
    int64_t v = i->get();
    if (v >= min && v <= max) return v;
    if (max == INT_MAX || max == INT64_MAX)
        error(n, path, "must be at least " + std::to_string(min) + ", got " + std::to_string(v));
    else
        error(n, path, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                           ", got " + std::to_string(v));
    return std::nullopt;
}

std::optional<bool> Loader::as_bool(const toml::node& n, const std::string& path) {
    if (const auto* b = n.as_boolean()) return b->get();
    type_error(n, path, "a boolean");
    return std::nullopt;
}

std::optional<Duration> Loader::as_duration(const toml::node& n, const std::string& path) {
    // A bare number is the classic mistake ("is 30 seconds or milliseconds?"): say so.
    if (!n.is_string()) {
        type_error(n, path, "a duration string like \"10s\"");
        return std::nullopt;
    }
    auto text = as_string(n, path);
    if (!text) return std::nullopt;
    if (auto d = parse_duration(*text)) return d;
    error(n, path,
          "invalid duration " + quote(*text) + " (use e.g. \"250ms\", \"10s\", \"5m\", \"1h\"; at most " +
              std::to_string(kMaxDurationHours) + "h)");
    return std::nullopt;
}

std::optional<mode_t> Loader::as_mode(const toml::node& n, const std::string& path) {
    // An integer 0600 in TOML is decimal 600, not what anyone means: demand a string.
    if (!n.is_string()) {
        type_error(n, path, "an octal string like \"0600\"");
        return std::nullopt;
    }
    auto text = as_string(n, path);
    if (!text) return std::nullopt;
    if (auto m = parse_mode(*text)) return m;
    error(n, path, "invalid mode " + quote(*text) + " (use octal digits, e.g. \"0660\")");
    return std::nullopt;
}

std::optional<int> Loader::as_signal(const toml::node& n, const std::string& path) {
    if (const auto* i = n.as_integer()) {
        if (auto s = parse_signal(std::to_string(i->get()))) return s;
        error(n, path, "unknown signal " + std::to_string(i->get()));
        return std::nullopt;
    }
    if (!n.is_string()) {
        type_error(n, path, "a signal name like \"TERM\"");
        return std::nullopt;
    }
    auto text = as_string(n, path);
    if (!text) return std::nullopt;
    if (auto s = parse_signal(*text)) return s;
    error(n, path, "unknown signal " + quote(*text));
    return std::nullopt;
}

// A user or group: a name, or a numeric id (kept as its decimal string; whoever
// resolves it tries the name database first, as chown(1) does).
std::optional<std::string> Loader::as_account(const toml::node& n, const std::string& path) {
    if (const auto* i = n.as_integer()) {
        // (uid_t)-1 means "unchanged" to the set*id calls; it can never be an id.
        if (i->get() < 0 || i->get() >= int64_t{UINT32_MAX}) {
            error(n, path, "invalid id " + std::to_string(i->get()));
            return std::nullopt;
        }
        return std::to_string(i->get());
    }
    if (!n.is_string()) {
        type_error(n, path, "a name or a numeric id");
        return std::nullopt;
    }
    return as_nonempty_string(n, path);
}

std::optional<OutputTarget> Loader::as_output(const toml::node& n, const std::string& path) {
    auto text = as_string(n, path);
    if (!text) return std::nullopt;
    if (*text == "log") return OutputTarget{OutputKind::log, ""};
    if (*text == "inherit") return OutputTarget{OutputKind::inherit, ""};
    if (*text == "null") return OutputTarget{OutputKind::null, ""};
    if (text->starts_with("file:")) {
        std::string file = text->substr(5);
        // Relative to what? The supervisor's cwd is an accident of how it was started.
        if (!file.starts_with("/")) {
            error(n, path, quote(*text) + ": the file must be an absolute path");
            return std::nullopt;
        }
        return OutputTarget{OutputKind::file, file};
    }
    error(n, path,
          "invalid value " + quote(*text) + " (expected log, inherit, null or \"file:/path\")");
    return std::nullopt;
}

template <class E>
std::optional<E> Loader::as_choice(const toml::node& n, const std::string& path,
                                   std::span<const Choice<E>> choices) {
    auto text = as_string(n, path);
    if (!text) return std::nullopt;
    for (const auto& c : choices)
        if (c.name == *text) return c.value;
    error(n, path, "invalid value " + quote(*text) + " (expected " + choice_list(choices) + ")");
    return std::nullopt;
}

bool Loader::is_known_socket(const toml::node& n, const std::string& name,
                             const std::string& path) {
    if (socket_names_.contains(name)) return true;
    error(n, path, "unknown socket " + quote(name) + did_you_mean(name, socket_names_));
    return false;
}

// ---------------------------------------------------------------------------------
// [supervisor]

void Loader::read_supervisor(const toml::node& node, SupervisorConfig& out) {
    const toml::table* table = as_table(node, "supervisor");
    if (!table) return;
    Section s{*table, "supervisor"};
    check_keys(s, kSupervisorKeys);

    read_string(s, "control_socket", out.control_socket);
    if (const toml::node* n = s.get("control_socket"); n && out.control_socket.size() > 107)
        error(*n, s.at("control_socket"),
              "path is too long for a unix socket (" + std::to_string(out.control_socket.size()) +
                  " bytes, at most 107)");
    read(s, "control_mode", out.control_mode,
         [&](const auto& n, const auto& p) { return as_mode(n, p); });
    read_string(s, "control_group", out.control_group);
    read_string(s, "runtime_dir", out.runtime_dir);
    read_choice(s, "log_level", out.log_level, kLogLevels);
    read_string(s, "metrics_listen", out.metrics_listen);
    if (const toml::node* n = s.get("metrics_listen"); n && out.metrics_listen) {
        auto address = parse_listen_address("tcp://" + *out.metrics_listen);
        if (!address) error(*n, s.at("metrics_listen"), "must be HOST:PORT (" + address.error().text() + ")");
    }
    read_duration(s, "shutdown_timeout", out.shutdown_timeout);
    read_duration(s, "control_idle_timeout", out.control_idle_timeout);
    if (const toml::node* n = s.get("control_idle_timeout"); n && out.control_idle_timeout == 0ms)
        error(*n, s.at("control_idle_timeout"), "must be more than 0s");
    read_int(s, "control_max_clients", out.control_max_clients, 1, 100000);
}

// ---------------------------------------------------------------------------------
// [sockets.NAME]

std::vector<ReadSocket> Loader::read_sockets(const toml::node& node) {
    std::vector<ReadSocket> sockets;
    const toml::table* table = as_table(node, "sockets");
    if (!table) return sockets;
    for (auto&& [key, value] : *table) socket_names_.insert(std::string(key.str()));

    for (auto&& [key, value] : *table) {
        std::string name(key.str()), path = "sockets." + key_part(name);
        // The name becomes part of FDSUP_FD_<NAME> and LISTEN_FDNAMES.
        if (!name_is_made_of(name, "_-"))
            error(key.source(), path + ": invalid socket name (use letters, digits, '_' and '-')");
        if (const toml::table* t = as_table(value, path))
            sockets.push_back(read_socket(Section{*t, path}, name));
    }
    check_env_name_clashes(*table);
    check_duplicate_addresses(sockets);
    return sockets;
}

ReadSocket Loader::read_socket(const Section& s, const std::string& name) {
    ReadSocket read_socket;
    SocketConfig& out = read_socket.config;
    out.name = name;
    out.pos = {static_cast<int>(s.table.source().begin.line),
               static_cast<int>(s.table.source().begin.column)};
    check_keys(s, kSocketKeys);

    if (const toml::node* n = s.get("listen")) {
        if (auto text = as_nonempty_string(*n, s.at("listen"))) {
            out.listen = *text;
            if (auto address = parse_listen_address(*text)) {
                out.address = *address;
                read_socket.listen = n;
                check_socket_kind_options(s, out.address);
            } else {
                error(*n, s.at("listen"), address.error().text());
            }
        }
    } else {
        error(s.table.source(), s.path + ": missing required key \"listen\"");
    }

    read_int(s, "backlog", out.backlog, 1, INT_MAX);
    read_bool(s, "reuse_port", out.reuse_port);
    read_bool(s, "free_bind", out.free_bind);
    read_bool(s, "ipv6_only", out.ipv6_only);
    read_bool(s, "nodelay", out.nodelay);
    read_bool(s, "keepalive", out.keepalive);
    read_int(s, "receive_buffer", out.receive_buffer, 0, INT_MAX);
    read_int(s, "send_buffer", out.send_buffer, 0, INT_MAX);
    read(s, "mode", out.mode, [&](const auto& n, const auto& p) { return as_mode(n, p); });
    read(s, "owner", out.owner, [&](const auto& n, const auto& p) { return as_account(n, p); });
    read(s, "group", out.group, [&](const auto& n, const auto& p) { return as_account(n, p); });
    return read_socket;
}

// An option the socket's kind cannot honour is an error rather than silently
// ignored: whoever wrote it expected an effect.
void Loader::check_socket_kind_options(const Section& s, const ListenAddress& address) {
    const std::string kind = address.abstract ? "an abstract unix socket"
                                              : std::string("a ") + socket_kind_name(address.kind) +
                                                    " socket";
    auto only_for = [&](std::string_view key, bool allowed, std::string_view which) {
        const toml::node* n = s.get(key);
        if (n && !allowed)
            error(*n, s.at(key), "only for " + std::string(which) + " (this is " + kind + ")");
    };
    const bool unix_path = address.is_unix() && !address.abstract;
    const bool tcp = address.kind == SocketKind::tcp;
    for (std::string_view key : {"mode", "owner", "group"})
        only_for(key, unix_path, "unix sockets with a filesystem path");
    for (std::string_view key : {"nodelay", "keepalive"}) only_for(key, tcp, "tcp sockets");
    for (std::string_view key : {"ipv6_only", "free_bind", "reuse_port"})
        only_for(key, address.is_inet(), "tcp and udp sockets");
}

// Workers find socket NAME in FDSUP_FD_<NAME> (upper-cased, '-' -> '_'), so "a-b" and
// "A_B" would be one variable. The later one in the file is the error.
void Loader::check_env_name_clashes(const toml::table& sockets) {
    std::vector<const toml::key*> keys;
    for (auto&& [key, value] : sockets) keys.push_back(&key);
    std::sort(keys.begin(), keys.end(), [](const toml::key* a, const toml::key* b) {
        return a->source().begin < b->source().begin;
    });
    std::map<std::string, std::string> first_with;  // variable -> socket name
    for (const toml::key* key : keys) {
        std::string variable = "FDSUP_FD_";
        for (char c : key->str()) variable += c == '-' ? '_' : static_cast<char>(std::toupper(c));
        auto [it, added] = first_with.emplace(variable, key->str());
        if (!added)
            error(key->source(), "sockets." + key_part(key->str()) + ": its variable " + variable +
                                     " would be the same as socket " + quote(it->second) + "'s");
    }
}

// Two sockets on one address: the second bind would fail at start-up (or, with
// reuse_port, silently share a port). Port 0 asks the kernel for a fresh one, so it
// never clashes. "Second" is in file order, which is how a reader sees them.
void Loader::check_duplicate_addresses(const std::vector<ReadSocket>& sockets) {
    std::vector<const ReadSocket*> in_file_order;
    for (const auto& s : sockets)
        if (s.listen) in_file_order.push_back(&s);
    std::sort(in_file_order.begin(), in_file_order.end(), [](auto* a, auto* b) {
        return a->listen->source().begin < b->listen->source().begin;
    });
    auto same = [](const ListenAddress& a, const ListenAddress& b) {
        if (a.is_unix() && b.is_unix()) return a.abstract == b.abstract && a.path == b.path;
        return a.kind == b.kind && a.port != 0 && a.port == b.port && a.host == b.host;
    };
    for (size_t i = 0; i < in_file_order.size(); ++i) {
        for (size_t j = 0; j < i; ++j) {
            const ReadSocket &first = *in_file_order[j], &second = *in_file_order[i];
            if (!same(first.config.address, second.config.address)) continue;
            error(*second.listen, "sockets." + key_part(second.config.name) + ".listen",
                  "same address as sockets." + key_part(first.config.name) + " (line " +
                      std::to_string(first.listen->source().begin.line) + ")");
            break;
        }
    }
}

// ---------------------------------------------------------------------------------
// [workers.NAME]

std::vector<ReadWorker> Loader::read_workers(const toml::node& node) {
    std::vector<ReadWorker> workers;
    const toml::table* table = as_table(node, "workers");
    if (!table) return workers;
    for (auto&& [key, value] : *table) worker_names_.insert(std::string(key.str()));

    for (auto&& [key, value] : *table) {
        std::string name(key.str()), path = "workers." + key_part(name);
        if (!name_is_made_of(name, "_.-"))
            error(key.source(),
                  path + ": invalid worker name (use letters, digits, '_', '.' and '-')");
        if (const toml::table* t = as_table(value, path))
            workers.push_back(read_worker(Section{*t, path}, name));
    }
    check_after_cycles(workers);
    return workers;
}

ReadWorker Loader::read_worker(const Section& s, const std::string& name) {
    ReadWorker result{{}, &s.table, s.path};
    WorkerConfig& w = result.config;
    w.name = name;
    w.pos = {static_cast<int>(s.table.source().begin.line),
             static_cast<int>(s.table.source().begin.column)};
    check_keys(s, kWorkerKeys);

    read_command(s, w);
    read_int(s, "instances", w.instances, 0, 100000);
    read_fds(s, w);
    read_socket_shorthand(s, w);
    read_scm_rights(s, w);
    read_env(s, w);
    read_bool(s, "clear_env", w.clear_env);
    read_string(s, "working_dir", w.working_dir);
    read(s, "user", w.user, [&](const auto& n, const auto& p) { return as_account(n, p); });
    read(s, "group", w.group, [&](const auto& n, const auto& p) { return as_account(n, p); });
    read(s, "umask", w.umask, [&](const auto& n, const auto& p) -> std::optional<mode_t> {
        auto m = as_mode(n, p);
        if (m && *m > 0777) {
            error(n, p, "a umask has at most the permission bits (0777)");
            return std::nullopt;
        }
        return m;
    });
    read_rlimits(s, w);
    read_choice(s, "restart", w.restart, kRestartPolicies);
    read_exit_codes(s, w);
    read_duration(s, "backoff", w.backoff);
    read_duration(s, "backoff_max", w.backoff_max);
    read_duration(s, "healthy_after", w.healthy_after);
    read_int(s, "start_limit_burst", w.start_limit_burst, 1, INT_MAX);
    read_duration(s, "start_limit_interval", w.start_limit_interval);
    read_choice(s, "ready", w.ready, kReadyModes);
    read_duration(s, "ready_delay", w.ready_delay);
    read_duration(s, "ready_timeout", w.ready_timeout);
    read_duration(s, "watchdog", w.watchdog);
    read_choice(s, "notify_access", w.notify_access, kNotifyAccess);
    read_signal(s, "stop_signal", w.stop_signal);
    read_duration(s, "stop_timeout", w.stop_timeout);
    read_choice(s, "kill_mode", w.kill_mode, kKillModes);
    read_after(s, w);
    read_signal(s, "reload_signal", w.reload_signal);
    read_choice(s, "restart_strategy", w.restart_strategy, kRestartStrategies);
    read_int(s, "max_surge", w.max_surge, 1, INT_MAX);
    read_int(s, "fd_store_max", w.fd_store_max, 0, kMaxFdStore);
    auto output = [&](const auto& n, const auto& p) { return as_output(n, p); };
    read(s, "stdout", w.stdout_target, output);
    read(s, "stderr", w.stderr_target, output);

    check_backoff(s, w);
    if (const toml::node* n = s.get("ready_timeout"); n && w.ready_timeout == 0ms)
        error(*n, s.at("ready_timeout"), "must be greater than 0");
    check_command_fds(s, w);
    check_fd_store(s, w);
    return result;
}

void Loader::read_command(const Section& s, WorkerConfig& w) {
    const toml::node* n = s.get("command");
    if (!n) {
        error(s.table.source(), s.path + ": missing required key \"command\"");
        return;
    }
    const toml::array* array = as_array(*n, s.at("command"));
    if (!array) return;
    if (array->empty())
        error(*n, s.at("command"), "must not be empty (it names the program to run)");
    for (size_t i = 0; i < array->size(); ++i) {
        std::string path = s.at("command") + "[" + std::to_string(i) + "]";
        const toml::node& element = *array->get(i);
        auto arg = i == 0 ? as_nonempty_string(element, path) : as_string(element, path);
        if (arg) w.command.push_back(*arg);
    }
}

// Parses a `fds` key: a decimal fd number (leading zeros allowed, as in "03").
std::optional<int> parse_fd_number(std::string_view text) {
    if (text.empty() || text.size() > 5) return std::nullopt;
    int fd = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        fd = fd * 10 + (c - '0');
    }
    return fd <= 65535 ? std::optional<int>(fd) : std::nullopt;
}

void Loader::read_fds(const Section& s, WorkerConfig& w) {
    const toml::node* n = s.get("fds");
    if (!n) return;
    const toml::table* table = as_table(*n, s.at("fds"));
    if (!table) return;
    // In file order, so that of "3" and "03" the later one is the duplicate.
    std::vector<std::pair<const toml::key*, const toml::node*>> entries;
    for (auto&& [key, value] : *table) entries.emplace_back(&key, &value);
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
        return a.first->source().begin < b.first->source().begin;
    });
    std::set<int> seen;  // w.fds lacks the fds whose socket is unknown
    for (const auto& [key, value] : entries) {
        std::string path = s.at("fds") + "." + key_part(key->str());
        auto socket = as_nonempty_string(*value, path);
        bool known = socket && is_known_socket(*value, *socket, path);
        auto fd = parse_fd_number(key->str());
        if (!fd)
            error(key->source(), s.at("fds") + ": " + quote(key->str()) +
                                     " is not an fd number (0..65535)");
        else if (!seen.insert(*fd).second)
            error(key->source(), path + ": fd " + std::to_string(*fd) + " is given twice");
        else if (known)
            w.fds[*fd] = *socket;
    }
}

// `sockets = ["a", "b"]` is `fds = { 3 = "a", 4 = "b" }`: the systemd LISTEN_FDS layout.
void Loader::read_socket_shorthand(const Section& s, WorkerConfig& w) {
    const toml::node* n = s.get("sockets");
    if (!n) return;
    const bool both = s.get("fds") != nullptr;
    if (both) error(*n, s.at("sockets"), "give either sockets or fds, not both");
    const toml::array* array = as_array(*n, s.at("sockets"));
    if (!array) return;
    for (size_t i = 0; i < array->size(); ++i) {
        const toml::node& element = *array->get(i);
        std::string path = s.at("sockets") + "[" + std::to_string(i) + "]";
        auto socket = as_nonempty_string(element, path);
        if (socket && is_known_socket(element, *socket, path) && !both)
            w.fds[3 + static_cast<int>(i)] = *socket;
    }
}

void Loader::read_scm_rights(const Section& s, WorkerConfig& w) {
    const toml::node* n = s.get("scm_rights");
    if (!n) return;
    const toml::array* array = as_array(*n, s.at("scm_rights"));
    if (!array) return;
    for (size_t i = 0; i < array->size(); ++i) {
        const toml::node& element = *array->get(i);
        std::string path = s.at("scm_rights") + "[" + std::to_string(i) + "]";
        auto socket = as_nonempty_string(element, path);
        if (socket && is_known_socket(element, *socket, path)) w.scm_rights.push_back(*socket);
    }
}

void Loader::read_env(const Section& s, WorkerConfig& w) {
    const toml::node* n = s.get("env");
    if (!n) return;
    const toml::table* table = as_table(*n, s.at("env"));
    if (!table) return;
    for (auto&& [key, value] : *table) {
        std::string name(key.str()), path = s.at("env") + "." + key_part(name);
        if (name.empty() || name.find_first_of(std::string_view("=\0", 2)) != std::string::npos) {
            error(key.source(), s.at("env") + ": invalid variable name " + quote(name) +
                                    " (must be non-empty, without '=')");
            continue;
        }
        if (auto text = as_string(value, path)) w.env[name] = *text;
    }
}

void Loader::read_rlimits(const Section& s, WorkerConfig& w) {
    const toml::node* n = s.get("rlimits");
    if (!n) return;
    const toml::table* table = as_table(*n, s.at("rlimits"));
    if (!table) return;
    for (auto&& [key, value] : *table) {
        std::string name(key.str()), path = s.at("rlimits") + "." + key_part(name);
        auto known = std::find_if(std::begin(kRlimits), std::end(kRlimits),
                                  [&](const auto& c) { return c.name == name; });
        if (known == std::end(kRlimits)) {
            error(key.source(), s.at("rlimits") + ": unknown limit " + quote(name) +
                                    did_you_mean(name, choice_names<int>(kRlimits)));
            continue;
        }
        RlimitSetting limit{known->value, name, 0};
        if (const auto* i = value.as_integer()) {
            if (i->get() < 0) {
                error(value, path, "must not be negative, got " + std::to_string(i->get()));
                continue;
            }
            limit.value = static_cast<rlim_t>(i->get());
        } else if (const auto* t = value.as_string();
                   t && (t->get() == "infinity" || t->get() == "unlimited")) {
            limit.value = RLIM_INFINITY;
        } else {
            type_error(value, path, "a non-negative integer or \"infinity\"");
            continue;
        }
        w.rlimits.push_back(limit);
    }
}

void Loader::read_exit_codes(const Section& s, WorkerConfig& w) {
    const toml::node* n = s.get("success_exit_codes");
    if (!n) return;
    const toml::array* array = as_array(*n, s.at("success_exit_codes"));
    if (!array) return;
    w.success_exit_codes.clear();
    for (size_t i = 0; i < array->size(); ++i) {
        std::string path = s.at("success_exit_codes") + "[" + std::to_string(i) + "]";
        if (auto code = as_integer(*array->get(i), path, 0, 255))
            w.success_exit_codes.push_back(static_cast<int>(*code));
    }
}

void Loader::read_after(const Section& s, WorkerConfig& w) {
    const toml::node* n = s.get("after");
    if (!n) return;
    const toml::array* array = as_array(*n, s.at("after"));
    if (!array) return;
    for (size_t i = 0; i < array->size(); ++i) {
        const toml::node& element = *array->get(i);
        std::string path = s.at("after") + "[" + std::to_string(i) + "]";
        auto other = as_nonempty_string(element, path);
        if (!other) continue;
        if (*other == w.name)
            error(element, path, "a worker cannot start after itself");
        else if (!worker_names_.contains(*other))
            error(element, path,
                  "unknown worker " + quote(*other) + did_you_mean(*other, worker_names_));
        else
            w.after.push_back(*other);
    }
}

// backoff doubles up to backoff_max; a cap below the start would be meaningless.
// Reported where the user can fix it: at backoff_max if written, else at backoff.
void Loader::check_backoff(const Section& s, const WorkerConfig& w) {
    if (w.backoff_max >= w.backoff) return;
    if (const toml::node* n = s.get("backoff_max"))
        error(*n, s.at("backoff_max"),
              format_duration(w.backoff_max) + " is less than backoff (" +
                  format_duration(w.backoff) + ")");
    else if (const toml::node* b = s.get("backoff"))
        error(*b, s.at("backoff"),
              format_duration(w.backoff) + " is more than backoff_max (" +
                  format_duration(w.backoff_max) + " by default); set backoff_max too");
}

// `{fd:NAME}` in the command becomes the fd number NAME is mapped to, so NAME must be
// one of this worker's fds. Any other brace text is left alone (it is the program's).
void Loader::check_command_fds(const Section& s, const WorkerConfig& w) {
    const toml::node* n = s.get("command");
    const toml::array* array = n ? n->as_array() : nullptr;
    if (!array) return;

    std::set<std::string> mapped;
    for (const auto& [fd, socket] : w.fds) mapped.insert(socket);
    if (const toml::node* sh = s.get("sockets"); sh && sh->is_array())  // both given: still theirs
        for (const auto& e : *sh->as_array())
            if (e.is_string()) mapped.insert(e.as_string()->get());

    for (size_t i = 0; i < array->size(); ++i) {
        const auto* arg = array->get(i)->as_string();
        if (!arg) continue;
        std::string_view text = arg->get();
        std::string path = s.at("command") + "[" + std::to_string(i) + "]";
        for (size_t open = text.find("{fd:"); open != std::string_view::npos;
             open = text.find("{fd:", open + 1)) {
            size_t close = text.find('}', open);
            if (close == std::string_view::npos) break;
            std::string name(text.substr(open + 4, close - open - 4));
            if (mapped.contains(name)) continue;
            if (socket_names_.contains(name))
                error(*array->get(i), path, "{fd:" + name + "}: socket " + quote(name) +
                                                " is not in this worker's fds");
            else
                error(*array->get(i), path, "{fd:" + name + "}: unknown socket " + quote(name) +
                                                did_you_mean(name, socket_names_));
        }
    }
}

// Stored fds are handed over after the worker's sockets through LISTEN_FDS, which needs
// the sockets at 3, 4, ... without a gap (a socket on 0-2 is outside the protocol).
void Loader::check_fd_store(const Section& s, const WorkerConfig& w) {
    const toml::node* n = s.get("fd_store_max");
    if (!n || w.fd_store_max <= 0) return;
    int expected = 3;
    for (const auto& [fd, socket] : w.fds) {
        if (fd < 3) continue;
        if (fd != expected++) {
            error(*n, s.at("fd_store_max"),
                  "an fd store needs the worker's fds at 3, 4, ... without a gap (stored fds follow them in "
                  "LISTEN_FDS); fd " + std::to_string(fd) + " leaves one");
            return;
        }
    }
}

// Depth-first search over `after`; every back edge closes a cycle, reported once at
// the `after` entry of the cycle's alphabetically first worker.
void Loader::check_after_cycles(const std::vector<ReadWorker>& workers) {
    std::map<std::string, const ReadWorker*> by_name;
    for (const auto& w : workers) by_name[w.config.name] = &w;
    enum class Mark { unvisited, active, done };
    std::map<std::string, Mark> marks;
    std::vector<std::string> stack;

    auto report = [&](std::vector<std::string> cycle) {
        std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()), cycle.end());
        const ReadWorker& first = *by_name[cycle[0]];
        const std::string& next = cycle.size() > 1 ? cycle[1] : cycle[0];
        std::string path_text;
        for (const auto& name : cycle) path_text += name + " -> ";
        path_text += cycle[0];
        const toml::node* after = first.table->get("after");
        const toml::node* at = after;
        for (const auto& e : *after->as_array())
            if (e.is_string() && e.as_string()->get() == next) at = &e;
        error(*at, first.path + ".after", "dependency cycle " + path_text);
    };

    auto visit = [&](auto& self, const std::string& name) -> void {
        marks[name] = Mark::active;
        stack.push_back(name);
        for (const auto& next : by_name[name]->config.after) {
            if (!by_name.contains(next)) continue;  // a non-table worker, already reported
            if (marks[next] == Mark::active)
                report({std::find(stack.begin(), stack.end(), next), stack.end()});
            else if (marks[next] == Mark::unvisited)
                self(self, next);
        }
        stack.pop_back();
        marks[name] = Mark::done;
    };
    for (const auto& [name, worker] : by_name)
        if (marks[name] == Mark::unvisited) visit(visit, name);
}

// ---------------------------------------------------------------------------------

void Loader::read_top_level(const toml::table& root, Config& config) {
    for (auto&& [key, value] : root) {
        if (std::find(std::begin(kTopLevelKeys), std::end(kTopLevelKeys), key.str()) !=
            std::end(kTopLevelKeys))
            continue;
        error(key.source(),
              "unknown key " + quote(key.str()) +
                  " (the tables are [supervisor], [sockets.NAME] and [workers.NAME])" +
                  did_you_mean(key.str(), kTopLevelKeys));
    }

    if (const toml::node* n = root.get("supervisor")) read_supervisor(*n, config.supervisor);
    if (config.supervisor.control_socket.empty())
        config.supervisor.control_socket = default_control_socket();
    if (config.supervisor.runtime_dir.empty())
        config.supervisor.runtime_dir = dirname_of(config.supervisor.control_socket);

    std::vector<ReadSocket> sockets;
    if (const toml::node* n = root.get("sockets")) sockets = read_sockets(*n);
    for (auto& s : sockets) config.sockets.push_back(std::move(s.config));

    std::vector<ReadWorker> workers;
    if (const toml::node* n = root.get("workers")) workers = read_workers(*n);
    for (auto& w : workers) config.workers.push_back(std::move(w.config));

    auto by_name = [](const auto& a, const auto& b) { return a.name < b.name; };
    std::sort(config.sockets.begin(), config.sockets.end(), by_name);
    std::sort(config.workers.begin(), config.workers.end(), by_name);
}

LoadResult Loader::load(std::string_view text) {
    LoadResult result;
    toml::table root;
    try {
        root = toml::parse(text, std::string_view(file_));
    } catch (const toml::parse_error& e) {
        error(e.source(), std::string(e.description()));
        result.errors = std::move(errors_);
        return result;
    }

    Config config;
    config.path = file_;
    config.source = std::string(text);
    read_top_level(root, config);

    std::stable_sort(errors_.begin(), errors_.end(), [](const auto& a, const auto& b) {
        return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    result.errors = std::move(errors_);
    if (result.errors.empty()) result.config = std::move(config);
    return result;
}

}  // namespace

LoadResult load_config_file(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "re");
    std::string text;
    int err = 0;
    if (!f) {
        err = errno;
    } else {
        char buffer[65536];
        size_t got;
        errno = 0;
        while ((got = std::fread(buffer, 1, sizeof buffer, f)) > 0) text.append(buffer, got);
        if (std::ferror(f)) err = errno ? errno : EIO;  // e.g. EISDIR for a directory
        std::fclose(f);
    }
    if (err != 0) {
        LoadResult result;
        result.errors.push_back({path, 0, 0, std::string("cannot read: ") + std::strerror(err)});
        return result;
    }
    return load_config_string(text, path);
}

LoadResult load_config_string(std::string_view text, const std::string& path) {
    return Loader(path).load(text);
}

}  // namespace fdsup::config
