// The pure parts of spawning a worker: execvp's PATH search as the launcher splits it
// (candidates listed by the parent, skip rules applied by the child), the message of a
// failed spawn, and which failures retrying cannot mend.
#include <doctest/doctest.h>

#include <cerrno>
#include <string>
#include <vector>

#include "launcher/path_search.h"
#include "launcher/spawn_error.h"

using fdsup::ChildFailure;
using fdsup::ChildStage;
using fdsup::SpawnPlan;

namespace {
using Strings = std::vector<std::string>;
}

TEST_CASE("PATH search: one candidate per entry in order, an empty entry is the working directory") {
    CHECK(fdsup::exec_candidates("app", "/usr/bin:/bin") == Strings{"/usr/bin/app", "/bin/app"});
    CHECK(fdsup::exec_candidates("app", "/opt/bin/") == Strings{"/opt/bin/app"});
    CHECK(fdsup::exec_candidates("app", "") == Strings{"./app"});
    CHECK(fdsup::exec_candidates("app", ":/bin") == Strings{"./app", "/bin/app"});
    CHECK(fdsup::exec_candidates("app", "/bin:") == Strings{"/bin/app", "./app"});
    CHECK(fdsup::exec_candidates("app", "/a::/b") == Strings{"/a/app", "./app", "/b/app"});
    CHECK(fdsup::exec_candidates("app", "rel/dir:/a:/a") == Strings{"rel/dir/app", "/a/app", "/a/app"});
}

TEST_CASE("PATH search: the worker's PATH, the last one if set twice, else systemd's default") {
    auto search_path_of = [](std::vector<std::string> env) {
        std::vector<char*> envp;
        for (auto& entry : env) envp.push_back(entry.data());
        return fdsup::search_path_in_envp(envp);
    };
    CHECK(search_path_of({"HOME=/root", "PATH=/x:/y"}) == "/x:/y");
    CHECK(search_path_of({"PATH=/first", "PATH=/second"}) == "/second");
    CHECK(search_path_of({"PATH="}) == "");  // set but empty: the working directory, as execvp
    CHECK(search_path_of({"MYPATH=/no", "HOME=/root"}) ==
          "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    CHECK(fdsup::is_bare_command("python3"));
    CHECK_FALSE(fdsup::is_bare_command("./python3"));
    CHECK_FALSE(fdsup::is_bare_command("/usr/bin/python3"));
}

TEST_CASE("PATH search: go on past a missing or forbidden candidate, stop at any other error") {
    for (int err : {ENOENT, ENOTDIR, EACCES, ESTALE, ENODEV, ETIMEDOUT}) CHECK(fdsup::exec_search_goes_on(err));
    for (int err : {ENOEXEC, ELOOP, EISDIR, E2BIG, EAGAIN, ENOMEM, ETXTBSY, EPERM, ENAMETOOLONG})
        CHECK_FALSE(fdsup::exec_search_goes_on(err));
}

TEST_CASE("failure message: the command as configured, the stage, for a search the candidate and PATH") {
    const char* candidates[] = {"/root/bin/python3", "/usr/bin/python3"};
    SpawnPlan plan{};
    plan.path = "python3";
    plan.search_candidates = candidates;
    plan.search_candidate_count = 2;
    plan.search_path = "/root/bin:/usr/bin";

    CHECK(fdsup::describe_child_failure(plan, ChildFailure{ChildStage::execve, EACCES, 0}) ==
          "exec python3: Permission denied (stage: execve; /root/bin/python3; searched PATH=/root/bin:/usr/bin)");
    CHECK(fdsup::describe_child_failure(plan, ChildFailure{ChildStage::execve, ENOEXEC, 1}) ==
          "exec python3: Exec format error (stage: execve; /usr/bin/python3; searched PATH=/root/bin:/usr/bin)");
    CHECK(fdsup::describe_child_failure(plan, ChildFailure{ChildStage::execve, ENOENT, -1}) ==
          "exec python3: No such file or directory (stage: execve; searched PATH=/root/bin:/usr/bin)");
    // Failed before the search began: nothing was tried.
    CHECK(fdsup::describe_child_failure(plan, ChildFailure{ChildStage::chdir, ENOENT, -1}) ==
          "exec python3: No such file or directory (stage: chdir)");

    SpawnPlan absolute{};
    absolute.path = "/usr/bin/x";
    CHECK(fdsup::describe_child_failure(absolute, ChildFailure{ChildStage::execve, ENOENT, -1}) ==
          "exec /usr/bin/x: No such file or directory (stage: execve)");
}

TEST_CASE("permanent failures: a program that cannot be run, transient: resources that may come back") {
    for (int err : {ENOENT, EACCES, ENOEXEC, ENOTDIR, ELOOP, EISDIR, ENAMETOOLONG, EPERM, E2BIG})
        CHECK(fdsup::is_permanent_child_failure(ChildStage::execve, err));
    for (int err : {EAGAIN, ENOMEM, EMFILE, ENFILE, ETXTBSY, EIO, EINTR})
        CHECK_FALSE(fdsup::is_permanent_child_failure(ChildStage::execve, err));
    for (int err : {ENOENT, EACCES, ENOTDIR}) CHECK(fdsup::is_permanent_child_failure(ChildStage::chdir, err));
    CHECK_FALSE(fdsup::is_permanent_child_failure(ChildStage::chdir, EIO));
    CHECK(fdsup::is_permanent_child_failure(ChildStage::setresuid, EPERM));
    CHECK(fdsup::is_permanent_child_failure(ChildStage::setgroups, EINVAL));
    CHECK_FALSE(fdsup::is_permanent_child_failure(ChildStage::setresuid, EAGAIN));
    CHECK(fdsup::is_permanent_child_failure(ChildStage::verify_ids, EPERM));
    CHECK(fdsup::is_permanent_child_failure(ChildStage::setrlimit, EPERM));
    for (auto stage : {ChildStage::dup_fds, ChildStage::close_fds, ChildStage::cgroup, ChildStage::setsid,
                       ChildStage::pdeathsig, ChildStage::sigmask})
        CHECK_FALSE(fdsup::is_permanent_child_failure(stage, EMFILE));
}
