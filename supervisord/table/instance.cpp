#include "table/instance.h"

namespace fdsup {

const char* state_name(InstanceState state) {
    switch (state) {
        case InstanceState::starting: return "starting";
        case InstanceState::running: return "running";
        case InstanceState::stopping: return "stopping";
        case InstanceState::backoff: return "backoff";
        case InstanceState::exited: return "exited";
        case InstanceState::failed: return "failed";
        case InstanceState::stopped: return "stopped";
        case InstanceState::idle: return "idle";
    }
    return "unknown";
}

const char* kill_reason_name(KillReason reason) {
    switch (reason) {
        case KillReason::none: return "none";
        case KillReason::ready_timeout: return "ready_timeout";
        case KillReason::watchdog: return "watchdog";
        case KillReason::liveness: return "liveness";
    }
    return "none";
}

std::string Instance::label() const { return instance_label(worker->config.name, index); }

const config::WorkerConfig& Instance::config() const { return spec ? *spec : worker->config; }

bool Worker::all_ready() const {
    for (const auto& instance : instances)
        if (!instance->retiring && !instance->replacement && (instance->state != InstanceState::running || !instance->ready)) return false;
    return true;
}

bool Worker::any_process() const {
    for (const auto& instance : instances)
        if (instance->has_process()) return true;
    return false;
}

InstanceState Worker::summary_state() const {
    // Most attention first.
    constexpr InstanceState order[] = {InstanceState::failed,  InstanceState::backoff, InstanceState::stopping,
                                       InstanceState::starting, InstanceState::running, InstanceState::exited,
                                       InstanceState::stopped, InstanceState::idle};
    for (InstanceState state : order)
        for (const auto& instance : instances)
            if (instance->state == state) return state;
    return InstanceState::stopped;  // no instances
}

}  // namespace fdsup
