#include "control/status_json.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <unordered_map>

#include "config/values.h"
#include "json/json_writer.h"
#include "logging/rfc3339.h"
#include "rollout/rolling_restart.h"
#include "sys/signal_names.h"
#include "sys/two_threads.h"
#include "version.h"

namespace fdsup::control {
namespace {

double seconds_since(Clock::time_point since, Clock::time_point now) {
    return std::chrono::duration<double>(now - since).count();
}

Json pid_or_null(pid_t pid) { return pid > 0 ? Json(pid) : Json(nullptr); }

void pid_or_null(JsonWriter& w, pid_t pid) {
    if (pid > 0) w.value(static_cast<int64_t>(pid));
    else w.null();
}

void string_or_null(JsonWriter& w, const std::string& text) {
    if (text.empty()) w.null();
    else w.value(text);
}

void write_last_exit(JsonWriter& w, const std::optional<ExitStatus>& exit) {
    w.begin_object();
    if (!exit) {
        w.key("code").null().key("signal").null();
    } else if (exit->signaled) {
        w.key("code").null().member("signal", signal_name(exit->signal)).member("text", exit->describe());
    } else {
        w.member("code", exit->code).key("signal").null().member("text", exit->describe());
    }
    if (exit && exit->oom_kill) w.member("oom_kill", true);
    w.end_object();
}

// What health/ is checking of the instance now, derived from its state and config:
// "accepting", "ready_probe", "liveness_probe", or none.
const char* health_check_of(const Instance& instance) {
    const auto& cfg = instance.worker->config;
    if (!instance.has_process()) return nullptr;
    if (instance.state == InstanceState::starting) {
        if (cfg.ready == config::ReadyMode::accepting) return "accepting";
        if (cfg.ready == config::ReadyMode::probe) return "ready_probe";
    }
    if (instance.state == InstanceState::running && instance.ready && cfg.liveness_probe) return "liveness_probe";
    return nullptr;
}

// The health checks' findings; only for an instance that has any (SPEC "Health").
void write_health(JsonWriter& w, const Instance& instance) {
    const auto& cfg = instance.worker->config;
    const InstanceHealth& h = instance.health;
    bool checked = cfg.ready == config::ReadyMode::accepting || cfg.ready == config::ReadyMode::probe ||
                   cfg.liveness_probe.has_value();
    if (!checked && h.replaced.empty()) return;
    w.key("health").begin_object();
    w.key("checking");
    if (const char* check = health_check_of(instance)) w.value(check);
    else w.null();
    w.key("accepting");
    string_or_null(w, h.accepting);
    w.member("failures", h.failures);
    if (cfg.liveness_probe) w.member("failures_allowed", cfg.liveness_probe->failures);
    w.key("last");
    if (h.last) {
        auto age = std::chrono::system_clock::now() - h.last->at;
        w.begin_object()
            .member("passed", h.last->passed)
            .member("detail", h.last->detail)
            .member("latency_ms", std::chrono::duration<double, std::milli>(h.last->latency).count())
            .member("age_s", std::max(0.0, std::chrono::duration<double>(age).count()))
            .end_object();
    } else {
        w.null();
    }
    w.key("replaced");
    string_or_null(w, h.replaced);
    w.end_object();
}

template <typename T>
void optional_number(JsonWriter& w, const char* key, const std::optional<T>& value) {
    w.key(key);
    if (value) w.value(*value);
    else w.null();
}

void write_pressure(JsonWriter& w, const char* key, const std::optional<Pressure>& p) {
    w.key(key);
    if (!p) {
        w.null();
        return;
    }
    w.begin_object()
        .member("some_avg10", p->some_avg10)
        .member("some_total_s", static_cast<double>(p->some_total_us) / 1e6)
        .member("full_total_s", static_cast<double>(p->full_total_us) / 1e6)
        .end_object();
}

// SPEC "Resources": what the instance uses, as gathered for this request (null without a process).
void write_usage(JsonWriter& w, const Instance& instance) {
    w.key("usage");
    if (!instance.has_process() || instance.exit_pending || !instance.usage.sampled) {
        w.null();
        return;
    }
    const UsageSample& u = instance.usage.last;
    w.begin_object();
    optional_number(w, "cpu_seconds", u.cpu_seconds);
    optional_number(w, "cpu_percent", u.cpu_percent);
    optional_number(w, "memory_bytes", u.memory_bytes);
    optional_number(w, "processes", u.processes);
    optional_number(w, "open_fds", u.open_fds);
    optional_number(w, "oom_kills", u.oom_kills);
    w.key("pressure");
    if (u.memory_pressure || u.cpu_pressure) {
        w.begin_object();
        write_pressure(w, "memory", u.memory_pressure);
        write_pressure(w, "cpu", u.cpu_pressure);
        w.end_object();
    } else {
        w.null();
    }
    w.end_object();
}

void write_instance(JsonWriter& w, const Instance& instance, Clock::time_point now) {
    w.begin_object();
    w.member("index", instance.index);
    w.key("pid");
    pid_or_null(w, instance.pid);
    w.member("state", state_name(instance.state));
    w.member("ready", instance.ready);
    w.member("restarts", instance.restarts);
    w.key("uptime_s");
    if (instance.has_process()) w.value(seconds_since(instance.started_at, now));
    else w.null();
    w.key("last_exit");
    write_last_exit(w, instance.last_exit);
    w.key("last_error");
    string_or_null(w, instance.last_error);
    // What the worker said over sd_notify.
    w.key("status");
    string_or_null(w, instance.status_text);
    if (instance.reloading) w.member("reloading", true);
    if (instance.stopping_notified) w.member("stopping_notified", true);
    if (instance.watchdog_timeout > config::Duration::zero())
        w.member("watchdog_s", std::chrono::duration<double>(instance.watchdog_timeout).count());
    if (!instance.cgroup.empty()) w.member("cgroup", instance.cgroup);  // below the supervisor's fdsupd-PID
    if (instance.retiring) w.member("retiring", true);
    if (instance.draining) w.member("draining", true);  // stop_delay: out of readiness, still serving
    if (instance.replacement) w.member("replacement", true);  // a rollout's new process, not yet in service
    write_health(w, instance);
    write_usage(w, instance);
    if (!instance.usage.recycled.empty()) w.member("recycled", instance.usage.recycled);
    w.end_object();
}

// With thousands of instances their JSON is most of a status's writing (some 300 bytes
// each): the second half is written on a second thread meanwhile, into its own text,
// then spliced on. Nothing changes the table while a request is being answered.
constexpr size_t kInstancesWorthASecondThread = 1024;

void write_instances(JsonWriter& w, const std::vector<std::unique_ptr<Instance>>& instances, Clock::time_point now) {
    size_t half = instances.size() / 2;
    JsonWriter second_half = JsonWriter::array_elements();
    on_two_threads(instances.size() >= kInstancesWorthASecondThread, [&](int part, int parts) {
        size_t begin = parts == 1 || part == 0 ? 0 : half, end = parts == 1 || part == 1 ? instances.size() : half;
        JsonWriter& into = part == 1 ? second_half : w;
        if (part == 1) into.reserve(384 * (end - begin));
        for (size_t i = begin; i < end; ++i) write_instance(into, *instances[i], now);
    });
    w.splice_elements(second_half);
}

// A rolling restart in progress: how far it got.
void write_rollout(JsonWriter& w, const Worker& worker) {
    if (!worker.rollout) {
        w.null();
        return;
    }
    const RolloutPlan& plan = worker.rollout->plan;
    w.begin_object()
        .member("total", static_cast<uint64_t>(plan.size()))
        .member("replaced", static_cast<uint64_t>(plan.count(RolloutPlan::SlotState::done) +
                                                  plan.count(RolloutPlan::SlotState::draining)))
        .member("replacing", static_cast<uint64_t>(plan.count(RolloutPlan::SlotState::replacing)));
    w.key("reason");  // why fdsupd began it itself (a failed liveness probe); null for an operator's
    string_or_null(w, worker.rollout->reason);
    w.member("phase", worker.rollout->phase());
    w.member("canary", static_cast<uint64_t>(plan.canary()));
    w.key("pause_left");  // seconds until a held canary goes on; null if not holding or until promoted
    if (plan.holding() && worker.rollout->restarts_at_hold >= 0 && worker.rollout->hold_until != Clock::time_point::max())
        w.value(std::max(0.0, std::chrono::duration<double>(worker.rollout->hold_until - Clock::now()).count()));
    else
        w.null();
    w.end_object();
}

// The fd stores, per instance index: how many fds under each name, in the order stored.
void write_fd_store(JsonWriter& w, const Worker& worker, const FdStores& stores) {
    const std::map<int, FdStore>& slots = stores.of(worker);
    if (worker.config.fd_store_max <= 0 && slots.empty()) {
        w.null();
        return;
    }
    w.begin_object().member("max", worker.config.fd_store_max).key("instances").begin_array();
    for (const auto& [index, store] : slots) {
        std::vector<std::string> order;  // names in the order first stored
        std::unordered_map<std::string, size_t> counts;
        for (const auto& entry : store.entries())
            if (counts[entry.name]++ == 0) order.push_back(entry.name);
        w.begin_object().member("index", index).member("fds", static_cast<uint64_t>(store.size()));
        w.key("names").begin_array();
        for (const auto& name : order)
            w.begin_object().member("name", name).member("fds", static_cast<uint64_t>(counts[name])).end_object();
        w.end_array().end_object();
    }
    w.end_array().end_object();
}

void write_worker(JsonWriter& w, const Supervisor& supervisor, const Worker& worker, Clock::time_point now) {
    w.begin_object();
    w.member("name", worker.config.name);
    w.member("state", state_name(worker.summary_state()));
    w.member("instances_wanted", worker.config.instances);
    w.member("stopped_by_operator", worker.stopped_by_operator);
    w.key("waiting_for").begin_array();
    if (worker.waiting_for_dependencies)
        for (const auto& name : worker.config.after)
            if (const Worker* dep = supervisor.find_worker(name); dep && !dep->all_ready()) w.value(name);
    w.end_array();
    w.key("fds").begin_object();
    for (const auto& [fd, name] : worker.config.fds) w.member(std::to_string(fd), name);
    w.end_object();
    w.key("scm_rights").begin_array();  // the sockets it fetches over SCM_RIGHTS
    for (const auto& name : worker.config.scm_rights) w.value(name);
    w.end_array();
    w.member("restart_strategy",
             worker.config.restart_strategy == config::RestartStrategy::rolling ? "rolling" : "stop-start");
    // start = "on-demand": "watched" while idle (its sockets wait for a connection),
    // "starts" counts the starts connections made, "idle_stop_s" is null without one.
    if (worker.config.start == config::StartMode::on_demand) {
        w.key("on_demand").begin_object().member("watched", worker.demand.watched).member("starts", worker.demand.starts);
        w.key("idle_stop_s");
        if (worker.config.idle_stop) w.value(std::chrono::duration<double>(*worker.config.idle_stop).count());
        else w.null();
        w.end_object();
    } else {
        w.key("on_demand").null();
    }
    w.key("instances").begin_array();
    write_instances(w, worker.instances, now);
    w.end_array();
    w.key("rollout");
    write_rollout(w, worker);
    w.key("fd_store");
    write_fd_store(w, worker, supervisor.fd_stores());
    w.end_object();
}

}  // namespace

Result<std::string> status_reply(const Supervisor& supervisor, uint64_t notify_dropped,
                                 const std::vector<std::string>& names) {
    for (const auto& name : names)
        if (supervisor.find_worker(name) == nullptr) return fail("unknown worker \"" + name + "\"");
    auto now = Clock::now();
    const auto& config = supervisor.config();

    JsonWriter w;
    // About 300 bytes per instance: written without the string's regrowth copying megabytes.
    size_t instances = 0;
    for (const auto& worker : supervisor.workers()) instances += worker->instances.size();
    w.reserve(4096 + 384 * instances);
    w.begin_object().member("ok", true);
    w.key("supervisor")
        .begin_object()
        .member("pid", static_cast<int64_t>(::getpid()))
        .member("version", kVersion)
        .member("protocol", kProtocolVersion)
        .member("uptime_s", seconds_since(supervisor.started_at(), now))
        .member("config", config.path)
        .member("reloading", supervisor.reloading())
        .member("notify_dropped", notify_dropped)
        .member("shutting_down", supervisor.shutting_down())
        .end_object();
    w.key("sockets").begin_array();
    for (const auto& socket : supervisor.sockets().current()) {
        w.begin_object()
            .member("name", socket.config.name)
            .member("listen", socket.config.listen)
            .member("bound", socket.bound);
        if (socket.adopted_from)  // only then: a bound socket's shape is as it was
            w.key("adopted_from")
                .begin_object()
                .member("pid", static_cast<int64_t>(socket.adopted_from->pid))
                .member("fd", socket.adopted_from->fd)
                .end_object();
        w.key("used_by")
            .begin_array();
        for (const auto& worker : supervisor.workers()) {
            bool uses = false;
            for (const auto& [fd, name] : worker->config.fds) uses |= name == socket.config.name;
            if (uses && !worker->removing) w.value(worker->config.name);
        }
        w.end_array().key("used_by_scm_rights").begin_array();
        for (const auto& worker : supervisor.workers()) {
            const auto& fetched = worker->config.scm_rights;
            if (!worker->removing && std::find(fetched.begin(), fetched.end(), socket.config.name) != fetched.end())
                w.value(worker->config.name);
        }
        w.end_array().end_object();
    }
    w.end_array();
    w.key("workers").begin_array();
    for (const auto& worker : supervisor.workers()) {
        if (worker->removing) continue;
        if (!names.empty() && std::find(names.begin(), names.end(), worker->config.name) == names.end()) continue;
        write_worker(w, supervisor, *worker, now);
    }
    w.end_array().end_object();
    return std::move(w).line();
}

Json instance_report_json(const InstanceReport& report) {
    return Json{{"worker", report.worker},
                {"index", report.index},
                {"state", state_name(report.state)},
                {"pid", pid_or_null(report.pid)},
                {"previous_pid", pid_or_null(report.previous_pid)},
                {"ok", report.ok},
                {"message", report.message}};
}

Json log_line_json(const LogLine& line) {
    double time = std::chrono::duration<double>(line.time.time_since_epoch()).count();
    return Json{{"seq", line.seq},
                {"time", time},
                {"timestamp", rfc3339_utc(line.time)},
                {"worker", line.worker},
                {"instance", line.instance},
                {"stream", line.from_stderr ? "stderr" : "stdout"},
                {"text", line.text}};
}

}  // namespace fdsup::control
