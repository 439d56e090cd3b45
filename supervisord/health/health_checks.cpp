#include "health/health_checks.h"

#include <spdlog/spdlog.h>
#include <time.h>

#include <algorithm>
#include <utility>

#include "config/placeholders.h"
#include "config/probe_target.h"
#include "health/accept_watch.h"
#include "health/connect_check.h"
#include "health/http_check.h"
#include "health/probe_report.h"
#include "table/log_about.h"

namespace fdsup::health {

namespace {

using std::chrono::milliseconds;

constexpr milliseconds kFirstScan{2};
constexpr milliseconds kLongestScanPause{64};


// A check that cannot even begin (a target that does not parse for this instance, say
// after a scale-up): failed like any other, from the loop, as the checks report.
class FailedCheck : public ProbeCheck {
public:
    FailedCheck(uv_loop_t* loop, std::string why, ProbeDone done) : report_(loop, std::move(done)) {
        report_.report_later(false, std::move(why));
    }

private:
    ProbeReport report_;
};

}  // namespace

HealthChecks::HealthChecks(uv_loop_t* loop, HealthHost& host, Launcher& launcher, const SpawnContext& context,
                           int null_fd)
    : loop_(loop), host_(host), exec_(loop, launcher, context, null_fd) {}

HealthChecks::~HealthChecks() = default;

HealthChecks::Checks& HealthChecks::begin(Instance& instance, Kind kind) {
    auto& slot = checks_[instance.id];
    slot = std::make_unique<Checks>(loop_);  // whatever ran before is cancelled
    slot->kind = kind;
    return *slot;
}

void HealthChecks::kill_probe_processes() {
    for (auto& [id, checks] : checks_)
        if (checks->in_flight) {
            checks->in_flight.reset();  // cancelled: its callback never comes
            schedule_probe(id, milliseconds(0));
        }
    exec_.kill_all();
}

void HealthChecks::starting(Instance& instance) {
    const auto& cfg = instance.worker->config;
    if (cfg.ready == config::ReadyMode::accepting) {
        Checks& checks = begin(instance, Kind::accepting);
        checks.inodes = host_.socket_inodes(instance);
        if (checks.inodes.empty()) {
            // Nothing to watch: ready_timeout decides (the loader warns about this).
            about(instance).warn("worker {}: ready = \"accepting\" but it is given no listening socket",
                                 instance.label());
            stop(instance);
            return;
        }
        uint64_t id = instance.id;
        checks.timer.start(kFirstScan, [this, id] { scan(id); });
    } else if (cfg.ready == config::ReadyMode::probe && cfg.ready_probe) {
        begin(instance, Kind::ready_probe);
        run_probe(instance.id);  // the first check at once: the timer follows its result
    } else {
        stop(instance);
    }
}

void HealthChecks::running(Instance& instance) {
    const auto& probe = instance.worker->config.liveness_probe;
    if (!probe) {
        stop(instance);
        return;
    }
    begin(instance, Kind::liveness);
    schedule_probe(instance.id, probe->interval);
}

void HealthChecks::scan(uint64_t id) {
    auto it = checks_.find(id);
    Instance* instance = host_.find_instance(id);
    if (it == checks_.end() || instance == nullptr || !instance->has_process()) return;
    Checks& checks = *it->second;

    auto cpu_began = thread_cpu_time();
    auto pids = host_.cgroup_processes(*instance);
    if (!pids) pids = instance_processes(instance->pid);
    auto seen = find_acceptor(*pids, checks.inodes);
    accept_cost_.scans++;
    accept_cost_.cpu += thread_cpu_time() - cpu_began;

    if (!seen) {
        checks.next_scan = std::min(checks.next_scan * 2, kLongestScanPause);
        checks.timer.start(checks.next_scan, [this, id] { scan(id); });
        return;
    }
    instance->health.accepting = std::string(accept_how_name(seen->how)) + ", pid " + std::to_string(seen->pid) +
                                 " fd " + std::to_string(seen->fd);
    about(*instance).debug("worker {}: accepting ({})", instance->label(), instance->health.accepting);
    checks_.erase(it);
    host_.health_ready(*instance);  // last: it may start a liveness probe for this id
}

void HealthChecks::schedule_probe(uint64_t id, milliseconds delay) {
    auto it = checks_.find(id);
    if (it == checks_.end()) return;
    it->second->timer.start(delay, [this, id] { run_probe(id); });
}

void HealthChecks::run_probe(uint64_t id) {
    auto it = checks_.find(id);
    Instance* instance = host_.find_instance(id);
    if (it == checks_.end() || instance == nullptr || !instance->has_process()) return;
    Checks& checks = *it->second;
    const auto& cfg = instance->worker->config;
    const auto& probe = checks.kind == Kind::liveness ? cfg.liveness_probe : cfg.ready_probe;
    if (!probe) {
        checks_.erase(it);
        return;
    }
    checks.began = std::chrono::steady_clock::now();
    checks.in_flight = start_probe(*instance, *probe, [this, id](const ProbeResult& result) { probe_done(id, result); });
}

std::unique_ptr<ProbeCheck> HealthChecks::start_probe(const Instance& instance, const config::ProbeConfig& probe,
                                                      ProbeDone done) {
    const auto& cfg = instance.worker->config;
    if (probe.kind == config::ProbeKind::exec)
        return exec_.start(cfg, instance.index, probe.command, probe.timeout, std::move(done));
    std::string target = config::expand_placeholders(probe.target, cfg, instance.index);
    if (probe.kind == config::ProbeKind::http) {
        auto url = config::parse_http_url(target);
        if (!url) return std::make_unique<FailedCheck>(loop_, target + ": " + url.error().message, std::move(done));
        return start_http_check(loop_, *url, probe.timeout, std::move(done));
    }
    auto address = config::parse_tcp_target(target);
    if (!address) return std::make_unique<FailedCheck>(loop_, target + ": " + address.error().message, std::move(done));
    return start_connect_check(loop_, *address, probe.timeout, std::move(done));
}

void HealthChecks::probe_done(uint64_t id, const ProbeResult& result) {
    auto it = checks_.find(id);
    Instance* instance = host_.find_instance(id);
    if (it == checks_.end() || instance == nullptr) return;
    Checks& checks = *it->second;
    checks.in_flight.reset();  // over (a check may be destroyed from its own callback)

    const auto& cfg = instance->worker->config;
    const bool liveness = checks.kind == Kind::liveness;
    const auto& probe = liveness ? cfg.liveness_probe : cfg.ready_probe;
    if (!probe) {  // a reload took it away meanwhile
        checks_.erase(it);
        return;
    }
    instance->health.last = ProbeOutcome{result.passed, result.detail, result.latency, std::chrono::system_clock::now()};
    auto& counters = instance->worker->probe_counters.of(liveness);
    (result.passed ? counters.passed : counters.failed)++;
    counters.latency.record(result.latency);

    auto took = std::chrono::steady_clock::now() - checks.began;
    auto next = std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(probe->interval - took));
    if (!liveness) {
        if (result.passed) {
            about(*instance).debug("worker {}: ready probe passed: {}", instance->label(), result.detail);
            checks_.erase(it);
            host_.health_ready(*instance);
            return;
        }
        about(*instance).debug("worker {}: ready probe failed: {}", instance->label(), result.detail);
        if (!std::exchange(checks.failure_told, true)) host_.probe_failed(*instance, false, result.detail, 0);
        schedule_probe(id, next);
        return;
    }
    if (result.passed) {
        instance->health.failures = 0;
        schedule_probe(id, next);
        return;
    }
    int failures = ++instance->health.failures;
    about(*instance).warn("worker {}: pid {}: liveness probe failed ({} of {}): {}", instance->label(), instance->pid,
                          failures, probe->failures, result.detail);
    host_.probe_failed(*instance, true, result.detail, failures);
    if (failures < probe->failures) {
        schedule_probe(id, next);
        return;
    }
    checks_.erase(it);
    host_.liveness_failed(*instance, "liveness probe failed " + std::to_string(failures) + " time" +
                                         (failures == 1 ? "" : "s") + ": " + result.detail);
}

}  // namespace fdsup::health
