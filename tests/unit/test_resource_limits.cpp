// The resource code that needs no cgroup of its own to test: what each limit becomes
// in cgroup v2 and v1 files (cgroups/limit_files.h), where a v1 hierarchy is
// (cgroup_v1_dir_from), the controllers given to the instances on a tree of plain
// files standing in for cgroupfs (enable_subtree_controllers), the files
// written (write_limit_files), and the readers of /proc and of the cgroup texts
// (sys/proc_stat.h, oom_kill_count).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <string>
#include <utility>
#include <vector>

#include "cgroups/instance_limits.h"
#include "cgroups/limit_files.h"
#include "sys/cgroup_tree.h"
#include "sys/proc_stat.h"
#include "sys/two_threads.h"
#include "sys/unique_fd.h"
#include "temp_dir.h"

using fdsup::Controller;
using fdsup::LimitFile;
using fdsup::config::ResourceLimits;

namespace {

constexpr uint64_t MiB = 1024 * 1024, GiB = MiB * 1024;

// "memory.max=67108864 (memory_max, memory)": a file, its value, its key, its controller.
std::vector<std::string> described(const std::vector<LimitFile>& files) {
    std::vector<std::string> out;
    for (const auto& f : files)
        out.push_back(f.file + "=" + f.value + " (" + f.key + ", " + fdsup::v2_name(f.controller) + ")");
    return out;
}

ResourceLimits every_limit() {
    ResourceLimits l;
    l.memory_max = 64 * MiB;
    l.memory_high = 48 * MiB;
    l.memory_swap_max = 128 * MiB;
    l.cpu_max_percent = 150;
    l.cpu_weight = 200;
    l.pids_max = 64;
    l.io_weight = 50;
    return l;
}


void make_dir(const std::string& path) { REQUIRE(::mkdir(path.c_str(), 0755) == 0); }
void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path);
    REQUIRE(out);
    out << text;
}
std::string file_text(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}
bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

}  // namespace

// ---------------------------------------------------------------------------------
// cgroup v2 files

TEST_CASE("resource limits: v2 files, one per limit set, with the kernel's values") {
    CHECK(described(fdsup::v2_limit_files(every_limit())) == std::vector<std::string>{
              "memory.max=67108864 (memory_max, memory)",
              "memory.high=50331648 (memory_high, memory)",
              "memory.swap.max=134217728 (memory_swap_max, memory)",
              "cpu.max=150000 100000 (cpu_max, cpu)",
              "cpu.weight=200 (cpu_weight, cpu)",
              "pids.max=64 (pids_max, pids)",
              "io.weight=default 50 (io_weight, io)",
          });
    // cpu.max is "QUOTA PERIOD" in µs: 50% of one CPU, and 2.5 CPUs.
    ResourceLimits half, more;
    half.cpu_max_percent = 50;
    more.cpu_max_percent = 250;
    CHECK(described(fdsup::v2_limit_files(half)) == std::vector<std::string>{"cpu.max=50000 100000 (cpu_max, cpu)"});
    CHECK(described(fdsup::v2_limit_files(more)) == std::vector<std::string>{"cpu.max=250000 100000 (cpu_max, cpu)"});
}

TEST_CASE("resource limits: v2 files for unset limits only with reset, and only for its controllers") {
    // A new cgroup starts without limits: nothing to write for what is not set.
    CHECK(fdsup::v2_limit_files(ResourceLimits{}).empty());
    ResourceLimits memory_only;
    memory_only.memory_max = 64 * MiB;
    CHECK(described(fdsup::v2_limit_files(memory_only)) == std::vector<std::string>{
              "memory.max=67108864 (memory_max, memory)"});

    // A reload took limits away: "no limit" for each unset one of the controllers in
    // `reset` (the kernel's defaults: max, and weight 100), nothing for the others.
    CHECK(described(fdsup::v2_limit_files(memory_only, {Controller::memory, Controller::cpu})) ==
          std::vector<std::string>{
              "memory.max=67108864 (memory_max, memory)",
              "memory.high=max (memory_high, memory)",
              "memory.swap.max=max (memory_swap_max, memory)",
              "cpu.max=max 100000 (cpu_max, cpu)",
              "cpu.weight=100 (cpu_weight, cpu)",
          });
    CHECK(described(fdsup::v2_limit_files(ResourceLimits{}, {Controller::pids, Controller::io})) ==
          std::vector<std::string>{"pids.max=max (pids_max, pids)", "io.weight=default 100 (io_weight, io)"});
    // A limit that is set keeps its value whatever is reset.
    std::set<Controller> all(std::begin(fdsup::kAllControllers), std::end(fdsup::kAllControllers));
    CHECK(described(fdsup::v2_limit_files(every_limit(), all)) == described(fdsup::v2_limit_files(every_limit())));
}

