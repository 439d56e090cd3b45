// reload: re-read the config file and apply the difference (SPEC "reload semantics").
//
// Order matters for "no connection refused": new sockets are bound first (a bind that
// fails changes nothing), then workers move; a socket that was replaced or removed is
// closed only once no process holds it any more (see Supervisor::sweep).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>

#include "config/loader.h"
#include "sockets/bind.h"
#include "config/diff.h"
#include "logging/logging.h"
#include "supervisor/supervisor.h"
#include "sys/manager_notify.h"
#include "table/log_about.h"

namespace fdsup {
namespace {

std::string join(const std::vector<std::string>& items) {
    std::string text;
    for (const auto& item : items) text += (text.empty() ? "" : ", ") + item;
    return text.empty() ? "-" : text;
}

// [supervisor] keys that only a restart (or upgrade) of fdsupd applies.
bool needs_restart(const std::string& key) {
    return key == "control_socket" || key == "control_mode" || key == "control_group" ||
           key == "runtime_dir" || key == "metrics_listen";
}

}  // namespace

void Supervisor::reload(ProgressFn progress, ReloadDoneFn done, const CanaryOptions& canary,
                        std::optional<AdoptRequest> adopt) {
    done = [this, done = std::move(done)](ReloadResult result) {
        ++(result.ok ? reloads_ok_ : reloads_failed_);
        done(std::move(result));
    };
    ReloadResult result;
    result.config_path = config_.path;
    auto refuse = [&](std::string error) {
        result.ok = false;
        result.error = std::move(error);
        spdlog::error("reload refused: {}", result.error);
        for (const auto& e : result.config_errors) spdlog::error("  {}", e);
        EventFields fields{{"error", result.error}};
        if (!result.config_errors.empty()) fields.emplace_back("errors", result.config_errors);
        emit(EventKind::reload_refused, std::string(), std::move(fields));
        done(std::move(result));
    };
    // Refused before it begins: the service manager hears nothing (a reload already
    // running still owes it its READY=1; a shutdown has said STOPPING=1).
    if (shutting_down_) return refuse("fdsupd is shutting down");
    if (reloading_) return refuse("a reload is already in progress");
    // Otherwise it hears of it, failed or not: RELOADING=1 now, READY=1 when it is over
    // (systemd waits for that before it takes the unit as reloaded).
    if (manager_.notify) {
        manager_.notify(ManagerNotify::reloading_message());
        done = [this, done = std::move(done)](ReloadResult result) {
            manager_.notify("READY=1\nSTATUS=" + status_summary() + (result.ok ? "" : " (the last reload failed)"));
            done(std::move(result));
        };
    }

    spdlog::info("reload: reading {}", config_.path);
    auto loaded = config::load_config_file(config_.path);
    if (!loaded.config) {
        for (const auto& e : loaded.errors) result.config_errors.push_back(e.text());
        return refuse(config_.path + " is invalid (" + std::to_string(loaded.errors.size()) + " error" +
                      (loaded.errors.size() == 1 ? "" : "s") + "); nothing changed");
    }
    config::Config next = std::move(*loaded.config);
    for (const auto& warning : loaded.warnings) result.warnings.push_back(warning.text());
    config::ConfigDiff diff = config::diff_configs(config_, next);
    result.config_errors = diff.errors;
    for (const auto* names : {&diff.workers_changed, &diff.workers_scaled})
        for (const auto& name : *names)
            if (Worker* w = find_worker(name); w && !w->rollout &&
                                               std::any_of(w->instances.begin(), w->instances.end(),
                                                           [](const auto& i) { return i->retiring; }))
                result.config_errors.push_back("worker " + name +
                                               ": still has instances stopping (scaled away or replaced)");
    for (const auto* names : {&diff.workers_changed, &diff.workers_removed, &diff.workers_scaled})
        for (const auto& name : *names)
            if (Worker* w = find_worker(name); w && w->rollout) result.config_errors.push_back(busy_reason(*w));
    if (!result.config_errors.empty()) return refuse("the new configuration cannot be applied live; nothing changed");
    if (canary.count > 0) {
        // The canary applies to each changed worker a rolling restart replaces (one that
        // does not run is simply started on the new spec).
        bool any = false;
        for (const auto& name : diff.workers_changed) {
            Worker& worker = *find_worker(name);
            const config::WorkerConfig& wanted = *next.find_worker(name);
            if (wanted.restart_strategy != config::RestartStrategy::rolling || !worker.any_process() ||
                worker.stopped_by_operator)
                continue;
            any = true;
            if (auto refusal = canary_refusal(worker, canary); !refusal.empty()) result.config_errors.push_back(refusal);
            // The canaries run the new spec beside instances of the old one: only what a
            // process is started with may differ (readiness, probes, sockets, limits and
            // policies are the worker's, one for all its instances).
            config::WorkerConfig spawn_only = worker.config;
            spawn_only.command = wanted.command;
            spawn_only.env = wanted.env;
            spawn_only.clear_env = wanted.clear_env;
            spawn_only.working_dir = wanted.working_dir;
            spawn_only.user = wanted.user;
            spawn_only.group = wanted.group;
            spawn_only.umask = wanted.umask;
            spawn_only.rlimits = wanted.rlimits;
            spawn_only.stdout_target = wanted.stdout_target;
            spawn_only.stderr_target = wanted.stderr_target;
            spawn_only.instances = wanted.instances;
            spawn_only.pos = wanted.pos;
            if (!(spawn_only == wanted))
                result.config_errors.push_back(
                    "worker " + name +
                    ": a canary can try a new command, env, clear_env, working_dir, user, group, umask, rlimits, "
                    "stdout or stderr; this reload changes more of it (reload without --canary)");
        }
        if (!any)
            result.config_errors.push_back("--canary: no changed worker is replaced by a rolling restart (changed: " +
                                           join(diff.workers_changed) + ")");
        if (!result.config_errors.empty()) return refuse("the canary cannot be had; nothing changed");
    }
    if (adopt) {
        const std::string& name = adopt->socket;
        if (next.find_socket(name) == nullptr)
            return refuse("socket " + name + ": " + config_.path + " has no [sockets." + name +
                          "]; add it (with the workers that use it), then adopt it; nothing changed");
        if (const OwnedSocket* owned = sockets_.find(name))
            return refuse("socket " + name + ": fdsupd owns it already (" + owned->bound + "); nothing changed");
    }
    // The controllers the new limits need (cgroups/instance_limits.h), before anything else changes.
    if (auto prepared = cgroups_.prepare_limits(next); !prepared) {
        result.config_errors.push_back(prepared.error().text());
        return refuse("the new limits cannot be had; nothing changed");
    }

    // 1. Bind what is new. Nothing has changed yet, so a failure just closes these.
    // A unix socket file that answers is refused, unless it is one of ours this reload
    // (or an earlier one) retires: a socket renamed, or changed in kind, on the same path.
    std::vector<std::string> leaving = diff.sockets_removed;
    leaving.insert(leaving.end(), diff.sockets_replaced.begin(), diff.sockets_replaced.end());
    std::vector<std::string> retiring_paths = sockets_.unix_paths_leaving(leaving);
    // Added sockets with adopt = { pid_file } (and the one `fdsupctl adopt` names) are taken
    // over from their process instead; failing, they change nothing either (and their
    // files are the other process's: never removed).
    std::vector<OwnedSocket> bound;
    for (const auto* names : {&diff.sockets_added, &diff.sockets_replaced}) {
        for (const auto& name : *names) {
            const config::SocketConfig& socket_config = *next.find_socket(name);
            const bool added = names == &diff.sockets_added;
            std::optional<Result<TakenSocket>> taken;
            if (added && adopt && adopt->socket == name) taken = take_over_socket(socket_config, adopt->from);
            else if (added && socket_config.adopt) taken = take_over_from_pid_file(socket_config);
            if (taken && !*taken) {
                for (const auto& b : bound)
                    if (!b.adopted_from) remove_socket_file(b.config);
                result.config_errors.push_back(taken->error().text());
                return refuse("socket " + name + " cannot be taken over; nothing changed");
            }
            if (taken) {
                TakenSocket& t = **taken;
                spdlog::info("socket {}: taken over from pid {} fd {}, listening on {} ({})", name, t.pid, t.fd,
                             t.socket.bound, socket_config.listen);
                result.sockets_adopted.push_back({name, t.pid, t.fd, t.socket.bound});
                bound.push_back({socket_config, std::move(t.socket.fd), t.socket.bound, 0, false,
                                 OwnedSocket::AdoptedFrom{t.pid, t.fd}});
                continue;
            }
            auto socket = bind_socket(socket_config, retiring_paths);
            if (!socket) {
                for (const auto& b : bound)
                    if (!b.adopted_from) remove_socket_file(b.config);
                result.config_errors.push_back(socket.error().text());
                return refuse("a new socket cannot be bound; nothing changed");
            }
            spdlog::info("socket {}: listening on {} ({})", name, socket->bound, socket_config.listen);
            bound.push_back({socket_config, std::move(socket->fd), std::move(socket->bound), 0});
        }
    }

    // 2. The socket table: kept (and updated), new, and retired (closed once unheld).
    for (const auto& name : diff.sockets_updated) {
        OwnedSocket& socket = *sockets_.find(name);
        socket.config = *next.find_socket(name);
        if (auto ok = update_socket_options(socket.fd.get(), socket.config); !ok)
            result.warnings.push_back(ok.error().text());
        else
            spdlog::info("socket {}: options updated", name);
    }
    sockets_.retire(diff.sockets_removed);
    sockets_.retire(diff.sockets_replaced);
    // The manager's fd store follows: what is gone out (by name, before the new one of a
    // replaced socket goes in under the same name), what is new in.
    if (manager_.park) {
        for (const auto* names : {&diff.sockets_removed, &diff.sockets_replaced})
            for (const auto& name : *names) manager_.unpark(name);
        for (auto& socket : bound) socket.held_by_manager = manager_.park(socket.config.name, socket.fd.get());
    }
    sockets_.add(std::move(bound));

    // 3. [supervisor] settings.
    for (const auto& key : diff.supervisor_keys_changed) {
        if (needs_restart(key))
            // Each image binds the metrics listener anew; the control, notify and fd
            // sockets an upgrade hands over stay where they are.
            result.warnings.push_back("supervisor." + key + " changed: takes effect when fdsupd restarts" +
                                      (key == "metrics_listen" ? " or is upgraded in place (fdsupctl upgrade)" : ""));
    }
    if (next.supervisor.log_level != config_.supervisor.log_level) set_log_level(next.supervisor.log_level);
    if (next.supervisor.log_format != config_.supervisor.log_format) set_log_format(next.supervisor.log_format);
    std::string previous_source = std::move(config_.source);
    config_ = next;
    // log_max_size, log_keep, log_compress, log_timestamps: in effect at once, for the
    // open files too (the diff restarts no worker for them).
    for (auto& worker : workers_)
        if (const config::WorkerConfig* spec = next.find_worker(worker->config.name)) {
            worker->config.log_max_size = spec->log_max_size;
            worker->config.log_keep = spec->log_keep;
            worker->config.log_compress = spec->log_compress;
            worker->config.log_timestamps = spec->log_timestamps;
        }
    outputs_.retune_logs(next);
    for (const auto& adopted : result.sockets_adopted)
        emit(EventKind::socket_adopted, std::string(),
             {{"socket", adopted.socket}, {"from_pid", static_cast<int64_t>(adopted.pid)},
              {"fd", static_cast<int64_t>(adopted.fd)}, {"address", adopted.bound}});
    // A worker left on an earlier spec by a rollback and not changed now (the file went
    // back to that spec) runs what the loaded config says again.
    for (const auto* names : {&diff.workers_unchanged, &diff.workers_scaled, &diff.workers_retuned})
        for (const auto& name : *names)
            if (Worker* w = find_worker(name)) w->config_source.clear();

    result.sockets_added = diff.sockets_added;
    result.sockets_removed = diff.sockets_removed;
    result.sockets_replaced = diff.sockets_replaced;
    result.sockets_updated = diff.sockets_updated;
    result.workers_added = diff.workers_added;
    result.workers_removed = diff.workers_removed;
    result.workers_changed = diff.workers_changed;
    result.workers_scaled = diff.workers_scaled;
    result.workers_unchanged = diff.workers_unchanged;
    result.workers_retuned = diff.workers_retuned;
    // Limits, recycling and stop_delay: in effect at once, for the running instances too.
    for (const auto& name : diff.workers_retuned) {
        Worker& worker = *find_worker(name);
        config::ResourceLimits before = worker.config.limits;
        const auto& next_recycle = next.find_worker(name)->recycle;
        bool age_changed = worker.config.recycle.max_age != next_recycle.max_age ||
                           worker.config.recycle.max_age_jitter != next_recycle.max_age_jitter;
        worker.config.limits = next.find_worker(name)->limits;
        worker.config.recycle = next.find_worker(name)->recycle;
        worker.config.stop_delay = next.find_worker(name)->stop_delay;
        for (auto& instance : worker.instances) {
            if (!instance->has_process()) continue;
            if (auto updated = cgroups_.update_limits(*instance, before); !updated)
                result.warnings.push_back("worker " + instance->label() + ": " + updated.error().text());
            if (instance->ready && age_changed) set_recycle_deadline(*instance);  // the new max_age counts from now
            if (!worker.config.recycle.memory) instance->usage.memory_over_since.reset();
        }
        about_worker(name).info("worker {}: limits and recycling updated", name);
    }
    rearm_recycling();
    for (const auto& name : diff.workers_demand_changed) {
        on_demand_retuned(*find_worker(name), *next.find_worker(name));
        about_worker(name).info("worker {}: start and idle_stop updated", name);
    }
    for (const auto& w : result.warnings) spdlog::warn("reload: {}", w);
    spdlog::info("reload: workers added {}; removed {}; changed {}; scaled {}; unchanged {}", join(diff.workers_added),
                 join(diff.workers_removed), join(diff.workers_changed), join(diff.workers_scaled),
                 join(diff.workers_unchanged));

    // 4. Workers. Each part reports when its processes have done what it asked.
    reloading_ = true;
    size_t parts = diff.workers_removed.size() + diff.workers_changed.size() + diff.workers_scaled.size() +
                   diff.workers_added.size();
    auto shared = std::make_shared<ReloadResult>(std::move(result));
    auto remaining = std::make_shared<size_t>(parts + 1);  // +1: released below, after every part began
    auto finish_part = [this, shared, remaining, done](std::vector<InstanceReport> reports) {
        std::move(reports.begin(), reports.end(), std::back_inserter(shared->instances));
        if (--*remaining > 0) return;
        reloading_ = false;
        shared->ok = std::all_of(shared->instances.begin(), shared->instances.end(),
                                 [](const InstanceReport& r) { return r.ok; });
        if (!shared->ok) {
            auto first = std::find_if(shared->instances.begin(), shared->instances.end(),
                                      [](const InstanceReport& r) { return !r.ok; });
            shared->error = "the new configuration is in effect, but not every instance runs it: " + first->message;
        }
        spdlog::info("reload: done{}", shared->ok ? "" : " (some instances did not start)");
        EventFields fields{{"ok", shared->ok},
                           {"added", shared->workers_added},
                           {"removed", shared->workers_removed},
                           {"changed", shared->workers_changed},
                           {"scaled", shared->workers_scaled},
                           {"sockets_added", shared->sockets_added},
                           {"sockets_removed", shared->sockets_removed},
                           {"sockets_replaced", shared->sockets_replaced}};
        if (!shared->ok) fields.emplace_back("error", shared->error);
        emit(EventKind::reload, std::string(), std::move(fields));
        done(std::move(*shared));
    };

    for (const auto& name : diff.workers_removed) {
        Worker& worker = *find_worker(name);
        about_worker(name).info("worker {}: removed from the configuration; stopping", name);
        ++worker.generation;
        worker.removing = true;
        await(stop_now(worker), Goal::gone, progress, finish_part);
    }
    for (const auto& name : diff.workers_changed) {
        Worker& worker = *find_worker(name);
        worker.pending_config = *next.find_worker(name);
        if (worker.demand.watched && !worker.any_process()) {
            // Idle on demand: the new spec is for the next start; watched again on the
            // sockets it names, or started now if it is no longer on demand.
            about_worker(name).info("worker {}: configuration changed; it was idle (on demand)", name);
            stop_watching(worker);
            apply_pending_config(worker);
            if (worker.config.start == config::StartMode::on_demand) watch_for_demand(worker);
            else start_worker(worker);
            await(track(worker, false), Goal::started, progress, finish_part);
            continue;
        }
        if (worker.stopped_by_operator) {
            about_worker(name).info("worker {}: configuration changed; stays stopped (stopped by the operator)", name);
            stop_now(worker);  // a pending restart, if any
            apply_pending_config(worker);
            finish_part({});
            continue;
        }
        if (worker.pending_config->restart_strategy == config::RestartStrategy::rolling && worker.any_process()) {
            // The new spec is in effect at once for new processes; the rollout replaces
            // the old ones, then the instance count follows the new config.
            about_worker(name).info("worker {}: configuration changed; rolling restart", name);
            auto next_config = std::make_shared<const config::WorkerConfig>(std::move(*worker.pending_config));
            worker.pending_config.reset();
            int wanted = next_config->instances;
            std::string source = worker.config_source.empty() ? previous_source : std::move(worker.config_source);
            worker.config_source.clear();
            auto then = [this, name, wanted, progress, finish_part](std::vector<InstanceReport> reports) {
                Worker* current = find_worker(name);
                bool all_replaced = std::all_of(reports.begin(), reports.end(), [](const auto& r) { return r.ok; });
                if (current == nullptr || !all_replaced || wanted == current->config.instances || shutting_down_)
                    return finish_part(std::move(reports));
                // On the next pass, after sweep has erased the instances the rollout retired.
                add_waiter([this, name, wanted, progress, finish_part, reports]() mutable {
                    Worker* worker = find_worker(name);
                    if (worker == nullptr) {
                        finish_part(std::move(reports));
                        return true;
                    }
                    scale_now(*worker, wanted, progress,
                              [reports, finish_part](std::vector<InstanceReport> scaled) mutable {
                                  std::move(scaled.begin(), scaled.end(), std::back_inserter(reports));
                                  finish_part(std::move(reports));
                              });
                    return true;
                });
            };
            rolling_restart(worker, progress, std::move(then), canary, std::move(next_config), std::move(source));
            continue;
        }
        about_worker(name).info("worker {}: configuration changed; restarting (stop-start)", name);
        stop_then_start(worker, progress, finish_part);
    }
    for (const auto& name : diff.workers_scaled)
        scale_now(*find_worker(name), next.find_worker(name)->instances, progress, finish_part);
    std::vector<Worker*> added;
    for (const auto& name : diff.workers_added) {
        about_worker(name).info("worker {}: added", name);
        added.push_back(&add_worker(*next.find_worker(name)));
    }
    std::stable_sort(workers_.begin(), workers_.end(),
                     [](const auto& a, const auto& b) { return a->config.name < b->config.name; });
    for (Worker* worker : added) {
        start_worker(*worker);
        await(track(*worker, false), Goal::started, progress, finish_part);
    }
    finish_part({});
    state_changed();  // sockets nobody holds close now
}

}  // namespace fdsup
