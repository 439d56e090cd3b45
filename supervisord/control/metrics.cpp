#include "control/metrics.h"

#include <charconv>
#include <chrono>
#include <cmath>

#include "sys/histogram.h"
#include "version.h"

namespace fdsup::control {
namespace {

// A label value: backslash, double quote and newline escaped (the format's only rule).
std::string label(std::string_view value) {
    std::string out;
    for (char c : value) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

std::string number(double value) {
    if (std::isnan(value)) return "NaN";
    if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
    char buffer[32];
    auto end = std::to_chars(buffer, buffer + sizeof buffer, value).ptr;
    return std::string(buffer, end);
}

class Exposition {
public:
    // The # HELP and # TYPE lines of a family; its samples follow.
    void family(const char* name, const char* type, const char* help) {
        out_ += "# HELP ";
        out_ += name;
        out_ += ' ';
        out_ += help;
        out_ += "\n# TYPE ";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }
    // `labels`: "" or `key="value",...` (values already escaped).
    void sample(std::string_view name, const std::string& labels, double value) {
        out_ += name;
        if (!labels.empty()) {
            out_ += '{';
            out_ += labels;
            out_ += '}';
        }
        out_ += ' ';
        out_ += number(value);
        out_ += '\n';
    }
    // The _bucket, _sum and _count samples of a histogram; `labels` as for sample().
    void histogram(const std::string& name, const std::string& labels, const Histogram& h) {
        std::string prefix = labels.empty() ? "" : labels + ",";
        for (size_t i = 0; i < h.bounds().size(); ++i)
            sample(name + "_bucket", prefix + "le=\"" + number(h.bounds()[i]) + "\"", static_cast<double>(h.bucket(i)));
        sample(name + "_bucket", prefix + "le=\"+Inf\"", static_cast<double>(h.count()));
        sample(name + "_sum", labels, h.sum());
        sample(name + "_count", labels, static_cast<double>(h.count()));
    }
    std::string take() { return std::move(out_); }

private:
    std::string out_;
};

}  // namespace

std::string metrics_text(const Supervisor& supervisor, const RequestCounts& requests, uint64_t notify_dropped) {
    Exposition e;
    const auto now = Clock::now();

    e.family("fdsup_build_info", "gauge", "fdsupd's version and upgrade state format (always 1).");
    e.sample("fdsup_build_info", "version=\"" + label(kVersion) + "\",state_format=\"" + std::to_string(kStateVersion) + "\"", 1);
    e.family("fdsup_uptime_seconds", "gauge", "Seconds since fdsupd started (across in-place upgrades).");
    e.sample("fdsup_uptime_seconds", "", std::chrono::duration<double>(now - supervisor.started_at()).count());
    e.family("fdsup_upgrades_total", "counter", "In-place upgrades of fdsupd since it started.");
    e.sample("fdsup_upgrades_total", "", static_cast<double>(supervisor.upgrades()));
    e.family("fdsup_reloads_total", "counter", "Configuration reloads by this fdsupd image, by result.");
    e.sample("fdsup_reloads_total", "result=\"ok\"", static_cast<double>(supervisor.reloads(true)));
    e.sample("fdsup_reloads_total", "result=\"failed\"", static_cast<double>(supervisor.reloads(false)));
    e.family("fdsup_control_requests_total", "counter", "Control requests served by this fdsupd image, by command.");
    for (const auto& [command, count] : requests)
        e.sample("fdsup_control_requests_total", "command=\"" + label(command) + "\"", static_cast<double>(count));
    e.family("fdsup_notify_dropped_total", "counter", "sd_notify datagrams dropped (unknown sender, malformed, refused).");
    e.sample("fdsup_notify_dropped_total", "", static_cast<double>(notify_dropped));

    e.family("fdsup_spawn_duration_seconds", "histogram", "Time the launcher takes per spawn, clone to exec.");
    e.histogram("fdsup_spawn_duration_seconds", "", supervisor.spawn_times());

    // Per worker and instance. Instances being replaced or scaled away are left out:
    // an index names one series.
    auto each_instance = [&](auto&& emit) {
        for (const auto& worker : supervisor.workers()) {
            if (worker->removing) continue;
            for (const auto& instance : worker->instances)
                if (!instance->retiring && !instance->replacement)
                    emit(*worker, *instance,
                         "worker=\"" + label(worker->config.name) + "\",instance=\"" + std::to_string(instance->index) + "\"");
        }
    };
    e.family("fdsup_worker_instances_wanted", "gauge", "Instances a worker is to run (its config, or scale).");
    for (const auto& worker : supervisor.workers())
        if (!worker->removing)
            e.sample("fdsup_worker_instances_wanted", "worker=\"" + label(worker->config.name) + "\"", worker->config.instances);
    e.family("fdsup_instance_state", "gauge", "1 for the state an instance is in, 0 for the others.");
    each_instance([&](const Worker&, const Instance& in, const std::string& labels) {
        for (auto state : kAllInstanceStates)
            e.sample("fdsup_instance_state", labels + ",state=\"" + state_name(state) + "\"", in.state == state ? 1 : 0);
    });
    e.family("fdsup_instance_ready", "gauge", "1 if the instance is ready (in service).");
    each_instance([&](const Worker&, const Instance& in, const std::string& labels) {
        e.sample("fdsup_instance_ready", labels, in.ready ? 1 : 0);
    });
    e.family("fdsup_instance_restarts_total", "counter", "Restarts of an instance after unplanned exits and failed starts.");
    each_instance([&](const Worker&, const Instance& in, const std::string& labels) {
        e.sample("fdsup_instance_restarts_total", labels, in.restarts);
    });
    e.family("fdsup_instance_uptime_seconds", "gauge", "Seconds the instance's process has run (0 without one).");
    each_instance([&](const Worker&, const Instance& in, const std::string& labels) {
        e.sample("fdsup_instance_uptime_seconds", labels,
                 in.has_process() ? std::chrono::duration<double>(now - in.started_at).count() : 0);
    });
    e.family("fdsup_instance_last_exit_code", "gauge", "Exit code of the instance's last process (-1: killed by a signal, or none yet).");
    each_instance([&](const Worker&, const Instance& in, const std::string& labels) {
        e.sample("fdsup_instance_last_exit_code", labels, in.last_exit && !in.last_exit->signaled ? in.last_exit->code : -1);
    });
    e.family("fdsup_instance_last_exit_signal", "gauge", "Signal that killed the instance's last process (0: none).");
    each_instance([&](const Worker&, const Instance& in, const std::string& labels) {
        e.sample("fdsup_instance_last_exit_signal", labels, in.last_exit && in.last_exit->signaled ? in.last_exit->signal : 0);
    });
    e.family("fdsup_instance_fd_store_fds", "gauge", "Fds held in the instance's fd store.");
    each_instance([&](const Worker& worker, const Instance& in, const std::string& labels) {
        e.sample("fdsup_instance_fd_store_fds", labels, static_cast<double>(supervisor.fd_stores().count(worker, in.index)));
    });
    e.family("fdsup_instance_liveness_failures", "gauge", "Liveness probe checks the instance has failed in a row.");
    each_instance([&](const Worker&, const Instance& in, const std::string& labels) {
        e.sample("fdsup_instance_liveness_failures", labels, in.health.failures);
    });

    // Health checks (health/), per worker with a probe.
    auto probed = [&](auto&& emit) {
        for (const auto& worker : supervisor.workers()) {
            if (worker->removing) continue;
            std::string labels = "worker=\"" + label(worker->config.name) + "\"";
            if (worker->config.ready == config::ReadyMode::probe) emit(*worker, labels + ",probe=\"ready\"", false);
            if (worker->config.liveness_probe) emit(*worker, labels + ",probe=\"liveness\"", true);
        }
    };
    e.family("fdsup_probe_checks_total", "counter", "Probe checks by this fdsupd image, by worker, probe and result.");
    probed([&](const Worker& worker, const std::string& labels, bool liveness) {
        const ProbeCounters& c = worker.probe_counters.of(liveness);
        e.sample("fdsup_probe_checks_total", labels + ",result=\"pass\"", static_cast<double>(c.passed));
        e.sample("fdsup_probe_checks_total", labels + ",result=\"fail\"", static_cast<double>(c.failed));
    });
    e.family("fdsup_probe_duration_seconds", "histogram", "Time a probe check takes, by worker and probe.");
    probed([&](const Worker& worker, const std::string& labels, bool liveness) {
        e.histogram("fdsup_probe_duration_seconds", labels, worker.probe_counters.of(liveness).latency);
    });
    e.family("fdsup_liveness_replacements_total", "counter", "Instances replaced after failing their liveness probe, by worker.");
    for (const auto& worker : supervisor.workers())
        if (!worker->removing && worker->config.liveness_probe)
            e.sample("fdsup_liveness_replacements_total", "worker=\"" + label(worker->config.name) + "\"",
                     static_cast<double>(worker->probe_counters.replacements));
    // Resources (SPEC "Resources"): gathered for this scrape; an instance without a
    // process, or a value its kernel does not give, has no sample.
    auto usage_family = [&](const char* name, const char* type, const char* help, auto&& value) {
        e.family(name, type, help);
        each_instance([&](const Worker&, const Instance& in, const std::string& labels) {
            if (!in.has_process() || in.exit_pending || !in.usage.sampled) return;
            if (auto v = value(in.usage.last)) e.sample(name, labels, static_cast<double>(*v));
        });
    };
    usage_family("fdsup_instance_cpu_seconds_total", "counter",
                 "CPU time (user + system) of the instance's processes (its cgroup's, in cgroup mode).",
                 [](const UsageSample& u) { return u.cpu_seconds; });
    usage_family("fdsup_instance_memory_bytes", "gauge",
                 "Memory of the instance: its cgroup's memory.current, else the RSS of its process group.",
                 [](const UsageSample& u) { return u.memory_bytes; });
    usage_family("fdsup_instance_processes", "gauge", "Processes of the instance (its cgroup, else its process group).",
                 [](const UsageSample& u) { return u.processes; });
    usage_family("fdsup_instance_open_fds", "gauge", "Open fds of the instance's main process.",
                 [](const UsageSample& u) { return u.open_fds; });
    usage_family("fdsup_instance_oom_kills", "gauge", "OOM kills in the instance's current cgroup.",
                 [](const UsageSample& u) { return u.oom_kills; });
    e.family("fdsup_instance_pressure_seconds_total", "counter",
             "Pressure stall time of the instance's cgroup (PSI), by resource and kind (some, full).");
    each_instance([&](const Worker&, const Instance& in, const std::string& labels) {
        if (!in.has_process() || in.exit_pending || !in.usage.sampled) return;
        for (const auto& [resource, pressure] : {std::pair{"memory", in.usage.last.memory_pressure},
                                                  std::pair{"cpu", in.usage.last.cpu_pressure}}) {
            if (!pressure) continue;
            std::string with = labels + ",resource=\"" + resource + "\"";
            e.sample("fdsup_instance_pressure_seconds_total", with + ",kind=\"some\"",
                     static_cast<double>(pressure->some_total_us) / 1e6);
            e.sample("fdsup_instance_pressure_seconds_total", with + ",kind=\"full\"",
                     static_cast<double>(pressure->full_total_us) / 1e6);
        }
    });
    const auto& cost = supervisor.usage_cost();
    e.family("fdsup_usage_gatherings_total", "counter", "Gatherings of the instances' usage (status, scrapes, recycling).");
    e.sample("fdsup_usage_gatherings_total", "", static_cast<double>(cost.gatherings));
    e.family("fdsup_usage_gathering_cpu_seconds_total", "counter", "fdsupd's CPU time spent gathering the instances' usage.");
    e.sample("fdsup_usage_gathering_cpu_seconds_total", "", std::chrono::duration<double>(cost.cpu).count());
    e.family("fdsup_usage_gathering_last_cpu_seconds", "gauge",
             "fdsupd's CPU time for the last gathering of usage (a scrape's own, when it gathered).");
    e.sample("fdsup_usage_gathering_last_cpu_seconds", "", std::chrono::duration<double>(cost.last_cpu).count());
    e.family("fdsup_usage_gathering_last_instances", "gauge", "Instances the last gathering of usage looked at.");
    e.sample("fdsup_usage_gathering_last_instances", "", static_cast<double>(cost.last_instances));
    e.family("fdsup_oom_kills_total", "counter", "Main processes killed by the OOM killer, by worker (kill_mode = \"cgroup\").");
    for (const auto& worker : supervisor.workers())
        if (!worker->removing && worker->config.kill_mode == config::KillMode::cgroup)
            e.sample("fdsup_oom_kills_total", "worker=\"" + label(worker->config.name) + "\"",
                     static_cast<double>(worker->resource_counters.oom_kills));
    e.family("fdsup_recycles_total", "counter", "Instances replaced by recycle_memory or max_age, by worker and reason.");
    for (const auto& worker : supervisor.workers()) {
        if (worker->removing || !worker->config.recycle.any()) continue;
        std::string labels = "worker=\"" + label(worker->config.name) + "\"";
        e.sample("fdsup_recycles_total", labels + ",reason=\"memory\"",
                 static_cast<double>(worker->resource_counters.recycled_memory));
        e.sample("fdsup_recycles_total", labels + ",reason=\"max_age\"",
                 static_cast<double>(worker->resource_counters.recycled_age));
    }
    e.family("fdsup_on_demand_starts_total", "counter", "Starts of a start = \"on-demand\" worker by a connection on its sockets.");
    for (const auto& worker : supervisor.workers())
        if (!worker->removing && worker->config.start == config::StartMode::on_demand)
            e.sample("fdsup_on_demand_starts_total", "worker=\"" + label(worker->config.name) + "\"",
                     static_cast<double>(worker->demand.starts));
    const auto& scans = supervisor.accept_scan_cost();
    e.family("fdsup_accept_scans_total", "counter", "Looks at starting instances' processes for ready = \"accepting\".");
    e.sample("fdsup_accept_scans_total", "", static_cast<double>(scans.scans));
    e.family("fdsup_accept_scan_cpu_seconds_total", "counter", "fdsupd's CPU time spent in those looks.");
    e.sample("fdsup_accept_scan_cpu_seconds_total", "", std::chrono::duration<double>(scans.cpu).count());
    return e.take();
}

std::vector<std::string> not_ready(const Supervisor& supervisor) {
    if (supervisor.shutting_down()) return {"fdsupd is shutting down"};
    std::vector<std::string> lines;
    for (const auto& worker : supervisor.workers()) {
        if (worker->removing || worker->stopped_by_operator) continue;
        if (worker->waiting_for_dependencies) {
            lines.push_back(worker->config.name + ": waiting for a dependency (after)");
            continue;
        }
        for (const auto& instance : worker->instances) {
            // Exited and not to be restarted (restart = "never", or "on-failure" after
            // a clean exit): done, not meant to run; idle on demand: not meant to run
            // until a connection comes.
            if (instance->retiring || instance->replacement || instance->ready ||
                instance->state == InstanceState::exited || instance->state == InstanceState::idle)
                continue;
            std::string line = instance->label() + ": " + state_name(instance->state);
            if (!instance->last_error.empty()) line += " (" + instance->last_error + ")";
            lines.push_back(std::move(line));
        }
    }
    return lines;
}

}  // namespace fdsup::control