// ---------------------------------------------------------------------------------
// cgroup v1 files (the hybrid layout)

TEST_CASE("resource limits: v1 files, memsw as memory + swap, cfs quota, shares and blkio weight") {
    ResourceLimits l = every_limit();
    l.memory_high.reset();
    auto files = fdsup::v1_limit_files(l);
    REQUIRE(files.has_value());
    CHECK(described(*files) == std::vector<std::string>{
              "memory.limit_in_bytes=67108864 (memory_max, memory)",
              "memory.memsw.limit_in_bytes=201326592 (memory_swap_max, memory)",  // 64M + 128M
              "cpu.cfs_period_us=100000 (cpu_max, cpu)",
              "cpu.cfs_quota_us=150000 (cpu_max, cpu)",
              "cpu.shares=2048 (cpu_weight, cpu)",      // 200 * 1024 / 100
              "pids.max=64 (pids_max, pids)",
              "blkio.weight=250 (io_weight, io)",        // 50 * 5
          });
    // memory_max alone bounds memory, not memsw.
    ResourceLimits memory_only;
    memory_only.memory_max = 64 * MiB;
    CHECK(described(fdsup::v1_limit_files(memory_only).value()) == std::vector<std::string>{
              "memory.limit_in_bytes=67108864 (memory_max, memory)"});
}

TEST_CASE("resource limits: v1 weights as systemd maps them, within the kernel's ranges") {
    auto value_of = [](const ResourceLimits& l, const std::string& file) {
        auto files = fdsup::v1_limit_files(l);
        REQUIRE(files.has_value());
        for (const auto& f : *files)
            if (f.file == file) return f.value;
        FAIL("no " << file);
        return std::string();
    };
    ResourceLimits l;
    using Pairs = std::vector<std::pair<int, std::string>>;
    for (const auto& [weight, shares] : Pairs{{100, "1024"}, {1, "10"}, {10000, "102400"}, {0, "2"}}) {
        CAPTURE(weight);
        l.cpu_weight = weight;
        CHECK(value_of(l, "cpu.shares") == shares);  // at least 2, the kernel's minimum
    }
    for (const auto& [weight, blkio] :
         Pairs{{100, "500"}, {1, "10"}, {2, "10"}, {3, "15"}, {200, "1000"}, {10000, "1000"}}) {
        CAPTURE(weight);
        l.io_weight = weight;
        CHECK(value_of(l, "blkio.weight") == blkio);  // io_weight * 5, within 10..1000
    }
}

TEST_CASE("resource limits: v1 cannot express memory_high, nor memory_swap_max alone") {
    ResourceLimits high;
    high.memory_max = 64 * MiB;
    high.memory_high = 48 * MiB;
    auto no_high = fdsup::v1_limit_files(high);
    REQUIRE_FALSE(no_high.has_value());
    CHECK(no_high.error().text().starts_with("memory_high: "));
    CHECK(no_high.error().text().find("memory.high") != std::string::npos);

    ResourceLimits swap;
    swap.memory_swap_max = GiB;
    auto no_max = fdsup::v1_limit_files(swap);
    REQUIRE_FALSE(no_max.has_value());
    CHECK(no_max.error().text().starts_with("memory_swap_max: "));
    CHECK(no_max.error().text().find("memory_max") != std::string::npos);
    // Not even to reset.
    CHECK_FALSE(fdsup::v1_limit_files(swap, {Controller::memory}).has_value());
}

