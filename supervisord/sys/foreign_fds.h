// Reaching into another process: its fds (pidfd_getfd, Linux 5.6) and who owns it.
// Used to take over a listening socket a running server bound itself (sockets/take_over.h).
#pragma once

#include <sys/types.h>

#include <array>
#include <vector>

#include "sys/result.h"
#include "sys/unique_fd.h"

namespace fdsup {

// pidfd_open(pid, 0). ESRCH: no such process.
Result<UniqueFd> open_pidfd(pid_t pid);

// pidfd_getfd(pidfd, fd, 0): a duplicate of the process's `fd` in this process,
// close-on-exec (the kernel sets it). It needs PTRACE_MODE_ATTACH_REALCREDS over the
// process (EPERM otherwise: another uid without CAP_SYS_PTRACE, or Yama's ptrace_scope);
// EBADF: the process has no such fd.
Result<UniqueFd> copy_fd_of(int pidfd, int fd);

// The fds of `pid` that are sockets: the /proc/PID/fd entries whose link reads
// "socket:[INODE]", in increasing order. Racy by nature (the process goes on); the
// caller checks what it takes.
Result<std::vector<int>> socket_fds_of(pid_t pid);

// The real, effective and saved uids of `pid` (/proc/PID/status "Uid:").
Result<std::array<uid_t, 3>> process_uids(pid_t pid);
// What ptrace's access check looks at besides the uids (/proc/PID/status): the real,
// effective and saved gids, the permitted capabilities, and whether it is dumpable
// (a process that is not has its /proc/PID owned by root).
struct PtraceFacts {
    std::array<gid_t, 3> gids{};
    uint64_t permitted_caps = 0;
    uid_t proc_owner = 0;
};
Result<PtraceFacts> ptrace_facts(pid_t pid);

}  // namespace fdsup
