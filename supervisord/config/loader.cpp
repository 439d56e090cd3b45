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
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <utility>

#include "config/table_reader.h"
#include "config/values.h"

namespace fdsup::config {

std::string ConfigError::text() const {
    if (line == 0) return file + ": " + message;
    return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

std::string duration_text(Duration d) {
    auto ms = d.count();
    if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
    if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

namespace {

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

}  // namespace

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
    read_choice(s, "log_format", out.log_format, kLogFormats);
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
    out.adopt = read_socket_adopt(s);
    return read_socket;
}

// adopt = { pid_file = "/run/nginx.pid" }
std::optional<SocketAdopt> Loader::read_socket_adopt(const Section& s) {
    const toml::node* n = s.get("adopt");
    if (n == nullptr) return std::nullopt;
    const toml::table* t = as_table(*n, s.at("adopt"));
    if (t == nullptr) return std::nullopt;
    Section adopt{*t, s.at("adopt")};
    check_keys(adopt, kSocketAdoptKeys);
    const toml::node* file = adopt.get("pid_file");
    if (file == nullptr) {
        error(*n, adopt.path, "missing required key \"pid_file\" (the file with the pid of the process to take the socket from)");
        return std::nullopt;
    }
    auto path = as_nonempty_string(*file, adopt.at("pid_file"));
    if (!path) return std::nullopt;
    if (path->front() != '/') {
        error(*file, adopt.at("pid_file"), quote(*path) + ": the pid file must be an absolute path");
        return std::nullopt;
    }
    return SocketAdopt{*path};
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
    std::vector<ReadWorker> workers;
    if (const toml::node* n = root.get("workers")) workers = read_workers(*n);
    check_probe_targets(sockets, workers);
    check_on_demand_sockets(sockets, workers);
    check_log_paths(workers);
    for (auto& s : sockets) config.sockets.push_back(std::move(s.config));
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

    auto by_position = [](const auto& a, const auto& b) {
        return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    };
    std::stable_sort(errors_.begin(), errors_.end(), by_position);
    std::stable_sort(warnings_.begin(), warnings_.end(), by_position);
    result.errors = std::move(errors_);
    result.warnings = std::move(warnings_);
    if (result.errors.empty()) result.config = std::move(config);
    return result;
}

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