TEST_CASE("resource limits: v1 reset writes -1 and max for the unset limits of its controllers") {
    std::set<Controller> all(std::begin(fdsup::kAllControllers), std::end(fdsup::kAllControllers));
    CHECK(described(fdsup::v1_limit_files(ResourceLimits{}, all).value()) == std::vector<std::string>{
              "memory.limit_in_bytes=-1 (memory_max, memory)",
              "memory.memsw.limit_in_bytes=-1 (memory_swap_max, memory)",
              "cpu.cfs_period_us=100000 (cpu_max, cpu)",
              "cpu.cfs_quota_us=-1 (cpu_max, cpu)",
              "cpu.shares=1024 (cpu_weight, cpu)",
              "pids.max=max (pids_max, pids)",
              "blkio.weight=500 (io_weight, io)",
          });
    // memory_max kept, its swap bound taken away; cpu untouched.
    ResourceLimits l;
    l.memory_max = 64 * MiB;
    l.pids_max = 10;
    CHECK(described(fdsup::v1_limit_files(l, {Controller::memory}).value()) == std::vector<std::string>{
              "memory.limit_in_bytes=67108864 (memory_max, memory)",
              "memory.memsw.limit_in_bytes=-1 (memory_swap_max, memory)",
              "pids.max=10 (pids_max, pids)",
          });
}

// ---------------------------------------------------------------------------------
// Controllers, names, sizes

TEST_CASE("resource limits: the controllers limits need, and their v1 and v2 names") {
    CHECK(fdsup::controllers_needed(ResourceLimits{}).empty());
    auto needs = [](auto set) {
        ResourceLimits l;
        set(l);
        return fdsup::controllers_needed(l);
    };
    using Set = std::set<Controller>;
    CHECK(needs([](ResourceLimits& l) { l.memory_max = 1; }) == Set{Controller::memory});
    CHECK(needs([](ResourceLimits& l) { l.memory_high = 1; }) == Set{Controller::memory});
    CHECK(needs([](ResourceLimits& l) { l.memory_swap_max = 1; }) == Set{Controller::memory});
    CHECK(needs([](ResourceLimits& l) { l.cpu_max_percent = 100; }) == Set{Controller::cpu});
    CHECK(needs([](ResourceLimits& l) { l.cpu_weight = 100; }) == Set{Controller::cpu});
    CHECK(needs([](ResourceLimits& l) { l.pids_max = 1; }) == Set{Controller::pids});
    CHECK(needs([](ResourceLimits& l) { l.io_weight = 100; }) == Set{Controller::io});
    CHECK(fdsup::controllers_needed(every_limit()) ==
          Set{Controller::memory, Controller::cpu, Controller::pids, Controller::io});

    CHECK(std::string(fdsup::v2_name(Controller::io)) == "io");
    CHECK(std::string(fdsup::v1_name(Controller::io)) == "blkio");
    for (Controller c : {Controller::memory, Controller::cpu, Controller::pids}) {
        CHECK(std::string(fdsup::v1_name(c)) == fdsup::v2_name(c));
    }
    CHECK(std::string(fdsup::v2_name(Controller::memory)) == "memory");
    CHECK(std::string(fdsup::v2_name(Controller::cpu)) == "cpu");
    CHECK(std::string(fdsup::v2_name(Controller::pids)) == "pids");
}

TEST_CASE("resource limits: format_size, base 1024, one decimal where it is not whole") {
    CHECK(fdsup::format_size(64 * MiB) == "64M");
    CHECK(fdsup::format_size(3 * GiB / 2) == "1.5G");
    CHECK(fdsup::format_size(512) == "512B");
    CHECK(fdsup::format_size(1024) == "1K");
    CHECK(fdsup::format_size(0) == "0B");
    CHECK(fdsup::format_size(1023) == "1023B");
    CHECK(fdsup::format_size(1536) == "1.5K");
    CHECK(fdsup::format_size(2048 * GiB) == "2T");
    CHECK(fdsup::format_size(MiB - 1) == "1.0M");  // not "1024.0K"
    CHECK(fdsup::format_size(2048 * 1024 * GiB) == "2048T");  // T is the largest unit
}

