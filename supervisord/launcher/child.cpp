// The only code that runs between clone(CLONE_VM|CLONE_VFORK) and execve.
//
// This child shares the supervisor's memory, and the supervisor is suspended until the
// child execs or exits. So: no allocation, no locks, no logging, no C++ objects with
// destructors, no libc calls that touch shared state. Every kernel call is made through
// syscall(2) directly: that skips glibc's multi-thread broadcasting for set*id, and the
// sanitizer interceptors (this file is built without instrumentation for that reason).
// A failure is written to plan->failure and the child exits with 127.
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "launcher/path_search.h"
#include "launcher/spawn_plan.h"
#include "sys/kernel_sigaction.h"

namespace fdsup {
namespace {

[[noreturn]] void die(const SpawnPlan& plan, ChildStage stage, int err) {
    plan.failure->stage = stage;
    plan.failure->err = err;
    syscall(SYS_exit_group, 127);
    __builtin_unreachable();
}

// execvp's search over the candidates the parent listed, as the worker's user: a
// candidate that is missing or that this user may not run is skipped; any other error
// ends the search. Nothing run: EACCES if some candidate said so (the most meaningful
// error: the program is there), else the last error. failure->candidate names the
// candidate of the error reported (or, after a successful exec, the one that runs).
[[noreturn]] void exec_searching(const SpawnPlan& plan) {
    int eacces_at = -1;
    int last_err = ENOENT;
    for (size_t i = 0; i < plan.search_candidate_count; ++i) {
        plan.failure->candidate = static_cast<int>(i);
        syscall(SYS_execve, plan.search_candidates[i], plan.argv, plan.envp);
        last_err = errno;
        if (!exec_search_goes_on(last_err)) die(plan, ChildStage::execve, last_err);
        if (last_err == EACCES && eacces_at < 0) eacces_at = static_cast<int>(i);
    }
    plan.failure->candidate = eacces_at;
    die(plan, ChildStage::execve, eacces_at >= 0 ? EACCES : last_err);
}

// The parent blocked every signal before clone. A handler inherited from libuv would
// run on memory shared with the suspended parent, so every disposition that is not the
// default goes back to it before anything can unblock them (an ignored one too: the
// program must not inherit SIG_IGN). The parent says which (sys/signal_dispositions.h):
// the few fdsupd changed, not all 64, each of which would cost a syscall here.
void reset_signal_dispositions(uint64_t signals) {
    KernelSigaction dfl{};
    dfl.handler = SIG_DFL;
    while (signals != 0) {
        int sig = __builtin_ctzll(signals) + 1;
        signals &= signals - 1;
        // glibc's internal signals (32, 33) may refuse: ignored on purpose.
        syscall(SYS_rt_sigaction, sig, &dfl, nullptr, kKernelSigsetSize);
    }
}

struct RawFdOps {
    int close_fallback_limit;
    int dup_above(int fd, int floor) {
        return static_cast<int>(syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, floor));
    }
    int dup_to(int from, int to) { return static_cast<int>(syscall(SYS_dup3, from, to, 0)); }
    int close_between(int first, int last) {
        if (syscall(SYS_close_range, first, last, 0) == 0) return 0;
        if (errno != ENOSYS && errno != EPERM) return -1;
        for (int fd = first; fd <= last; ++fd) syscall(SYS_close, fd);  // EBADF is fine
        return 0;
    }
    int close_from(int first) {
        if (syscall(SYS_close_range, first, ~0U, 0) == 0) return 0;
        if (errno != ENOSYS && errno != EPERM) return -1;
        for (int fd = first; fd < close_fallback_limit; ++fd) syscall(SYS_close, fd);
        return 0;
    }
};

// Writes `value` as decimal digits followed by NUL into `out` (room for 20 + 1).
void format_pid(long value, char* out) {
    char digits[24];
    int n = 0;
    do {
        digits[n++] = static_cast<char>('0' + value % 10);
        value /= 10;
    } while (value > 0 && n < 20);
    for (int i = 0; i < n; ++i) out[i] = digits[n - 1 - i];
    out[n] = '\0';
}

}  // namespace

