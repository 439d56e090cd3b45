#include "cgroups/limit_files.h"

#include <algorithm>
#include <cstdio>

namespace fdsup {
namespace {

constexpr int64_t kCpuPeriodUs = 100000;  // systemd's CPUQuotaPeriodSec= default

std::string number(uint64_t value) { return std::to_string(value); }

}  // namespace

const char* v2_name(Controller controller) {
    switch (controller) {
        case Controller::memory: return "memory";
        case Controller::cpu: return "cpu";
        case Controller::pids: return "pids";
        case Controller::io: return "io";
    }
    return "?";
}

const char* v1_name(Controller controller) {
    return controller == Controller::io ? "blkio" : v2_name(controller);
}

std::set<Controller> controllers_needed(const config::ResourceLimits& limits) {
    std::set<Controller> needed;
    if (limits.memory_max || limits.memory_high || limits.memory_swap_max) needed.insert(Controller::memory);
    if (limits.cpu_max_percent || limits.cpu_weight) needed.insert(Controller::cpu);
    if (limits.pids_max) needed.insert(Controller::pids);
    if (limits.io_weight) needed.insert(Controller::io);
    return needed;
}

std::vector<LimitFile> v2_limit_files(const config::ResourceLimits& l, const std::set<Controller>& reset) {
    std::vector<LimitFile> files;
    auto add = [&](bool set, Controller c, const char* file, std::string value, const char* key) {
        if (set || reset.contains(c)) files.push_back({c, file, std::move(value), key});
    };
    auto bytes_or_max = [](const std::optional<uint64_t>& v) { return v ? number(*v) : std::string("max"); };
    add(l.memory_max.has_value(), Controller::memory, "memory.max", bytes_or_max(l.memory_max), "memory_max");
    add(l.memory_high.has_value(), Controller::memory, "memory.high", bytes_or_max(l.memory_high), "memory_high");
    add(l.memory_swap_max.has_value(), Controller::memory, "memory.swap.max", bytes_or_max(l.memory_swap_max),
        "memory_swap_max");
    add(l.cpu_max_percent.has_value(), Controller::cpu, "cpu.max",
        (l.cpu_max_percent ? number(static_cast<uint64_t>(*l.cpu_max_percent) * kCpuPeriodUs / 100) : "max") + " " +
            number(kCpuPeriodUs),
        "cpu_max");
    add(l.cpu_weight.has_value(), Controller::cpu, "cpu.weight", number(l.cpu_weight.value_or(100)), "cpu_weight");
    add(l.pids_max.has_value(), Controller::pids, "pids.max",
        l.pids_max ? number(static_cast<uint64_t>(*l.pids_max)) : "max", "pids_max");
    add(l.io_weight.has_value(), Controller::io, "io.weight", "default " + number(l.io_weight.value_or(100)),
        "io_weight");
    return files;
}

Result<std::vector<LimitFile>> v1_limit_files(const config::ResourceLimits& l, const std::set<Controller>& reset) {
    if (l.memory_high)
        return fail("memory_high: the cgroup v1 memory hierarchy has nothing like memory.high "
                    "(it needs cgroup v2's memory controller)");
    if (l.memory_swap_max && !l.memory_max)
        return fail("memory_swap_max: on a cgroup v1 memory hierarchy swap is bounded together with memory "
                    "(memory.memsw.limit_in_bytes), so it needs memory_max too");
    std::vector<LimitFile> files;
    auto add = [&](bool set, Controller c, const char* file, std::string value, const char* key) {
        if (set || reset.contains(c)) files.push_back({c, file, std::move(value), key});
    };
    add(l.memory_max.has_value(), Controller::memory, "memory.limit_in_bytes",
        l.memory_max ? number(*l.memory_max) : "-1", "memory_max");
    // memsw is memory + swap; it may never be below memory.limit_in_bytes (the writer
    // retries a write the kernel refused for the order, see write_limit_files).
    bool swap_bounded = l.memory_max && l.memory_swap_max;
    add(swap_bounded, Controller::memory, "memory.memsw.limit_in_bytes",
        swap_bounded ? number(*l.memory_max + *l.memory_swap_max) : "-1", "memory_swap_max");
    add(l.cpu_max_percent.has_value(), Controller::cpu, "cpu.cfs_period_us", number(kCpuPeriodUs), "cpu_max");
    add(l.cpu_max_percent.has_value(), Controller::cpu, "cpu.cfs_quota_us",
        l.cpu_max_percent ? number(static_cast<uint64_t>(*l.cpu_max_percent) * kCpuPeriodUs / 100) : "-1",
        "cpu_max");
    // systemd's mapping of CPUWeight= to cpu.shares (100 -> 1024) and of IOWeight= to
    // blkio.weight (100 -> 500, within 10..1000).
    add(l.cpu_weight.has_value(), Controller::cpu, "cpu.shares",
        number(std::max<uint64_t>(2, static_cast<uint64_t>(l.cpu_weight.value_or(100)) * 1024 / 100)), "cpu_weight");
    add(l.pids_max.has_value(), Controller::pids, "pids.max",
        l.pids_max ? number(static_cast<uint64_t>(*l.pids_max)) : "max", "pids_max");
    add(l.io_weight.has_value(), Controller::io, "blkio.weight",
        number(std::clamp<uint64_t>(static_cast<uint64_t>(l.io_weight.value_or(100)) * 500 / 100, 10, 1000)),
        "io_weight");
    return files;
}

std::string format_size(uint64_t bytes) {
    static const char* const units[] = {"B", "K", "M", "G", "T"};
    double value = static_cast<double>(bytes);
    size_t unit = 0;
    // 1048575 bytes is "1.0M", not "1024.0K": the next unit once one decimal rounds up to it.
    while (value >= 1023.95 && unit + 1 < std::size(units)) {
        value /= 1024;
        ++unit;
    }
    char text[32];
    if (value == static_cast<double>(static_cast<uint64_t>(value)))
        std::snprintf(text, sizeof text, "%llu%s", static_cast<unsigned long long>(value), units[unit]);
    else
        std::snprintf(text, sizeof text, "%.1f%s", value, units[unit]);
    return text;
}

}  // namespace fdsup