// ---------------------------------------------------------------------------------
// Where a v1 hierarchy is

namespace {

// This project's CI machine (a hybrid host; a container whose memory cgroup is its own),
// as /proc/self/cgroup and `grep cgroup /proc/self/mountinfo` show it.
const char* kHostCgroup =
    "9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n5:devices:/\n"
    "4:memory:/process_api/d4e8e3119c9312a9c5c9ffee9dbd029d\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n";
const char* kHostMounts =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices\n"
    "37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
    "38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

}  // namespace

TEST_CASE("resource limits: cgroup_v1_dir_from on a hybrid host, one hierarchy per controller") {
    using fdsup::cgroup_v1_dir_from;
    CHECK(cgroup_v1_dir_from(kHostCgroup, kHostMounts, "memory").value() ==
          "/sys/fs/cgroup/memory/process_api/d4e8e3119c9312a9c5c9ffee9dbd029d");
    CHECK(cgroup_v1_dir_from(kHostCgroup, kHostMounts, "cpu").value() == "/sys/fs/cgroup/cpu");
    CHECK(cgroup_v1_dir_from(kHostCgroup, kHostMounts, "pids").value() == "/sys/fs/cgroup/pids");
    CHECK(cgroup_v1_dir_from(kHostCgroup, kHostMounts, "blkio").value() == "/sys/fs/cgroup/blkio");
    // Only v1 controller names: not v2's "io", not a named hierarchy, not one there is none of.
    for (const char* none : {"io", "systemd", "hugetlb"}) {
        CAPTURE(none);
        auto dir = cgroup_v1_dir_from(kHostCgroup, kHostMounts, none);
        REQUIRE_FALSE(dir.has_value());
        CHECK(dir.error().text() == std::string("no cgroup v1 ") + none + " hierarchy");
    }
    // A hierarchy /proc/self/cgroup names, but no v1 mount shows (not the cgroup2 one).
    auto unmounted = cgroup_v1_dir_from("4:memory:/x\n0::/\n",
                                        "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n", "memory");
    REQUIRE_FALSE(unmounted.has_value());
    CHECK(unmounted.error().text().find("/x") != std::string::npos);
}

TEST_CASE("resource limits: cgroup_v1_dir_from, controllers sharing a hierarchy, and cpu is not cpuset") {
    using fdsup::cgroup_v1_dir_from;
    const char* combined_mounts =
        "35 31 0:32 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev - cgroup cgroup rw,cpu,cpuacct\n";
    CHECK(cgroup_v1_dir_from("2:cpu,cpuacct:/x\n", combined_mounts, "cpu").value() == "/sys/fs/cgroup/cpu,cpuacct/x");
    CHECK(cgroup_v1_dir_from("2:cpu,cpuacct:/x\n", combined_mounts, "cpuacct").value() ==
          "/sys/fs/cgroup/cpu,cpuacct/x");

    // cpuset listed first in both files, each in a cgroup of its own: a prefix match on
    // either would answer cpuset's directory.
    const char* cgroups = "3:cpuset:/set\n1:cpu:/quota\n";
    const char* mounts =
        "34 31 0:31 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n"
        "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
    CHECK(cgroup_v1_dir_from(cgroups, mounts, "cpu").value() == "/sys/fs/cgroup/cpu/quota");
    CHECK(cgroup_v1_dir_from(cgroups, mounts, "cpuset").value() == "/sys/fs/cgroup/cpuset/set");
    CHECK_FALSE(cgroup_v1_dir_from("3:cpuset:/set\n", mounts, "cpu").has_value());
    CHECK_FALSE(cgroup_v1_dir_from(cgroups, "34 31 0:31 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n", "cpu")
                    .has_value());
}

