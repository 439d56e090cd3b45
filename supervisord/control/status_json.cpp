#include "control/status_json.h"

#include <unistd.h>

#include <chrono>
#include <unordered_map>

#include "config/values.h"
#include "supervisor/rolling_restart.h"
#include "version.h"

namespace fdsup::control {
namespace {

double seconds_since(Clock::time_point since, Clock::time_point now) {
    return std::chrono::duration<double>(now - since).count();
}

Json pid_or_null(pid_t pid) { return pid > 0 ? Json(pid) : Json(nullptr); }

Json last_exit_json(const std::optional<ExitStatus>& exit) {
    if (!exit) return Json{{"code", nullptr}, {"signal", nullptr}};
    if (exit->signaled)
        return Json{{"code", nullptr}, {"signal", config::signal_name(exit->signal)}, {"text", exit->describe()}};
    return Json{{"code", exit->code}, {"signal", nullptr}, {"text", exit->describe()}};
}

Json instance_json(const Instance& instance, Clock::time_point now) {
    Json j{
        {"index", instance.index},
        {"pid", pid_or_null(instance.pid)},
        {"state", state_name(instance.state)},
        {"ready", instance.ready},
        {"restarts", instance.restarts},
        {"uptime_s", instance.has_process() ? Json(seconds_since(instance.started_at, now)) : Json(nullptr)},
        {"last_exit", last_exit_json(instance.last_exit)},
        {"last_error", instance.last_error.empty() ? Json(nullptr) : Json(instance.last_error)},
    };
    // What the worker said over sd_notify.
    j["status"] = instance.status_text.empty() ? Json(nullptr) : Json(instance.status_text);
    if (instance.reloading) j["reloading"] = true;
    if (instance.stopping_notified) j["stopping_notified"] = true;
    if (instance.watchdog_timeout > config::Duration::zero())
        j["watchdog_s"] = std::chrono::duration<double>(instance.watchdog_timeout).count();
    if (instance.retiring) j["retiring"] = true;
    if (instance.replacement) j["replacement"] = true;  // a rollout's new process, not yet in service
    return j;
}

// A rolling restart in progress: how far it got.
Json rollout_json(const Worker& worker) {
    if (!worker.rollout) return nullptr;
    const RolloutPlan& plan = worker.rollout->plan;
    return Json{{"total", plan.size()},
                {"replaced", plan.count(RolloutPlan::SlotState::done) + plan.count(RolloutPlan::SlotState::draining)},
                {"replacing", plan.count(RolloutPlan::SlotState::replacing)}};
}

// The fd stores, per instance index: how many fds under each name, in the order stored.
Json fd_store_json(const Worker& worker) {
    if (worker.config.fd_store_max <= 0 && worker.fd_stores.empty()) return nullptr;
    Json slots = Json::array();
    for (const auto& [index, store] : worker.fd_stores) {
        std::vector<std::string> order;  // names in the order first stored
        std::unordered_map<std::string, size_t> counts;
        for (const auto& entry : store.entries())
            if (counts[entry.name]++ == 0) order.push_back(entry.name);
        Json names = Json::array();
        for (const auto& name : order) names.push_back(Json{{"name", name}, {"fds", counts[name]}});
        slots.push_back(Json{{"index", index}, {"fds", store.size()}, {"names", std::move(names)}});
    }
    return Json{{"max", worker.config.fd_store_max}, {"instances", std::move(slots)}};
}

Json worker_json(const Supervisor& supervisor, const Worker& worker, Clock::time_point now) {
    Json fds = Json::object();
    for (const auto& [fd, name] : worker.config.fds) fds[std::to_string(fd)] = name;
    Json waiting = Json::array();
    if (worker.waiting_for_dependencies)
        for (const auto& name : worker.config.after)
            if (const Worker* dep = supervisor.find_worker(name); dep && !dep->all_ready()) waiting.push_back(name);
    Json instances = Json::array();
    for (const auto& instance : worker.instances) instances.push_back(instance_json(*instance, now));
    return Json{
        {"name", worker.config.name},
        {"state", state_name(worker.summary_state())},
        {"instances_wanted", worker.config.instances},
        {"stopped_by_operator", worker.stopped_by_operator},
        {"waiting_for", std::move(waiting)},
        {"fds", std::move(fds)},
        {"restart_strategy",
         worker.config.restart_strategy == config::RestartStrategy::rolling ? "rolling" : "stop-start"},
        {"instances", std::move(instances)},
        {"rollout", rollout_json(worker)},
        {"fd_store", fd_store_json(worker)},
    };
}

}  // namespace

Result<Json> status_reply(const Supervisor& supervisor, const std::vector<std::string>& names) {
    for (const auto& name : names)
        if (supervisor.find_worker(name) == nullptr) return fail("unknown worker \"" + name + "\"");
    auto now = Clock::now();
    const auto& config = supervisor.config();

    Json sockets = Json::array();
    for (const auto& socket : supervisor.sockets()) {
        Json used_by = Json::array();
        for (const auto& worker : supervisor.workers()) {
            bool uses = false;
            for (const auto& [fd, name] : worker->config.fds) uses |= name == socket.config.name;
            if (uses && !worker->removing) used_by.push_back(worker->config.name);
        }
        sockets.push_back(Json{{"name", socket.config.name},
                               {"listen", socket.config.listen},
                               {"bound", socket.bound},
                               {"used_by", std::move(used_by)}});
    }
    Json workers = Json::array();
    for (const auto& worker : supervisor.workers()) {
        if (worker->removing) continue;
        if (!names.empty() && std::find(names.begin(), names.end(), worker->config.name) == names.end()) continue;
        workers.push_back(worker_json(supervisor, *worker, now));
    }
    return Json{
        {"ok", true},
        {"supervisor",
         Json{{"pid", ::getpid()},
              {"version", kVersion},
              {"protocol", kProtocolVersion},
              {"uptime_s", seconds_since(supervisor.started_at(), now)},
              {"config", config.path},
              {"reloading", supervisor.reloading()},
              {"notify_dropped", supervisor.notify_dropped()},
              {"shutting_down", supervisor.shutting_down()}}},
        {"sockets", std::move(sockets)},
        {"workers", std::move(workers)},
    };
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
    return Json{{"time", time},
                {"worker", line.worker},
                {"instance", line.instance},
                {"stream", line.from_stderr ? "stderr" : "stdout"},
                {"text", line.text}};
}

}  // namespace fdsup::control
