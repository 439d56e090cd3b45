// clone3(2) with a function to run in the child, as glibc's clone(3) has for clone(2):
// glibc 2.36 does not export one, and a raw syscall cannot switch the child to its own
// stack (it would return into the parent's frame on a stack with nothing in it).
// Needed for CLONE_INTO_CGROUP, which only clone3 has.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fdsup {

// struct clone_args up to `cgroup` (CLONE_ARGS_SIZE_VER2), as <linux/sched.h> has it;
// spelled out because that header clashes with glibc's <sched.h>.
struct Clone3Args {
    uint64_t flags;
    uint64_t pidfd;        // int* receiving the pidfd (CLONE_PIDFD)
    uint64_t child_tid;
    uint64_t parent_tid;
    uint64_t exit_signal;
    uint64_t stack;        // lowest address of the child's stack
    uint64_t stack_size;
    uint64_t tls;
    uint64_t set_tid;
    uint64_t set_tid_size;
    uint64_t cgroup;       // fd of the cgroup directory (CLONE_INTO_CGROUP)
};
static_assert(sizeof(Clone3Args) == 88, "CLONE_ARGS_SIZE_VER2");

inline constexpr uint64_t kCloneIntoCgroup = 0x200000000ULL;  // CLONE_INTO_CGROUP (Linux 5.7)

// Runs clone3(args) and, in the child, fn(arg) on the new stack, then exit(2) with its
// result. Returns the child's pid to the parent, or -errno (errno is not set). Where
// this architecture has no implementation (only x86_64 has one) it returns -ENOSYS, as
// an old kernel or a seccomp filter would, and the caller falls back to clone(2).
long clone3_run(Clone3Args* args, int (*fn)(void*), void* arg);

}  // namespace fdsup