TEST_CASE("resource limits: cgroup_v1_dir_from through a mount of a subtree (a container's)") {
    using fdsup::cgroup_v1_dir_from;
    const char* mounts = "35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n";
    CHECK(cgroup_v1_dir_from("4:memory:/docker/abc\n", mounts, "memory").value() == "/sys/fs/cgroup/memory");
    CHECK(cgroup_v1_dir_from("4:memory:/docker/abc/app\n", mounts, "memory").value() ==
          "/sys/fs/cgroup/memory/app");
    // Outside the subtree (a sibling sharing a prefix of its name included): unreachable.
    CHECK_FALSE(cgroup_v1_dir_from("4:memory:/docker/abcdef\n", mounts, "memory").has_value());
    CHECK_FALSE(cgroup_v1_dir_from("4:memory:/other\n", mounts, "memory").has_value());
}

// ---------------------------------------------------------------------------------
// Controllers for the instances (cgroup v2), on a tree of plain files

namespace {

// "own" (the cgroup fdsupd was started in, with every controller delegated) and
// "own/tree" (its "fdsupd-PID").
struct FakeTree {
    TempDir base{"limits"};
    std::string own = base / "own", tree = own + "/tree";
    FakeTree() {
        make_dir(own);
        make_dir(tree);
        write_file(own + "/cgroup.controllers", "cpu io memory pids\n");
    }
};

}  // namespace

TEST_CASE("resource limits: enable_subtree_controllers moves fdsupd into its leaf, then enables each") {
    FakeTree fake;
    const std::string &own = fake.own, &tree = fake.tree;
    write_file(own + "/cgroup.subtree_control", "");
    write_file(tree + "/cgroup.subtree_control", "\n");  // as cgroupfs shows an empty one
    // cgroupfs gives a new cgroup its cgroup.procs; a plain directory has none.
    make_dir(tree + "/" + fdsup::kSupervisorLeaf);
    write_file(tree + "/supervisor/cgroup.procs", "");

    auto enabled = fdsup::enable_subtree_controllers(own, tree, {"memory", "pids"});
    REQUIRE_MESSAGE(enabled.has_value(), enabled.error().text());
    CHECK(file_text(tree + "/supervisor/cgroup.procs") == "0");  // "0": the writing process
    // One write each, every controller at once (plain files keep what was written last).
    CHECK(file_text(own + "/cgroup.subtree_control") == "+memory +pids");
    CHECK(file_text(tree + "/cgroup.subtree_control") == "+memory +pids");
}

TEST_CASE("resource limits: enable_subtree_controllers makes the leaf and moves first, writing nothing before") {
    FakeTree fake;
    const std::string &own = fake.own, &tree = fake.tree;
    write_file(own + "/cgroup.subtree_control", "");
    write_file(tree + "/cgroup.subtree_control", "\n");

    // Without cgroupfs to give it a cgroup.procs, the leaf is made but fdsupd cannot
    // join it: no controller may be enabled then (the rule would refuse it anyway).
    auto enabled = fdsup::enable_subtree_controllers(own, tree, {"memory"});
    REQUIRE_FALSE(enabled.has_value());
    CHECK(enabled.error().text() == "open " + tree + "/supervisor/cgroup.procs: No such file or directory");
    CHECK(exists(tree + "/supervisor"));
    CHECK(file_text(own + "/cgroup.subtree_control") == "");
    CHECK(file_text(tree + "/cgroup.subtree_control") == "\n");
}

TEST_CASE("resource limits: enable_subtree_controllers fails for a controller own's cgroup lacks, moving nothing") {
    FakeTree fake;
    const std::string &own = fake.own, &tree = fake.tree;
    write_file(own + "/cgroup.subtree_control", "");
    write_file(tree + "/cgroup.subtree_control", "");

    for (const char* missing : {"rdma", "mem"}) {  // a whole word of cgroup.controllers, not a part
        CAPTURE(missing);
        auto enabled = fdsup::enable_subtree_controllers(own, tree, {"memory", missing});
        REQUIRE_FALSE(enabled.has_value());
        CHECK(enabled.error().text().starts_with(own + "/cgroup.controllers has no " + missing + " controller"));
    }
    CHECK_FALSE(exists(tree + "/supervisor"));
    CHECK(file_text(own + "/cgroup.subtree_control") == "");
    CHECK(file_text(tree + "/cgroup.subtree_control") == "");
}

