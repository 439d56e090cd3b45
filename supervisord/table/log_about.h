// about(instance).info(...): a log line about an instance or a worker, tagged with its
// worker, index and pid for log_format = "json" (logging/log_subject.h). The text is
// unchanged: it names them itself ("worker web[2]: started pid 1250").
#pragma once

#include "logging/log_subject.h"
#include "table/instance.h"

namespace fdsup {

// With its pid now (-1 while it has no process).
inline LogAbout about(const Instance& instance) {
    return LogAbout(instance.worker->config.name, instance.index, instance.pid);
}
// With the pid the line is about: one that exited (the instance has none by then).
inline LogAbout about(const Instance& instance, pid_t pid) {
    return LogAbout(instance.worker->config.name, instance.index, pid);
}
inline LogAbout about(const Worker& worker) { return LogAbout(worker.config.name); }
// A worker by name (one being removed or added by a reload, say).
inline LogAbout about_worker(std::string_view name) { return LogAbout(name); }

}  // namespace fdsup
