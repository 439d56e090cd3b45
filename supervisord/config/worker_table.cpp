// [workers.NAME]: every key of a worker, and the checks that need more than one.
#include <algorithm>
#include <cstdlib>
#include <map>
#include <tuple>

#include "config/table_reader.h"
#include "config/values.h"

namespace fdsup::config {

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
    read_duration(s, "stop_delay", w.stop_delay);
    read_choice(s, "kill_mode", w.kill_mode, kKillModes);
    read_after(s, w);
    read_signal(s, "reload_signal", w.reload_signal);
    read_choice(s, "restart_strategy", w.restart_strategy, kRestartStrategies);
    read_int(s, "max_surge", w.max_surge, 1, INT_MAX);
    read_int(s, "fd_store_max", w.fd_store_max, 0, kMaxFdStore);
    auto output = [&](const auto& n, const auto& p) { return as_output(n, p); };
    read(s, "stdout", w.stdout_target, output);
    read(s, "stderr", w.stderr_target, output);
    read(s, "log_max_size", w.log_max_size, [&](const auto& n, const auto& p) { return as_size(n, p, false); });
    read_int(s, "log_keep", w.log_keep, 0, kMaxLogKeep);
    read_bool(s, "log_compress", w.log_compress);
    read_choice(s, "log_timestamps", w.log_timestamps, kLogTimestamps);
    w.ready_probe = read_probe(s, "ready_probe", w);
    w.liveness_probe = read_probe(s, "liveness_probe", w);
    read_limits(s, w.limits);
    read_recycle(s, w.recycle);
    read_on_demand(s, w);

    check_backoff(s, w);
    check_ready_mode(s, w);
    if (const toml::node* n = s.get("ready_timeout"); n && w.ready_timeout == 0ms)
        error(*n, s.at("ready_timeout"), "must be greater than 0");
    check_command_fds(s, w);
    check_fd_store(s, w);
    check_stdio_sockets(s, w);
    check_limits(s, w);
    check_recycle(s, w);
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
              duration_text(w.backoff_max) + " is less than backoff (" +
                  duration_text(w.backoff) + ")");
    else if (const toml::node* b = s.get("backoff"))
        error(*b, s.at("backoff"),
              duration_text(w.backoff) + " is more than backoff_max (" +
                  duration_text(w.backoff_max) + " by default); set backoff_max too");
}

// `{fd:NAME}` in the command becomes the fd number NAME is mapped to, so NAME must be
// one of this worker's fds. Any other brace text is left alone (it is the program's).
// A socket on fd 1 or 2 is allowed (inetd-style apps write their replies to stdout),
// but then the worker's output goes into the socket: a "log" target there captures
// nothing, which is worth a word.
void Loader::check_stdio_sockets(const Section& s, const WorkerConfig& w) {
    const toml::node* fds = s.get("fds");
    if (fds == nullptr) return;
    for (auto [fd, key, target] : {std::tuple{1, "stdout", w.stdout_target}, std::tuple{2, "stderr", w.stderr_target}}) {
        auto mapped = w.fds.find(fd);
        if (mapped == w.fds.end() || !is_captured(target.kind)) continue;
        warning(*fds, s.at("fds"), "fd " + std::to_string(fd) + " is socket " + quote(mapped->second) + ", so " +
                                       key + " = " + quote(output_text(target)) + " captures nothing (the worker's " + key +
                                       " is the socket); set " + key + " = \"null\" to say so");
    }
}

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

}  // namespace fdsup::config
