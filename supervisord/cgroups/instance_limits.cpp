#include "cgroups/instance_limits.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <sstream>

namespace fdsup {
namespace {

// `limits` with only those of `controllers` kept: what goes to one kind of hierarchy.
config::ResourceLimits only(const config::ResourceLimits& limits, const std::set<Controller>& controllers) {
    config::ResourceLimits kept;
    if (controllers.contains(Controller::memory)) {
        kept.memory_max = limits.memory_max;
        kept.memory_high = limits.memory_high;
        kept.memory_swap_max = limits.memory_swap_max;
    }
    if (controllers.contains(Controller::cpu)) {
        kept.cpu_max_percent = limits.cpu_max_percent;
        kept.cpu_weight = limits.cpu_weight;
    }
    if (controllers.contains(Controller::pids)) kept.pids_max = limits.pids_max;
    if (controllers.contains(Controller::io)) kept.io_weight = limits.io_weight;
    return kept;
}

std::set<Controller> keys_of(const std::map<Controller, std::string>& map) {
    std::set<Controller> keys;
    for (const auto& [key, value] : map) keys.insert(key);
    return keys;
}

bool no_limit(const std::string& value) { return value == "max" || value == "-1"; }

std::optional<uint64_t> read_number(const std::string& path) {
    auto text = read_cgroup_file(path);
    if (!text) return std::nullopt;
    try {
        return std::stoull(*text);
    } catch (...) {
        return std::nullopt;
    }
}

}  // namespace

Result<void> write_limit_files(const std::vector<LimitFile>& files,
                               const std::function<std::string(const LimitFile&)>& dir) {
    std::vector<const LimitFile*> refused;
    for (int round = 0; round < 2; ++round) {
        std::vector<const LimitFile*> pending;
        if (round == 0)
            for (const auto& f : files) pending.push_back(&f);
        else
            pending = std::move(refused);
        refused.clear();
        for (const LimitFile* f : pending) {
            auto written = write_cgroup_file(dir(*f) + "/" + f->file, f->value);
            if (written) continue;
            if (written.error().err == ENOENT && no_limit(f->value)) continue;
            if (round == 0 && written.error().err == EINVAL) {
                refused.push_back(f);
                continue;
            }
            return fail(f->key + ": " + written.error().text());
        }
    }
    return {};
}

std::optional<uint64_t> oom_kill_count(const std::string& text) { return cgroup_keyed_value(text, "oom_kill"); }

Result<void> InstanceLimits::prepare(const config::Config& config, const CgroupTree& tree) {
    std::set<Controller> needed;
    for (const auto& worker : config.workers)
        if (worker.kill_mode == config::KillMode::cgroup) needed.merge(controllers_needed(worker.limits));
    if (needed.empty()) return {};

    // Where each one is: cgroup v2 if fdsupd's own cgroup has it to give, else a v1
    // hierarchy of its own (the hybrid layout). Once placed, a controller stays put.
    std::string controllers_file = tree.parent() + "/cgroup.controllers";
    auto available = read_cgroup_file(controllers_file);
    if (!available) return std::unexpected(available.error());
    auto proc_cgroup = read_cgroup_file("/proc/self/cgroup");
    if (!proc_cgroup) return std::unexpected(proc_cgroup.error());
    auto mountinfo = read_cgroup_file("/proc/self/mountinfo");
    if (!mountinfo) return std::unexpected(mountinfo.error());
    std::vector<std::string> to_enable;
    std::set<Controller> v2 = v2_;
    std::map<Controller, std::string> v1 = v1_;
    std::string own_name = "fdsupd-" + std::to_string(::getpid());
    for (Controller c : needed) {
        if (v2.contains(c) || v1.contains(c)) continue;
        if (lists_word(*available, v2_name(c))) {
            to_enable.push_back(v2_name(c));
            v2.insert(c);
            continue;
        }
        auto own = cgroup_v1_dir_from(*proc_cgroup, *mountinfo, v1_name(c));
        if (!own)
            return fail(std::string("no ") + v2_name(c) + " controller for the limits: " + controllers_file +
                        " does not list it, and there is no cgroup v1 " + v1_name(c) + " hierarchy");
        auto alive = [](pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; };
        for (const auto& line : remove_stale_trees(*own, ::getpid(), alive)) spdlog::warn("cgroups: {}", line);
        std::string dir = *own + "/" + own_name;
        if (::mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST) return fail_errno("mkdir " + dir);
        v1[c] = dir;
    }
    if (!to_enable.empty())
        if (auto enabled = enable_subtree_controllers(tree.parent(), tree.path(), to_enable); !enabled)
            return enabled;
    // The v1 "fdsupd-PID" of a controller no limit needs now may still hold instances'
    // cgroups (a reload took the limit away, then an upgrade): kept track of, so that
    // they are removed with their instances, and it with fdsupd.
    for (Controller c : kAllControllers) {
        if (v1.contains(c) || v1_leftover_.contains(c)) continue;
        auto own = cgroup_v1_dir_from(*proc_cgroup, *mountinfo, v1_name(c));
        if (own && ::access((*own + "/" + own_name).c_str(), F_OK) == 0) v1_leftover_[c] = *own + "/" + own_name;
    }

    // Every file a worker's limits are written to must be there to write: a kernel
    // without one (blkio.weight needs BFQ, memsw needs swap accounting) is said now.
    for (const auto& worker : config.workers) {
        if (worker.kill_mode != config::KillMode::cgroup || !worker.limits.any()) continue;
        std::vector<LimitFile> files = v2_limit_files(only(worker.limits, v2));
        auto v1_files = v1_limit_files(only(worker.limits, keys_of(v1)));
        if (!v1_files) return fail("worker " + worker.name + ": " + v1_files.error().text());
        files.insert(files.end(), v1_files->begin(), v1_files->end());
        for (const auto& f : files) {
            std::string path = (v2.contains(f.controller) ? tree.path() : v1.at(f.controller)) + "/" + f.file;
            if (::access(path.c_str(), W_OK) < 0)
                return fail("worker " + worker.name + ": " + f.key + ": " + path, errno);
        }
    }
    v2_ = std::move(v2);
    v1_ = std::move(v1);
    return {};
}

InstanceLimits::~InstanceLimits() {
    for (const auto* dirs : {&v1_, &v1_leftover_})
        for (const auto& [controller, dir] : *dirs) ::rmdir(dir.c_str());
}

std::string InstanceLimits::v1_dir(Controller controller, const std::string& name) const {
    return v1_.at(controller) + "/" + name;
}

Result<std::vector<UniqueFd>> InstanceLimits::apply(const CgroupTree& tree, const std::string& name,
                                                    const config::ResourceLimits& limits) {
    std::vector<UniqueFd> joins;
    if (!limits.any()) return joins;
    for (Controller c : controllers_needed(limits))
        if (!v2_.contains(c) && !v1_.contains(c))
            return fail(std::string("no ") + v2_name(c) + " controller was prepared for the limits");

    std::string v2_dir = tree.path() + "/" + name;
    if (auto written = write_limit_files(v2_limit_files(only(limits, v2_)), [&](const LimitFile&) { return v2_dir; });
        !written)
        return std::unexpected(written.error());
    auto v1_files = v1_limit_files(only(limits, keys_of(v1_)));
    if (!v1_files) return std::unexpected(v1_files.error());

    std::vector<Controller> made;
    auto undo = [&] {
        for (Controller c : made) ::rmdir(v1_dir(c, name).c_str());
    };
    for (Controller c : controllers_needed(limits)) {
        if (!v1_.contains(c)) continue;
        std::string dir = v1_dir(c, name);
        if (::mkdir(dir.c_str(), 0755) < 0) {
            auto error = fail_errno("mkdir " + dir);
            undo();
            return error;
        }
        made.push_back(c);
        std::vector<LimitFile> own;
        for (const auto& f : *v1_files)
            if (f.controller == c) own.push_back(f);
        auto written = write_limit_files(own, [&](const LimitFile&) { return dir; });
        UniqueFd procs(written ? ::open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC) : -1);
        if (!written || !procs) {
            auto error = written ? fail_errno("open " + dir + "/cgroup.procs") : std::unexpected(written.error());
            undo();
            return error;
        }
        joins.push_back(std::move(procs));
    }
    return joins;
}

