// Where fdsupd finds its own cgroup v2 directory: /proc/self/cgroup resolved through
// /proc/self/mountinfo.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include "sys/cgroup_tree.h"

using fdsup::cgroup_dir_from;

namespace {

// A hybrid host, as this project's CI machine: v1 controllers, and the unified
// hierarchy at /sys/fs/cgroup/unified.
const char* kHybridMounts =
    "30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n"
    "31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw\n"
    "32 30 0:28 / /sys/fs/cgroup/memory rw,nosuid shared:11 - cgroup cgroup rw,memory\n";

}  // namespace

TEST_CASE("cgroup dir: the unified line of /proc/self/cgroup below a cgroup2 mount") {
    const char* cgroups = "4:memory:/docker/abc\n0::/system.slice/fdsupd.service\n";
    CHECK(cgroup_dir_from(cgroups, kHybridMounts).value() == "/sys/fs/cgroup/unified/system.slice/fdsupd.service");
    // In the root cgroup: the mount itself.
    CHECK(cgroup_dir_from("0::/\n", kHybridMounts).value() == "/sys/fs/cgroup/unified");
}

TEST_CASE("cgroup dir: a unified host, and optional fields before the separator") {
    const char* mounts =
        "25 21 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 master:1 - cgroup2 cgroup2 rw,nsdelegate\n";
    CHECK(cgroup_dir_from("0::/user.slice\n", mounts).value() == "/sys/fs/cgroup/user.slice");
}

TEST_CASE("cgroup dir: a mount of a subtree (its root field) and escaped mount points") {
    // A container given only its own subtree, mounted where a space needs escaping.
    const char* mounts = "40 30 0:27 /docker/abc /run/my\\040cgroup rw - cgroup2 cgroup2 rw\n";
    CHECK(cgroup_dir_from("0::/docker/abc/app\n", mounts).value() == "/run/my cgroup/app");
    CHECK(cgroup_dir_from("0::/docker/abc\n", mounts).value() == "/run/my cgroup");
    // A cgroup outside the mounted subtree is not reachable through it (nor is a
    // sibling that only shares a prefix of its name).
    CHECK_FALSE(cgroup_dir_from("0::/docker/other\n", mounts).has_value());
    CHECK_FALSE(cgroup_dir_from("0::/docker/abcdef\n", mounts).has_value());
}

TEST_CASE("cgroup dir: no cgroup v2 at all") {
    // Pure v1: no "0::" line.
    auto v1 = cgroup_dir_from("4:memory:/x\n1:name=systemd:/x\n", kHybridMounts);
    REQUIRE_FALSE(v1.has_value());
    CHECK(v1.error().message.find("no cgroup v2 hierarchy") != std::string::npos);
    // A v2 line but no cgroup2 mount to reach it through.
    const char* v1_mounts = "32 30 0:28 / /sys/fs/cgroup/memory rw shared:11 - cgroup cgroup rw,memory\n";
    auto unmounted = cgroup_dir_from("0::/x\n", v1_mounts);
    REQUIRE_FALSE(unmounted.has_value());
    CHECK(unmounted.error().message == "no cgroup2 mount shows this process's cgroup /x");
    // Garbage in either file is no crash, only no answer.
    CHECK_FALSE(cgroup_dir_from("0::\n", kHybridMounts).has_value());
    CHECK_FALSE(cgroup_dir_from("0::/x\n", "- cgroup2\n1 2 3\n\n").has_value());
}

TEST_CASE("instance cgroup names: made, and checked when read back from an upgrade state") {
    CHECK(fdsup::instance_cgroup_name("web", 2, 17) == "web@2.17");
    CHECK(fdsup::is_instance_cgroup_name("web@2.17"));
    CHECK(fdsup::is_instance_cgroup_name("a.b-c_d@0.1"));
    // A damaged state must not aim cgroup.kill or rmdir anywhere else.
    for (const char* bad : {"", "web", "web@", "web@2", "web@2.", "web@.1", "@2.17", "../web@2.17", "web/x@2.17",
                            "..@", "web@2.17/..", "web@-2.17", "web@2.17x", "web@2.1.7"}) {
        CAPTURE(bad);
        CHECK_FALSE(fdsup::is_instance_cgroup_name(bad));
    }
}

// Plain directories stand in for cgroups here (no cgroup.events: nothing is killed);
// the integration test (test_kill_mode) runs it on a real cgroup tree.
TEST_CASE("stale trees: only the fdsupd-PID directories of gone processes are removed, with their instance cgroups") {
    char dir_template[] = "/tmp/fdsup-test-cgroups-XXXXXX";
    REQUIRE(mkdtemp(dir_template) != nullptr);
    const std::string base = dir_template;
    auto make = [&](const std::string& relative) { REQUIRE(::mkdir((base + "/" + relative).c_str(), 0755) == 0); };
    auto exists = [&](const std::string& relative) { return ::access((base + "/" + relative).c_str(), F_OK) == 0; };
    make("fdsupd-100");               // our own
    make("fdsupd-100/web@0.1");
    make("fdsupd-200");               // a live fdsupd's
    make("fdsupd-200/web@0.1");
    make("fdsupd-300");               // a gone one's, with two instance cgroups
    make("fdsupd-300/web@0.1");
    make("fdsupd-300/api@3.17");
    make("fdsupd-400");               // a gone one's, with something that is no cgroup of ours
    make("fdsupd-400/other");
    make("fdsupd-abc");               // not a pid
    make("system.slice");

    auto alive = [](pid_t pid) { return pid == 200; };
    auto report = fdsup::remove_stale_trees(base, 100, alive);

    CHECK(exists("fdsupd-100/web@0.1"));
    CHECK(exists("fdsupd-200/web@0.1"));
    CHECK_FALSE(exists("fdsupd-300"));
    CHECK(exists("fdsupd-400/other"));  // never removed: not an instance cgroup's name
    CHECK(exists("fdsupd-abc"));
    CHECK(exists("system.slice"));
    std::sort(report.begin(), report.end());
    REQUIRE(report.size() == 2);
    CHECK(report[0] == "cannot remove " + base + "/fdsupd-400 (pid 400 is gone): 0 cgroups: Directory not empty");
    CHECK(report[1] == "removed " + base + "/fdsupd-300 (pid 300 is gone): 2 cgroups");
    std::filesystem::remove_all(base);
}