int run_spawn_child(void* arg) {
    const SpawnPlan& plan = *static_cast<const SpawnPlan*>(arg);

    // First, while still root and before the fd map can reuse the fd's number: "0"
    // moves the writer itself. A write changes no fd table, so it may come before the
    // unshare below and use fds above keep_fds_below.
    if (plan.cgroup_procs_fd >= 0 && syscall(SYS_write, plan.cgroup_procs_fd, "0", 1) != 1)
        die(plan, ChildStage::cgroup, errno);
    for (size_t i = 0; i < plan.v1_procs_count; ++i)
        if (syscall(SYS_write, plan.v1_procs_fds[i], "0", 1) != 1) die(plan, ChildStage::cgroup, errno);

    // The fd table is still the supervisor's own (CLONE_FILES): before anything else
    // touches it, take a private copy of only the fds below keep_fds_below (the kernel
    // copies nothing above; see spawn_plan.h). On failure die at once: a dup or close
    // here would change the supervisor's table.
    if (plan.fd_table_shared &&
        syscall(SYS_close_range, plan.keep_fds_below, ~0U, CLOSE_RANGE_UNSHARE) < 0)
        die(plan, ChildStage::unshare_fds, errno);

    reset_signal_dispositions(plan.reset_signals);

    // Its own session and process group: kill_mode = "group" signals the whole group,
    // and a terminal's signals aimed at the supervisor do not reach workers.
    if (syscall(SYS_setsid) < 0) die(plan, ChildStage::setsid, errno);

    RawFdOps ops{plan.close_fallback_limit};
    switch (apply_fd_map(plan.fd_map, ops)) {
        case 0: break;
        case 1:
        case 2: die(plan, ChildStage::dup_fds, errno);
        default: die(plan, ChildStage::close_fds, errno);
    }

    if (plan.umask_value >= 0) syscall(SYS_umask, plan.umask_value);

    // Limits before dropping privileges: raising a hard limit needs root.
    for (size_t i = 0; i < plan.rlimit_count; ++i) {
        struct rlimit limit{plan.rlimits[i].soft, plan.rlimits[i].hard};
        if (syscall(SYS_prlimit64, 0, plan.rlimits[i].resource, &limit, nullptr) < 0)
            die(plan, ChildStage::setrlimit, errno);
    }

    // Groups, then gid, then uid: each later step removes the right to do the earlier.
    if (plan.change_ids) {
        if (syscall(SYS_setgroups, plan.group_count, plan.groups) < 0)
            die(plan, ChildStage::setgroups, errno);
        if (syscall(SYS_setresgid, plan.gid, plan.gid, plan.gid) < 0)
            die(plan, ChildStage::setresgid, errno);
        if (syscall(SYS_setresuid, plan.uid, plan.uid, plan.uid) < 0)
            die(plan, ChildStage::setresuid, errno);
        // Read back: a call that reported success without the change (a seccomp filter
        // or LSM answering 0) must not leave the worker with root's ids.
        uid_t ruid = 0, euid = 0, suid = 0;
        gid_t rgid = 0, egid = 0, sgid = 0;
        if (syscall(SYS_getresuid, &ruid, &euid, &suid) < 0 || syscall(SYS_getresgid, &rgid, &egid, &sgid) < 0)
            die(plan, ChildStage::verify_ids, errno);
        if (ruid != plan.uid || euid != plan.uid || suid != plan.uid || rgid != plan.gid || egid != plan.gid ||
            sgid != plan.gid)
            die(plan, ChildStage::verify_ids, EPERM);
        // The kernel keeps supplementary groups sorted, as the plan has them. A longer
        // list than asked for (EINVAL: it does not fit) is a mismatch too.
        long count = syscall(SYS_getgroups, plan.group_count + 1, plan.groups_readback);
        if (count < 0 && errno != EINVAL) die(plan, ChildStage::verify_ids, errno);
        if (count != static_cast<long>(plan.group_count)) die(plan, ChildStage::verify_ids, EPERM);
        for (size_t i = 0; i < plan.group_count; ++i)
            if (plan.groups_readback[i] != plan.groups[i]) die(plan, ChildStage::verify_ids, EPERM);
    }

    // After the uid change, which clears the parent-death signal.
    if (plan.pdeathsig != 0) {
        if (syscall(SYS_prctl, PR_SET_PDEATHSIG, plan.pdeathsig, 0, 0, 0) < 0)
            die(plan, ChildStage::pdeathsig, errno);
        // The supervisor died before the request took effect: nobody would supervise us.
        if (syscall(SYS_getppid) != plan.parent_pid) die(plan, ChildStage::pdeathsig, ESRCH);
    }

    // As the worker's user, so a directory it may not enter is refused like a shell would.
    if (plan.cwd != nullptr && syscall(SYS_chdir, plan.cwd) < 0) die(plan, ChildStage::chdir, errno);

    for (char* slot : plan.pid_slots)
        if (slot != nullptr) format_pid(syscall(SYS_getpid), slot);

    if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &plan.exec_sigmask, nullptr, kKernelSigsetSize) < 0)
        die(plan, ChildStage::sigmask, errno);

    if (plan.search_candidate_count > 0) exec_searching(plan);
    syscall(SYS_execve, plan.path, plan.argv, plan.envp);
    die(plan, ChildStage::execve, errno);
}

}  // namespace fdsup
