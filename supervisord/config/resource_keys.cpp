// [workers.NAME]'s resource keys: the limits fdsupd writes into each instance's cgroup
// (memory_max ... io_weight), and recycling (recycle_memory, recycle_after, max_age,
// max_age_jitter), with the checks between them.
#include <array>
#include <utility>

#include "config/table_reader.h"
#include "config/values.h"

namespace fdsup::config {

namespace {

// The limit keys, each with whether it limits anything ("infinity" does not).
std::array<std::pair<std::string_view, bool>, 7> limit_keys(const ResourceLimits& l) {
    return {{{"memory_max", l.memory_max.has_value()},
             {"memory_high", l.memory_high.has_value()},
             {"memory_swap_max", l.memory_swap_max.has_value()},
             {"cpu_max", l.cpu_max_percent.has_value()},
             {"cpu_weight", l.cpu_weight.has_value()},
             {"pids_max", l.pids_max.has_value()},
             {"io_weight", l.io_weight.has_value()}}};
}

}  // namespace

void Loader::read_limits(const Section& s, ResourceLimits& limits) {
    auto size = [&](const auto& n, const auto& p) { return as_size(n, p, false); };
    read(s, "memory_max", limits.memory_max, size);
    read(s, "memory_high", limits.memory_high, size);
    // 0 is a limit here: no swap at all (systemd's MemorySwapMax=0).
    read(s, "memory_swap_max", limits.memory_swap_max,
         [&](const auto& n, const auto& p) { return as_size(n, p, true); });
    read(s, "cpu_max", limits.cpu_max_percent, [&](const auto& n, const auto& p) { return as_cpu_percent(n, p); });
    auto weight = [&](const auto& n, const auto& p) -> std::optional<int> {
        auto value = as_integer(n, p, 1, kMaxWeight);
        if (!value) return std::nullopt;
        return static_cast<int>(*value);
    };
    read(s, "cpu_weight", limits.cpu_weight, weight);
    read(s, "io_weight", limits.io_weight, weight);
    read(s, "pids_max", limits.pids_max,
         [&](const auto& n, const auto& p) { return as_count_or_infinity(n, p, 1, kMaxPids); });
}

void Loader::read_recycle(const Section& s, RecyclePolicy& recycle) {
    read(s, "recycle_memory", recycle.memory, [&](const auto& n, const auto& p) { return as_size(n, p, false); });
    read_duration(s, "recycle_after", recycle.memory_after);
    read(s, "max_age", recycle.max_age, [&](const auto& n, const auto& p) { return as_duration(n, p); });
    read_duration(s, "max_age_jitter", recycle.max_age_jitter);
    if (const toml::node* n = s.get("recycle_after"); n && recycle.memory_after == 0ms)
        error(*n, s.at("recycle_after"), "must be greater than 0");
    if (const toml::node* n = s.get("max_age"); n && recycle.max_age == 0ms)
        error(*n, s.at("max_age"), "must be greater than 0");
}

// Limits are written into the instance's cgroup, so there must be one. Each limit
// that limits something is reported, at its own place.
void Loader::check_limits(const Section& s, const WorkerConfig& w) {
    const ResourceLimits& l = w.limits;
    if (w.kill_mode != KillMode::cgroup)
        for (auto [key, limits] : limit_keys(l))
            if (const toml::node* n = s.get(key); n && limits)
                error(*n, s.at(key),
                      "limits need kill_mode = \"cgroup\" (fdsupd writes them into each instance's cgroup)");

    // As systemd allows: the kernel takes it, but memory_max is reached first, so
    // memory_high never throttles.
    if (const toml::node* n = s.get("memory_high"); n && l.memory_high && l.memory_max && *l.memory_high >= *l.memory_max)
        warning(*n, s.at("memory_high"),
                size_text(*l.memory_high) + " is not below memory_max (" + size_text(*l.memory_max) +
                    "), so it never throttles: the instance reaches memory_max first");
}

void Loader::check_recycle(const Section& s, const WorkerConfig& w) {
    const RecyclePolicy& r = w.recycle;
    // Given without its partner, a key would silently do nothing. The partner written
    // as "infinity" counts as given: that is switching it off on purpose.
    if (const toml::node* n = s.get("recycle_after"); n && !s.get("recycle_memory"))
        error(*n, s.at("recycle_after"),
              "has no effect without recycle_memory (it is how long an instance's memory use must stay above "
              "recycle_memory before the instance is replaced)");
    if (const toml::node* n = s.get("max_age_jitter"); n && !s.get("max_age"))
        error(*n, s.at("max_age_jitter"),
              "has no effect without max_age (it spreads each instance's max_age over a random share of it)");

    const toml::node* memory = s.get("recycle_memory");
    if (!memory || !r.memory) return;
    const ResourceLimits& l = w.limits;
    if (l.memory_max && *r.memory >= *l.memory_max)
        error(*memory, s.at("recycle_memory"),
              size_text(*r.memory) + " is not below memory_max (" + size_text(*l.memory_max) +
                  "): the kernel's OOM killer would act before the recycle could");
    else if (l.memory_high && *r.memory >= *l.memory_high)
        warning(*memory, s.at("recycle_memory"),
                size_text(*r.memory) + " is not below memory_high (" + size_text(*l.memory_high) +
                    "): the kernel throttles the instance there, so its use may never reach recycle_memory");
}

}  // namespace fdsup::config
