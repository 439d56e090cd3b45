// [workers.NAME.ready_probe] and [workers.NAME.liveness_probe] (health/ runs them),
// and the check across tables that a probe does not aim at a socket fdsupd shares
// among instances.
#include <algorithm>

#include "config/placeholders.h"
#include "config/probe_target.h"
#include "config/table_reader.h"

namespace fdsup::config {

namespace {

constexpr std::string_view kProbeKinds[] = {"http", "tcp", "exec"};

// Where a probe's target resolves to for one instance: the address it connects to.
std::optional<ListenAddress> probe_address(const ProbeConfig& probe, const WorkerConfig& w, int instance) {
    std::string target = expand_placeholders(probe.target, w, instance);
    if (probe.kind == ProbeKind::http) {
        if (auto url = parse_http_url(target)) return url->address;
    } else if (probe.kind == ProbeKind::tcp) {
        if (auto address = parse_tcp_target(target)) return *address;
    }
    return std::nullopt;
}

bool is_wildcard(const std::string& host) { return host.empty() || host == "0.0.0.0" || host == "::"; }
bool is_loopback_name(const std::string& host) { return host == "localhost" || host == "127.0.0.1"; }

// A connection to `target` may reach the socket that listens on `listen`.
bool reaches(const ListenAddress& target, const ListenAddress& listen) {
    if (!listen.listens()) return false;
    if (target.is_unix() || listen.is_unix())
        return target.is_unix() && listen.is_unix() && target.path == listen.path &&
               target.abstract == listen.abstract;
    if (listen.kind != SocketKind::tcp || target.port != listen.port) return false;
    return is_wildcard(listen.host) || target.host == listen.host ||
           (is_loopback_name(target.host) && is_loopback_name(listen.host));
}

}  // namespace

std::optional<ProbeConfig> Loader::read_probe(const Section& worker, std::string_view key, const WorkerConfig& w) {
    const toml::node* n = worker.get(key);
    if (!n) return std::nullopt;
    const toml::table* table = as_table(*n, worker.at(key));
    if (!table) return std::nullopt;
    const bool liveness = key == "liveness_probe";
    Section s{*table, worker.at(key)};
    check_keys(s, kProbeKeys);

    ProbeConfig probe;
    probe.pos = {static_cast<int>(table->source().begin.line), static_cast<int>(table->source().begin.column)};
    probe.interval = liveness ? 10s : 100ms;
    bool ok = true;
    const toml::node* kind_node = nullptr;
    std::string_view kind_name;
    for (std::string_view kind : kProbeKinds) {
        const toml::node* k = s.get(kind);
        if (!k) continue;
        if (kind_node) {
            error(*k, s.at(kind), "a probe has exactly one of http, tcp and exec");
            ok = false;
            continue;
        }
        kind_node = k;
        kind_name = kind;
        probe.kind = kind == "http" ? ProbeKind::http : kind == "tcp" ? ProbeKind::tcp : ProbeKind::exec;
    }
    if (!kind_node) {
        error(table->source(), s.path + ": needs one of http = \"http://HOST:PORT/PATH\", tcp = \"HOST:PORT\" or "
                                        "exec = [\"program\", ...]");
        ok = false;
    } else if (probe.kind == ProbeKind::exec) {
        ok = read_probe_command(*kind_node, s.at("exec"), probe) && ok;
    } else if (auto target = as_nonempty_string(*kind_node, s.at(kind_name))) {
        probe.target = *target;
        ok = check_probe_target(*kind_node, s.at(kind_name), probe, w) && ok;
    } else {
        ok = false;
    }

    read_duration(s, "interval", probe.interval);
    read_duration(s, "timeout", probe.timeout);
    for (std::string_view positive : {"interval", "timeout"})
        if (const toml::node* d = s.get(positive); d && (positive == "interval" ? probe.interval : probe.timeout) == 0ms) {
            error(*d, s.at(positive), "must be greater than 0");
            ok = false;
        }
    if (const toml::node* f = s.get("failures"); f && !liveness) {
        error(*f, s.at("failures"),
              "is for liveness_probe only (a ready probe makes the instance ready at its first pass; "
              "ready_timeout bounds how long it may fail)");
        ok = false;
    }
    read_int(s, "failures", probe.failures, 1, 1000);
    return ok ? std::optional(probe) : std::nullopt;
}

bool Loader::read_probe_command(const toml::node& n, const std::string& path, ProbeConfig& probe) {
    const toml::array* array = as_array(n, path);
    if (!array) return false;
    if (array->empty()) {
        error(n, path, "must not be empty (it names the program to run)");
        return false;
    }
    bool ok = true;
    for (size_t i = 0; i < array->size(); ++i) {
        std::string at = path + "[" + std::to_string(i) + "]";
        auto arg = i == 0 ? as_nonempty_string(*array->get(i), at) : as_string(*array->get(i), at);
        if (arg) probe.command.push_back(*arg);
        else ok = false;
    }
    return ok;
}

// The target, with {instance} filled in, must parse for every instance the worker
// starts with (a later scale-up that makes a bad one fails that instance's probe).
bool Loader::check_probe_target(const toml::node& n, const std::string& path, const ProbeConfig& probe,
                                const WorkerConfig& w) {
    const int count = std::max(1, w.instances);
    for (int instance = 0; instance < count; ++instance) {
        std::string target = expand_placeholders(probe.target, w, instance);
        std::string problem;
        if (probe.kind == ProbeKind::http) {
            if (auto url = parse_http_url(target); !url) problem = url.error().message;
        } else if (auto address = parse_tcp_target(target); !address) {
            problem = address.error().message;
        }
        if (problem.empty()) {
            if (target == probe.target) break;  // the same for every instance
            continue;
        }
        error(n, path, problem + (target == probe.target ? "" : " (for instance " + std::to_string(instance) + ": " + quote(target) + ")"));
        return false;
    }
    return true;
}

// ready = "probe" needs a ready_probe, and a ready_probe is for nothing else;
// ready = "accepting" needs a socket to be seen accepting on.
void Loader::check_ready_mode(const Section& s, const WorkerConfig& w) {
    if (w.ready == ReadyMode::accepting && w.fds.empty() && w.scm_rights.empty() && !s.get("fds") &&
        !s.get("sockets") && !s.get("scm_rights")) {
        const toml::node* ready = s.get("ready");
        error(ready ? ready->source() : s.table.source(),
              s.at("ready") + ": \"accepting\" needs a listening socket to see the worker accept on (fds, sockets "
                              "or scm_rights)");
    }
    const toml::node* probe = s.get("ready_probe");
    if (w.ready == ReadyMode::probe && !probe) {
        const toml::node* ready = s.get("ready");
        error(ready ? ready->source() : s.table.source(),
              s.at("ready") + ": \"probe\" needs a [" + s.path + ".ready_probe] table");
    } else if (probe && w.ready != ReadyMode::probe) {
        error(*probe, s.at("ready_probe"), "is used only with ready = \"probe\"");
    }
}

// A socket fdsupd owns is shared by every instance of the workers it is handed to: a
// probe that connects to it is answered by whichever instance accepts first (during a
// rolling restart, by the old process or the new one), so it says nothing about the
// instance it is meant to check.
void Loader::check_probe_targets(const std::vector<ReadSocket>& sockets, const std::vector<ReadWorker>& workers) {
    for (const auto& rw : workers) {
        const WorkerConfig& w = rw.config;
        for (auto [key, probe] : {std::pair{"ready_probe", &w.ready_probe}, std::pair{"liveness_probe", &w.liveness_probe}}) {
            if (!*probe || (*probe)->kind == ProbeKind::exec) continue;
            const char* kind = (*probe)->kind == ProbeKind::http ? "http" : "tcp";
            const toml::node* table = rw.table->get(key);
            const toml::node* node = table && table->is_table() ? table->as_table()->get(kind) : nullptr;
            if (!node) continue;
            bool reported = false;
            for (int instance = 0; instance < std::max(1, w.instances) && !reported; ++instance) {
                auto address = probe_address(**probe, w, instance);
                if (!address) continue;
                for (const auto& socket : sockets) {
                    if (!socket.listen || !reaches(*address, socket.config.address)) continue;
                    error(*node, rw.path + "." + key + "." + kind,
                          "aims at socket " + quote(socket.config.name) + " (" + socket.config.listen +
                              "), which fdsupd owns and shares among instances: any instance may answer, so it "
                              "would not check " + instance_label(w.name, instance) +
                              "; give each instance an address of its own (e.g. a port with {instance}) or use exec");
                    reported = true;
                    break;
                }
            }
        }
    }
}

}  // namespace fdsup::config
