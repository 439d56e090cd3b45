// What an instance uses (SPEC "Resources"), as last gathered (supervisor/usage.cpp),
// and where its recycling stands. Gathered only when asked (status, a metrics scrape,
// `fdsupctl top`) or when a recycle_memory limit needs it: no timer wakes an idle
// fdsupd for it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "sys/clock.h"
#include "sys/proc_stat.h"

namespace fdsup {

struct UsageSample {
    Clock::time_point at{};                 // when it was gathered (default: never)
    std::optional<double> cpu_seconds;      // user + system, of every process it has (had, in cgroup mode)
    std::optional<double> cpu_percent;      // over the time since the sample before (100 = one CPU)
    std::optional<uint64_t> memory_bytes;   // its cgroup's memory.current, or the RSS of its processes
    std::optional<int> processes;
    std::optional<int> open_fds;            // of the main process
    std::optional<uint64_t> oom_kills;      // in its cgroup (memory.events, v1 memory.oom_control)
    std::optional<Pressure> memory_pressure, cpu_pressure;  // PSI of its cgroup v2
};

struct InstanceUsage {
    UsageSample last;
    // The first sample of a process: its CPU% is over its whole life so far.
    bool sampled = false;
    // recycle_memory: since when it has been over (unset: it is not).
    std::optional<Clock::time_point> memory_over_since;
    // max_age (+ its share of max_age_jitter), from when it became ready; unset: none.
    std::optional<Clock::time_point> recycle_at;
    // A recycle that could not finish (its replacement did not take over) is tried
    // again no sooner than this.
    Clock::time_point retry_after{};
    // Why it replaced the one before it ("pid 123: used 600M, over recycle_memory 512M
    // for 30s"), for status; "" if it did not.
    std::string recycled;

    void reset_for_start() { *this = InstanceUsage{}; }
};

// Per worker, for the metrics (this image's: an upgrade starts them again).
struct WorkerResourceCounters {
    uint64_t oom_kills = 0;          // main processes the OOM killer took
    uint64_t recycled_memory = 0;    // instances replaced for recycle_memory
    uint64_t recycled_age = 0;       // ... for max_age
};

}  // namespace fdsup
