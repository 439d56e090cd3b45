// `ready = "accepting"`: whether a process of an instance waits for connections on a
// listening socket the supervisor handed it, seen from outside through /proc, with
// nothing asked of the app. A process counts as waiting when
//   - epoll: an epoll instance it holds has the socket registered for EPOLLIN
//     (/proc/PID/fdinfo of the eventpoll fd). Node, Go, Java NIO, nginx, asyncio, libuv,
//     gevent... A registration disabled with events 0, or an EPOLLONESHOT one already
//     consumed, does not count;
//   - accept: one of its threads is blocked in accept/accept4 on it
//     (/proc/PID/task/TID/syscall);
//   - poll: a thread is blocked in poll/ppoll with it in the set for POLLIN (the pollfd
//     array read with process_vm_readv);
//   - select: a thread is blocked in select/pselect6 with it in the read set (read
//     likewise).
// Sockets are matched by inode, never by fd number: apps dup them, and a socket received
// over SCM_RIGHTS has the same inode under another number.
//
// Not seen: an accept submitted to io_uring (nothing in /proc shows it); a thread of a
// 32-bit process (its system call numbers are another table's); a process the
// supervisor may not ptrace (reading another process's syscall file and memory takes
// PTRACE_MODE_ATTACH: root, or the same user with Yama's ptrace_scope at most 1 for a
// descendant; /proc/PID/fd and fdinfo take the read mode). Such a process is skipped,
// not an error: the caller's ready timeout decides.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <span>
#include <vector>

namespace fdsup::health {

enum class AcceptHow { epoll, accept, poll, select };
// "epoll", "accept", "poll", "select"
const char* accept_how_name(AcceptHow how);

struct Acceptor {
    pid_t pid = -1;
    pid_t tid = -1;  // the thread (for accept/poll/select), or pid for epoll
    int fd = -1;     // the fd number in that process that refers to the socket
    AcceptHow how = AcceptHow::epoll;
};

// The processes to look at for an instance: `main` and its descendants, found through
// /proc/PID/task/TID/children (recursively, breadth first), at most `limit` in all.
// With `cgroup_dir_fd` >= 0 (an O_DIRECTORY fd of the instance's own cgroup): the pids in
// its cgroup.procs instead (main first if it is there), at most `limit`; if cgroup.procs
// cannot be read, the descendants as without it.
// `main` is always first of the descendants, whether it still runs or not. A kernel
// without CONFIG_PROC_CHILDREN has no children files: only `main` is found then.
std::vector<pid_t> instance_processes(pid_t main, int cgroup_dir_fd = -1, size_t limit = 256);

// The first process of `pids` seen waiting for connections on a socket whose inode
// (st_ino of the socket, as fstat on any fd of it shows) is one of `socket_inodes`;
// nullopt if none is. Never blocks, never throws; a process that vanished or that cannot
// be read is skipped. Within a process, its epoll instances are looked at first, then
// its threads.
//
// Cost: a readlink per open fd of each process (the lowest 65536 at most), a read of
// each epoll instance's fdinfo, and, only in a process that holds one of the sockets, a
// read of each thread's syscall file.
std::optional<Acceptor> find_acceptor(std::span<const pid_t> pids, std::span<const ino_t> socket_inodes);

}  // namespace fdsup::health
