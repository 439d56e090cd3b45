#include "config/diff.h"

#include <algorithm>

namespace fdsup::config {
namespace {

bool uses_socket(const WorkerConfig& worker, const std::string& socket) {
    for (const auto& [fd, name] : worker.fds)
        if (name == socket) return true;
    return std::find(worker.scm_rights.begin(), worker.scm_rights.end(), socket) != worker.scm_rights.end();
}

// The options that are fixed once a socket is bound.
std::vector<std::string> bind_time_changes(const SocketConfig& a, const SocketConfig& b) {
    std::vector<std::string> changed;
    if (a.reuse_port != b.reuse_port) changed.push_back("reuse_port");
    if (a.free_bind != b.free_bind) changed.push_back("free_bind");
    if (a.ipv6_only != b.ipv6_only) changed.push_back("ipv6_only");
    return changed;
}

// `a` with `adopt` in place of its own: how a socket is first had (taken from another
// process or bound) is history once fdsupd owns it, so a change of adopt alone is none.
SocketConfig with_adopt(SocketConfig a, const std::optional<SocketAdopt>& adopt) {
    a.adopt = adopt;
    return a;
}

void diff_supervisor(const SupervisorConfig& a, const SupervisorConfig& b, ConfigDiff& diff) {
    auto note = [&](bool changed, const char* key) {
        if (changed) diff.supervisor_keys_changed.push_back(key);
    };
    note(a.control_socket != b.control_socket, "control_socket");
    note(a.control_mode != b.control_mode, "control_mode");
    note(a.control_group != b.control_group, "control_group");
    note(a.runtime_dir != b.runtime_dir, "runtime_dir");
    note(a.log_level != b.log_level, "log_level");
    note(a.log_format != b.log_format, "log_format");
    note(a.metrics_listen != b.metrics_listen, "metrics_listen");
    note(a.shutdown_timeout != b.shutdown_timeout, "shutdown_timeout");
    note(a.control_idle_timeout != b.control_idle_timeout, "control_idle_timeout");
    note(a.control_max_clients != b.control_max_clients, "control_max_clients");
}

}  // namespace

ConfigDiff diff_configs(const Config& running, const Config& next) {
    ConfigDiff diff;
    diff_supervisor(running.supervisor, next.supervisor, diff);

    for (const auto& socket : next.sockets) {
        const SocketConfig* old = running.find_socket(socket.name);
        if (old == nullptr) {
            diff.sockets_added.push_back(socket.name);
        } else if (old->listen != socket.listen) {
            diff.sockets_replaced.push_back(socket.name);
        } else if (!(with_adopt(*old, socket.adopt) == socket)) {
            auto fixed = bind_time_changes(*old, socket);
            if (fixed.empty()) {
                diff.sockets_updated.push_back(socket.name);
            } else {
                std::string keys;
                for (const auto& k : fixed) keys += (keys.empty() ? "" : ", ") + k;
                diff.errors.push_back("socket " + socket.name + ": " + keys +
                                      " cannot change while listen stays " + socket.listen +
                                      " (fixed when the socket was bound); change listen too, or restart fdsupd");
            }
        }
    }
    for (const auto& socket : running.sockets)
        if (next.find_socket(socket.name) == nullptr) diff.sockets_removed.push_back(socket.name);

    for (const auto& worker : next.workers) {
        const WorkerConfig* old = running.find_worker(worker.name);
        if (old == nullptr) {
            diff.workers_added.push_back(worker.name);
            continue;
        }
        // Limits, recycling and stop_delay are changed live: they alone do not restart anything.
        WorkerConfig old_same_count = *old;
        old_same_count.instances = worker.instances;
        old_same_count.limits = worker.limits;
        old_same_count.recycle = worker.recycle;
        old_same_count.stop_delay = worker.stop_delay;
        old_same_count.start = worker.start;
        old_same_count.idle_stop = worker.idle_stop;
        // The log_* options are applied to the open files (Outputs::retune_logs).
        old_same_count.log_max_size = worker.log_max_size;
        old_same_count.log_keep = worker.log_keep;
        old_same_count.log_compress = worker.log_compress;
        old_same_count.log_timestamps = worker.log_timestamps;
        bool maps_replaced = std::any_of(diff.sockets_replaced.begin(), diff.sockets_replaced.end(),
                                         [&](const std::string& s) { return uses_socket(worker, s); });
        bool changed = !(old_same_count == worker) || maps_replaced;
        if (changed)
            diff.workers_changed.push_back(worker.name);
        else if (old->instances != worker.instances)
            diff.workers_scaled.push_back(worker.name);
        else
            diff.workers_unchanged.push_back(worker.name);
        if (!changed && (!(old->limits == worker.limits) || !(old->recycle == worker.recycle) ||
                         old->stop_delay != worker.stop_delay))
            diff.workers_retuned.push_back(worker.name);
        if (!changed && (old->start != worker.start || old->idle_stop != worker.idle_stop))
            diff.workers_demand_changed.push_back(worker.name);
    }
    for (const auto& worker : running.workers)
        if (next.find_worker(worker.name) == nullptr) diff.workers_removed.push_back(worker.name);
    return diff;
}

}  // namespace fdsup::config
