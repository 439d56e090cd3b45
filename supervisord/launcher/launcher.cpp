#include "launcher/launcher.h"

#include <sched.h>
#include <signal.h>
#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "sys/process.h"

namespace fdsup {

const char* child_stage_name(ChildStage stage) {
    switch (stage) {
        case ChildStage::none: return "none";
        case ChildStage::reset_signals: return "reset signals";
        case ChildStage::setsid: return "setsid";
        case ChildStage::dup_fds: return "dup fds";
        case ChildStage::close_fds: return "close fds";
        case ChildStage::setrlimit: return "setrlimit";
        case ChildStage::setgroups: return "setgroups";
        case ChildStage::setresgid: return "setresgid";
        case ChildStage::setresuid: return "setresuid";
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

    // Block everything: a libuv handler running in the child, on memory shared with the
    // parent, would corrupt it. The child resets dispositions, then sets exec_sigmask.
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);

    int pidfd = -1;
    char* stack_top = static_cast<char*>(stack_) + stack_size_;
    pid_t pid = clone(run_spawn_child, stack_top, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD,
                      &plan, &pidfd);
    int clone_errno = errno;
    pthread_sigmask(SIG_SETMASK, &saved, nullptr);
    plan.failure = nullptr;

    if (pid < 0) return fail(std::string("exec ") + plan.path + ": clone", clone_errno);

    LaunchedProcess process{pid, UniqueFd(pidfd)};
    if (failure.stage != ChildStage::none) {
        // The child has written its report and is in _exit: reap it now so it never
        // lingers as a zombie.
        (void)pidfd_reap(process.pidfd.get());
        return fail(std::string("exec ") + plan.path + ": " + std::strerror(failure.err) +
                    " (stage: " + child_stage_name(failure.stage) + ")");
    }
    return process;
}

}  // namespace fdsup
