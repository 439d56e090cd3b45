#include "launcher/launcher.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "launcher/clone_into_cgroup.h"
#include "launcher/spawn_error.h"
#include "sys/high_fd.h"
#include "sys/process.h"
#include "sys/signal_dispositions.h"

namespace fdsup {

const char* child_stage_name(ChildStage stage) {
    switch (stage) {
        case ChildStage::none: return "none";
        case ChildStage::cgroup: return "join cgroup";
        case ChildStage::unshare_fds: return "unshare fd table";
        case ChildStage::reset_signals: return "reset signals";
        case ChildStage::setsid: return "setsid";
        case ChildStage::dup_fds: return "dup fds";
        case ChildStage::close_fds: return "close fds";
        case ChildStage::setrlimit: return "setrlimit";
        case ChildStage::setgroups: return "setgroups";
        case ChildStage::setresgid: return "setresgid";
        case ChildStage::setresuid: return "setresuid";
        case ChildStage::verify_ids: return "verify ids";
        case ChildStage::pdeathsig: return "pdeathsig";
        case ChildStage::chdir: return "chdir";
        case ChildStage::sigmask: return "sigmask";
        case ChildStage::execve: return "execve";
    }
    return "unknown";
}

Launcher::Launcher() {
    // 256 KiB with a guard page below it: the child uses a few hundred bytes, but a
    // libc call that needs more must fault rather than write into someone's heap.
    stack_size_ = 256 * 1024;
    const size_t guard = 4096;
    void* mem = mmap(nullptr, stack_size_ + guard, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (mem == MAP_FAILED) {
        std::perror("fdsupd: mmap launcher stack");
        std::abort();
    }
    // Without the guard the launcher still works; it only loses the overflow check.
    if (mprotect(mem, guard, PROT_NONE) != 0) std::perror("fdsupd: launcher stack guard page");
    stack_ = mem;
    stack_size_ += guard;
}

Launcher::~Launcher() { munmap(stack_, stack_size_); }

Result<LaunchedProcess> Launcher::launch(SpawnPlan& plan) {
    ChildFailure failure;
    plan.failure = &failure;
    bool into_cgroup = plan.cgroup_fd >= 0;

    // kill_mode = "cgroup" without clone3: the child joins by writing to cgroup.procs.
    UniqueFd cgroup_procs;
    if (into_cgroup && !clone3_works_) {
        cgroup_procs.reset(::openat(plan.cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC));
        if (!cgroup_procs) return fail_errno(std::string("exec ") + plan.path + ": open the cgroup's cgroup.procs");
    }
    plan.cgroup_procs_fd = cgroup_procs.get();

    // Block everything: a libuv handler running in the child, on memory shared with the
    // parent, would corrupt it. The child resets dispositions, then sets exec_sigmask.
    plan.reset_signals = non_default_signals();
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);

    // The child shares the fd table until its close_range(CLOSE_RANGE_UNSHARE): safe,
    // as this thread is suspended until the child execs or exits (spawn_plan.h).
    plan.fd_table_shared = fd_table_unshare_works_;
    const unsigned long share_files = plan.fd_table_shared ? CLONE_FILES : 0;

    int pidfd = -1;
    pid_t pid;
    int clone_errno = 0;
    if (into_cgroup && clone3_works_) {
        // Straight into the cgroup: the process is never anywhere else, so nothing it
        // forks can start outside it.
        Clone3Args args{};
        args.flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD | kCloneIntoCgroup | share_files;
        args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
        args.exit_signal = SIGCHLD;
        args.stack = reinterpret_cast<uint64_t>(stack_);
        args.stack_size = stack_size_;
        args.cgroup = static_cast<uint64_t>(plan.cgroup_fd);
        long result = clone3_run(&args, run_spawn_child, &plan);
        pid = result < 0 ? -1 : static_cast<pid_t>(result);
        clone_errno = result < 0 ? static_cast<int>(-result) : 0;
    } else {
        char* stack_top = static_cast<char*>(stack_) + stack_size_;
        pid = clone(run_spawn_child, stack_top, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | share_files | SIGCHLD, &plan,
                    &pidfd);
        clone_errno = errno;
    }
    pthread_sigmask(SIG_SETMASK, &saved, nullptr);
    plan.failure = nullptr;
    plan.cgroup_procs_fd = -1;

    // ENOSYS: a kernel before 5.3, a seccomp filter that hides clone3 (so that libc
    // falls back to clone), or an architecture without clone3_run. EPERM: an older
    // seccomp profile that refuses it (CLONE_INTO_CGROUP's own refusals are EACCES and
    // ENOENT; should it not be a filter, the child's own write then says why). E2BIG:
    // a kernel before 5.7, whose clone3 has no cgroup field. From now on the child
    // joins its cgroup itself.
    if (pid < 0 && into_cgroup && clone3_works_ &&
        (clone_errno == ENOSYS || clone_errno == EPERM || clone_errno == E2BIG)) {
        clone3_works_ = false;
        clone3_errno_ = clone_errno;
        return launch(plan);
    }
    if (pid < 0) return fail(std::string("exec ") + plan.path + (into_cgroup && clone3_works_ ? ": clone3" : ": clone"), clone_errno);

    LaunchedProcess process{pid, UniqueFd(pidfd)};
    if (failure.stage != ChildStage::none) {
        // The child has written its report and is in _exit: reap it now so it never
        // lingers as a zombie.
        (void)pidfd_reap(process.pidfd.get());
        // CLOSE_RANGE_UNSHARE is refused: EINVAL before 5.9, ENOSYS before 5.9's
        // close_range, EPERM from a seccomp filter. The child died before changing
        // anything; from now on it gets its own copy of the table at clone instead.
        if (failure.stage == ChildStage::unshare_fds &&
            (failure.err == EINVAL || failure.err == ENOSYS || failure.err == EPERM)) {
            fd_table_unshare_works_ = false;
            fd_table_unshare_errno_ = failure.err;
            return launch(plan);
        }
        Error error{describe_child_failure(plan, failure), 0};
        error.permanent = is_permanent_child_failure(failure.stage, failure.err);
        return std::unexpected(std::move(error));
    }
    // Long-lived: kept high so the fds a later spawn opens stay low (keep_fds_below).
    move_fd_high(process.pidfd);
    return process;
}

}  // namespace fdsup