TEST_CASE("resource limits: enable_subtree_controllers does nothing when every one is enabled already") {
    FakeTree fake;
    const std::string &own = fake.own, &tree = fake.tree;
    write_file(own + "/cgroup.subtree_control", "cpu memory pids\n");
    write_file(tree + "/cgroup.subtree_control", "cpu memory pids\n");

    auto enabled = fdsup::enable_subtree_controllers(own, tree, {"pids", "memory"});
    REQUIRE_MESSAGE(enabled.has_value(), enabled.error().text());
    CHECK_FALSE(exists(tree + "/supervisor"));
    CHECK(file_text(own + "/cgroup.subtree_control") == "cpu memory pids\n");
    CHECK(file_text(tree + "/cgroup.subtree_control") == "cpu memory pids\n");
    // One not enabled yet is enough to move (and, here, fail for the leaf's cgroup.procs).
    CHECK_FALSE(fdsup::enable_subtree_controllers(own, tree, {"pids", "io"}).has_value());
    CHECK(exists(tree + "/supervisor"));
}

// ---------------------------------------------------------------------------------
// Writing the files

TEST_CASE("resource limits: write_limit_files writes each value into its file below dir(file)") {
    TempDir base("limits");
    make_dir(base / "memory");
    make_dir(base / "cpu");
    make_dir(base / "pids");
    for (const char* file : {"memory/memory.limit_in_bytes", "cpu/cpu.cfs_period_us", "cpu/cpu.cfs_quota_us",
                             "cpu/cpu.shares", "pids/pids.max"})
        write_file(base / file, "");
    ResourceLimits l;
    l.memory_max = 64 * MiB;
    l.cpu_max_percent = 150;
    l.pids_max = 64;
    // memsw reset to "-1" but absent (swap accounting off): nothing to do, and not made.
    auto files = fdsup::v1_limit_files(l, {Controller::memory, Controller::cpu});
    REQUIRE(files.has_value());
    auto written = fdsup::write_limit_files(
        *files, [&](const LimitFile& f) { return base / fdsup::v1_name(f.controller); });
    REQUIRE_MESSAGE(written.has_value(), written.error().text());
    CHECK(file_text(base / "memory/memory.limit_in_bytes") == "67108864");
    CHECK(file_text(base / "cpu/cpu.cfs_period_us") == "100000");
    CHECK(file_text(base / "cpu/cpu.cfs_quota_us") == "150000");
    CHECK(file_text(base / "cpu/cpu.shares") == "1024");
    CHECK(file_text(base / "pids/pids.max") == "64");
    CHECK_FALSE(exists(base / "memory/memory.memsw.limit_in_bytes"));
}

TEST_CASE("resource limits: write_limit_files skips \"max\" for a missing file, fails naming the key for a value") {
    TempDir base("limits");
    write_file(base / "memory.max", "");
    ResourceLimits l;
    l.memory_max = 64 * MiB;
    auto in_base = [&](const LimitFile&) { return base.path; };
    // memory.high and memory.swap.max reset to "max", and absent.
    auto reset = fdsup::write_limit_files(fdsup::v2_limit_files(l, {Controller::memory}), in_base);
    REQUIRE_MESSAGE(reset.has_value(), reset.error().text());
    CHECK(file_text(base / "memory.max") == "67108864");
    CHECK_FALSE(exists(base / "memory.swap.max"));

    l.memory_swap_max = GiB;
    auto missing = fdsup::write_limit_files(fdsup::v2_limit_files(l), in_base);
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().text() ==
          "memory_swap_max: open " + base.path + "/memory.swap.max: No such file or directory");
    CHECK_FALSE(exists(base / "memory.swap.max"));
}

// ---------------------------------------------------------------------------------
// What the kernel says of usage