Result<void> InstanceLimits::update(const CgroupTree& tree, const std::string& name,
                                    const config::ResourceLimits& before, const config::ResourceLimits& after) {
    std::set<Controller> touched = controllers_needed(before);
    touched.merge(controllers_needed(after));
    std::set<Controller> on_v2, on_v1;
    for (Controller c : touched) (v2_.contains(c) ? on_v2 : on_v1).insert(c);
    std::vector<LimitFile> v2_files = v2_limit_files(only(after, on_v2), on_v2);
    std::string v2_dir = tree.path() + "/" + name;
    if (auto written = write_limit_files(v2_files, [&](const LimitFile&) { return v2_dir; }); !written)
        return written;
    std::vector<std::string> later;
    std::erase_if(on_v1, [&](Controller c) { return !v1_.contains(c); });
    if (on_v1.empty()) return {};
    auto v1_files = v1_limit_files(only(after, on_v1), on_v1);
    if (!v1_files) return std::unexpected(v1_files.error());
    std::vector<LimitFile> now;
    for (const auto& f : *v1_files) {
        if (!v1_.contains(f.controller)) continue;
        if (::access(v1_dir(f.controller, name).c_str(), F_OK) == 0) now.push_back(f);
        else if (!no_limit(f.value)) later.push_back(f.key);
    }
    if (auto written = write_limit_files(now, [&](const LimitFile& f) { return v1_dir(f.controller, name); });
        !written)
        return written;
    if (!later.empty())
        return fail(later.front() + ": takes effect at the instance's next start (its process joined no "
                    "cgroup v1 group for that limit)");
    return {};
}

void InstanceLimits::remove(const std::string& name) const {
    for (const auto* dirs : {&v1_, &v1_leftover_})
        for (const auto& [controller, dir] : *dirs) {
            std::string path = dir + "/" + name;
            if (::rmdir(path.c_str()) < 0 && errno != ENOENT)
                spdlog::warn("rmdir {}: {}", path, std::strerror(errno));
        }
}

std::optional<uint64_t> InstanceLimits::v1_memory_current(const std::string& name) const {
    if (!v1_.contains(Controller::memory)) return std::nullopt;
    return read_number(v1_dir(Controller::memory, name) + "/memory.usage_in_bytes");
}

std::optional<uint64_t> InstanceLimits::v1_oom_kills(const std::string& name) const {
    if (!v1_.contains(Controller::memory)) return std::nullopt;
    auto text = read_cgroup_file(v1_dir(Controller::memory, name) + "/memory.oom_control");
    if (!text) return std::nullopt;
    return oom_kill_count(*text);
}

}  // namespace fdsup