TEST_CASE("resource usage: parse_proc_stat finds the fields after the last ')' of the command name") {
    // This machine's /proc/self/stat, with a command name holding spaces and ')' and
    // distinct values around the fields read (utime 7, stime 11, cutime 13, cstime 17).
    const std::string line =
        "123 (a) b) c) S 1 456 123 0 -1 4194304 99 0 0 0 7 11 13 17 20 0 1 0 2409926 3133440 412 "
        "18446744073709551615 93937412513792 93937412533673 140730881527472 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 "
        "93937412549680 93937412551296 93937700638720 140730881530507 140730881530527 140730881530527 "
        "140730881531883 0\n";
    auto stat = fdsup::parse_proc_stat(line);
    REQUIRE(stat.has_value());
    CHECK(stat->pid == 123);
    CHECK(stat->process_group == 456);
    CHECK(stat->cpu_ticks == 48);  // utime + stime + cutime + cstime
    CHECK(stat->rss_pages == 412);

    // Up to rss (field 24) is all that is needed, with or without a newline.
    CHECK(fdsup::parse_proc_stat("7 (x) S 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 6 9")->rss_pages == 9);
    CHECK(fdsup::parse_proc_stat("7 (x) S 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 6 9\n")->rss_pages == 9);
    for (const char* bad : {"7 (x) S 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 6",  // truncated before rss
                            "7 (x) S 1 7 7 0 -1 0 0 0 0 0 1 2",                   // truncated before stime
                            "", "7 (x", "x (x) S 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 6 9",
                            "7 (x) S 1 z 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 6 9"}) {
        CAPTURE(bad);
        CHECK_FALSE(fdsup::parse_proc_stat(bad).has_value());
    }
}

TEST_CASE("resource usage: read_proc_stat and scan_proc_stats find this process") {
    auto stat = fdsup::read_proc_stat(::getpid());
    REQUIRE(stat.has_value());
    CHECK(stat->pid == ::getpid());
    CHECK(stat->process_group == ::getpgrp());
    CHECK(stat->rss_pages > 0);
    bool found = false;
    for (const auto& s : fdsup::scan_proc_stats()) found |= s.pid == ::getpid();
    CHECK(found);
}

TEST_CASE("resource usage: count_open_fds counts one more for an fd opened") {
    auto before = fdsup::count_open_fds(::getpid());
    REQUIRE(before.has_value());
    CHECK(*before > 0);
    int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    auto during = fdsup::count_open_fds(::getpid());
    ::close(fd);
    CHECK(during == *before + 1);
    CHECK(fdsup::count_open_fds(::getpid()) == before);
}

TEST_CASE("resource usage: read_proc, on two threads, reads every process and each pid's fds in order") {
    // A child with a known fd table (this process's own changes while /proc is read).
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::pause();
        ::_exit(0);
    }
    auto child_fds = fdsup::count_open_fds(child);
    REQUIRE(child_fds.has_value());
    constexpr pid_t kNoSuchPid = 4194304 + 1;  // above PID_MAX_LIMIT: never a process
    for (size_t asked : {size_t{3}, size_t{1500}}) {  // one thread, then two
        CAPTURE(asked);
        std::vector<pid_t> fds_of;
        for (size_t i = 0; i < asked; ++i) fds_of.push_back(i % 3 == 1 ? kNoSuchPid : child);
        auto snapshot = fdsup::read_proc(true, fds_of);
        REQUIRE(snapshot.open_fds.size() == asked);
        for (size_t i = 0; i < asked; ++i) {
            CAPTURE(i);
            if (i % 3 == 1) CHECK_FALSE(snapshot.open_fds[i].has_value());
            else CHECK(snapshot.open_fds[i] == child_fds);
        }
        int seen = 0;
        for (const auto& stat : snapshot.stats) {
            if (stat.pid == child) CHECK(stat.process_group == ::getpgrp());
            if (stat.pid == ::getpid()) CHECK(stat.process_group == ::getpgrp());
            seen += stat.pid == child || stat.pid == ::getpid();
        }
        CHECK(seen == 2);
        // Every process once (a pid listed twice would count its group's usage twice).
        std::set<pid_t> distinct;
        for (const auto& stat : snapshot.stats) distinct.insert(stat.pid);
        CHECK(distinct.size() == snapshot.stats.size());
    }
    CHECK(fdsup::read_proc(false, {child}).stats.empty());
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
}

TEST_CASE("two threads: both parts run, the second on another thread with every signal blocked") {
    std::mutex mutex;
    std::vector<std::pair<int, int>> calls;
    std::thread::id second_thread;
    bool second_blocks_all = false;
    fdsup::on_two_threads(true, [&](int part, int parts) {
        std::lock_guard lock(mutex);
        calls.emplace_back(part, parts);
        if (part == 1) {
            second_thread = std::this_thread::get_id();
            sigset_t mask;
            ::pthread_sigmask(SIG_SETMASK, nullptr, &mask);
            second_blocks_all = ::sigismember(&mask, SIGTERM) == 1 && ::sigismember(&mask, SIGCHLD) == 1 &&
                                ::sigismember(&mask, SIGUSR1) == 1;
        }
    });
    std::sort(calls.begin(), calls.end());
    CHECK(calls == std::vector<std::pair<int, int>>{{0, 2}, {1, 2}});
    CHECK(second_thread != std::this_thread::get_id());
    CHECK(second_blocks_all);
    // This thread's mask is as it was.
    sigset_t mine;
    ::pthread_sigmask(SIG_SETMASK, nullptr, &mine);
    CHECK(::sigismember(&mine, SIGUSR1) == 0);

    calls.clear();
    fdsup::on_two_threads(false, [&](int part, int parts) { calls.emplace_back(part, parts); });
    CHECK(calls == std::vector<std::pair<int, int>>{{0, 1}});
}

TEST_CASE("two threads: an exception from either part is thrown to the caller once both have ended") {
    for (int throwing : {0, 1}) {
        std::atomic<int> ended{0};
        auto run = [&] {
            fdsup::on_two_threads(true, [&](int part, int) {
                if (part == throwing) throw std::runtime_error("part " + std::to_string(part));
                std::this_thread::sleep_for(std::chrono::milliseconds(20));  // still running when the other throws
                ended++;
            });
        };
        CHECK_THROWS_WITH(run(), ("part " + std::to_string(throwing)).c_str());
        CHECK(ended == 1);  // the part that did not throw had finished: joined, not abandoned
    }
}

TEST_CASE("resource usage: parse_pressure, with and without the full line") {
    auto memory = fdsup::parse_pressure(
        "some avg10=1.50 avg60=0.80 avg300=0.20 total=123456\n"
        "full avg10=0.50 avg60=0.10 avg300=0.00 total=6789\n");
    CHECK(memory == fdsup::Pressure{1.5, 123456, 6789});
    // cpu.pressure before Linux 5.13; and no final newline.
    auto cpu = fdsup::parse_pressure("some avg10=12.25 avg60=3.00 avg300=1.00 total=42");
    CHECK(cpu == fdsup::Pressure{12.25, 42, 0});
    // Linux 5.13 on: cpu.pressure's full line, all zeros at the system level.
    CHECK(fdsup::parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n"
                                "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n") == fdsup::Pressure{0, 5, 0});
    for (const char* bad : {"", "garbage\n", "full avg10=0.50 avg60=0.10 avg300=0.00 total=6789\n",
                            "some avg10 total=1\n", "some avg10=x avg60=0.00 avg300=0.00 total=1\n",
                            "some avg10=0.00 avg60=0.00 avg300=0.00 total=abc\n"}) {
        CAPTURE(bad);
        CHECK_FALSE(fdsup::parse_pressure(bad).has_value());
    }
}

TEST_CASE("resource usage: oom_kill_count from memory.events (v2) and memory.oom_control (v1)") {
    CHECK(fdsup::oom_kill_count("low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n") == 1u);
    CHECK(fdsup::oom_kill_count("low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\noom_group_kill 0\n") == 1u);
    CHECK(fdsup::oom_kill_count("oom_kill_disable 0\nunder_oom 0\noom_kill 4\n") == 4u);
    CHECK(fdsup::oom_kill_count("low 0\nhigh 0\nmax 3\noom 2\n") == std::nullopt);  // before Linux 4.13
    CHECK(fdsup::oom_kill_count("") == std::nullopt);
}
