#include "health/accept_watch.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdio>
#include <new>
#include <string_view>

#include "health/proc_text.h"
#include "sys/unique_fd.h"

namespace fdsup::health {
namespace {

// A process with more open fds is looked at through its lowest 65536 only (the kernel
// lists /proc/PID/fd in fd order): a listener is inherited or opened at start, among
// the first fds, and a call made every few ms must not cost a readlink per connection
// of a proxy that holds a million of them.
constexpr size_t kMaxFdsPerProcess = 65536;
// Likewise for threads: a runaway thread pool must not make each call read thousands of
// syscall files (such apps wait in epoll, seen without reading any).
constexpr size_t kMaxThreadsPerProcess = 4096;
// The largest poll set read, in entries (32 KiB), a chunk at a time.
constexpr uint64_t kMaxPollFds = 4096;
constexpr size_t kPollChunk = 256;

std::optional<int> decimal_name(const char* name) {
    int number = -1;
    std::string_view text = name;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (ec != std::errc() || end != text.data() + text.size() || number < 0) return std::nullopt;
    return number;
}

// Calls `each(number, name)` for the entries of the directory `dir_fd` that are named
// by a number (in /proc: fds, thread ids), the first `limit` of them, until `each`
// returns false. getdents64 into a buffer on the stack: no DIR to allocate every call.
template <class Each>
void for_each_number(int dir_fd, size_t limit, Each&& each) {
    alignas(dirent64) char buffer[8192];
    size_t seen = 0;
    for (;;) {
        ssize_t n = ::getdents64(dir_fd, buffer, sizeof buffer);
        if (n <= 0) return;  // the end, or the process is gone
        for (ssize_t at = 0; at < n;) {
            const auto* entry = reinterpret_cast<const dirent64*>(buffer + at);
            at += entry->d_reclen;
            auto number = decimal_name(entry->d_name);
            if (!number) continue;  // "." and ".."
            if (seen++ == limit || !each(*number, entry->d_name)) return;
        }
    }
}

UniqueFd open_dir(int dir_fd, const char* path) {
    return UniqueFd(::openat(dir_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
}

ssize_t read_retrying(int fd, char* buffer, size_t size) {
    ssize_t n;
    do n = ::read(fd, buffer, size);
    while (n < 0 && errno == EINTR);
    return n;
}

// Calls `each(line)` for the lines of the file `path` below `dir_fd` until it returns
// true, and says whether one did. A line longer than the buffer is skipped: no line of
// the files read here is anywhere near that long.
template <class Each>
bool find_line(int dir_fd, const char* path, Each&& each) {
    UniqueFd file(::openat(dir_fd, path, O_RDONLY | O_CLOEXEC));
    if (!file) return false;
    char buffer[4096];
    size_t have = 0;
    bool overlong = false;  // skipping the rest of a line that did not fit
    for (;;) {
        ssize_t n = read_retrying(file.get(), buffer + have, sizeof buffer - have);
        if (n <= 0) return n == 0 && have > 0 && !overlong && each(std::string_view(buffer, have));
        have += static_cast<size_t>(n);
        size_t start = 0;
        for (size_t end; (end = std::string_view(buffer, have).find('\n', start)) != std::string_view::npos;
             start = end + 1) {
            if (!overlong && each(std::string_view(buffer + start, end - start))) return true;
            overlong = false;
        }
        if (start == 0 && have == sizeof buffer) {
            overlong = true;
            have = 0;
        } else {
            std::copy(buffer + start, buffer + have, buffer);
            have -= start;
        }
    }
}

// Calls `each(pid)` for each pid listed in the file `path` below `dir_fd` (a children
// file, cgroup.procs) until it returns false. False if the file cannot be opened.
template <class Each>
bool read_pids(int dir_fd, const char* path, Each&& each) {
    UniqueFd file(::openat(dir_fd, path, O_RDONLY | O_CLOEXEC));
    if (!file) return false;
    PidTokens tokens;
    char buffer[4096];
    for (;;) {
        ssize_t n = read_retrying(file.get(), buffer, sizeof buffer);
        if (n < 0) return true;  // what was read so far
        if (n == 0) {
            tokens.finish(each);
            return true;
        }
        if (!tokens.feed(std::string_view(buffer, static_cast<size_t>(n)), each)) return true;
    }
}

bool is_ours(std::span<const ino_t> inodes, uint64_t inode) {
    return std::find(inodes.begin(), inodes.end(), static_cast<ino_t>(inode)) != inodes.end();
}

// What one process's fd table shows: the fds that refer to one of our sockets, and its
// epoll instances. Read once, used for all of its threads.
struct FdTable {
    std::vector<int> ours;
    std::vector<int> epolls;

    bool holds(uint64_t fd) const {
        return fd <= INT_MAX && std::find(ours.begin(), ours.end(), static_cast<int>(fd)) != ours.end();
    }
};

FdTable read_fd_table(int proc_dir, std::span<const ino_t> inodes) {
    FdTable table;
    UniqueFd fd_dir = open_dir(proc_dir, "fd");
    if (!fd_dir) return table;
    for_each_number(fd_dir.get(), kMaxFdsPerProcess, [&](int fd, const char* name) {
        // "socket:[4294967295]" and "anon_inode:[eventpoll]" fit; a longer target (a
        // path) is cut short and matches neither.
        char link[40];
        ssize_t n = ::readlinkat(fd_dir.get(), name, link, sizeof link);
        if (n <= 0 || static_cast<size_t>(n) == sizeof link) return true;
        std::string_view target(link, static_cast<size_t>(n));
        if (target == "anon_inode:[eventpoll]") {
            table.epolls.push_back(fd);
        } else if (auto inode = parse_socket_link(target); inode && is_ours(inodes, *inode)) {
            table.ours.push_back(fd);
        }
        return true;
    });
    return table;
}

// The fd (in the registering process) of a target of the epoll instance `epoll_fd` that
// is one of our sockets, registered for EPOLLIN.
std::optional<int> epoll_target(int proc_dir, int epoll_fd, std::span<const ino_t> inodes) {
    char path[32];
    std::snprintf(path, sizeof path, "fdinfo/%d", epoll_fd);
    std::optional<int> found;
    find_line(proc_dir, path, [&](std::string_view line) {
        auto target = parse_epoll_target(line);
        if (target && (target->events & EPOLLIN) && is_ours(inodes, target->inode)) found = target->fd;
        return found.has_value();
    });
    return found;
}

// The system calls a thread waits for a connection in, and how. Architectures lack
// some of these numbers (arm64 has no accept, poll or select; 32-bit ones add the time64
// variants), hence each on its own.
struct WaitCall {
    long number;
    AcceptHow how;
};
constexpr WaitCall kWaitCalls[] = {
#ifdef SYS_accept
    {SYS_accept, AcceptHow::accept},
#endif
#ifdef SYS_accept4
    {SYS_accept4, AcceptHow::accept},
#endif
#ifdef SYS_poll
    {SYS_poll, AcceptHow::poll},
#endif
#ifdef SYS_ppoll
    {SYS_ppoll, AcceptHow::poll},
#endif
#ifdef SYS_ppoll_time64
    {SYS_ppoll_time64, AcceptHow::poll},
#endif
#ifdef SYS_select
    {SYS_select, AcceptHow::select},
#endif
#ifdef SYS__newselect
    {SYS__newselect, AcceptHow::select},
#endif
#ifdef SYS_pselect6
    {SYS_pselect6, AcceptHow::select},
#endif
#ifdef SYS_pselect6_time64
    {SYS_pselect6_time64, AcceptHow::select},
#endif
};

std::optional<AcceptHow> wait_kind(long number) {
    for (const auto& call : kWaitCalls)
        if (call.number == number) return call.how;
    return std::nullopt;
}

// Copies `size` bytes at `address` in thread `tid` into `into`: how much it could.
size_t read_memory(pid_t tid, uint64_t address, void* into, size_t size) {
    iovec local{into, size};
    iovec remote{reinterpret_cast<void*>(static_cast<uintptr_t>(address)), size};
    ssize_t n = ::process_vm_readv(tid, &local, 1, &remote, 1, 0);
    return n > 0 ? static_cast<size_t>(n) : 0;
}

// poll/ppoll(fds, nfds, ...): an entry of ours asking for POLLIN.
std::optional<int> poll_waits_on(pid_t tid, uint64_t fds, uint64_t count, const FdTable& table) {
    count = std::min(count, kMaxPollFds);
    pollfd chunk[kPollChunk];
    for (uint64_t done = 0; done < count;) {
        size_t want = static_cast<size_t>(std::min<uint64_t>(count - done, kPollChunk));
        size_t got = read_memory(tid, fds + done * sizeof(pollfd), chunk, want * sizeof(pollfd)) / sizeof(pollfd);
        for (size_t i = 0; i < got; ++i)
            if ((chunk[i].events & POLLIN) && chunk[i].fd >= 0 && table.holds(static_cast<uint64_t>(chunk[i].fd)))
                return chunk[i].fd;
        if (got < want) break;
        done += got;
    }
    return std::nullopt;
}

// select/pselect6(nfds, readfds, ...): one of our fds set in the read set. An fd_set is
// an array of longs (bit fd % bits of word fd / bits, as the kernel reads it whatever
// the byte order): only the words of our fds are read, not the whole set.
std::optional<int> select_waits_on(pid_t tid, uint64_t nfds, uint64_t readfds, const FdTable& table) {
    if (readfds == 0) return std::nullopt;
    constexpr uint64_t bits = sizeof(unsigned long) * CHAR_BIT;
    for (int fd : table.ours) {
        uint64_t number = static_cast<uint64_t>(fd);
        if (number >= nfds) continue;
        unsigned long word = 0;
        if (read_memory(tid, readfds + number / bits * sizeof word, &word, sizeof word) != sizeof word) continue;
        if (word & (1UL << (number % bits))) return fd;
    }
    return std::nullopt;
}

// Thread `tid` of process `pid`, if it is blocked waiting on one of our fds.
std::optional<Acceptor> thread_waiting(pid_t pid, int task_dir, pid_t tid, const FdTable& table) {
    char path[32];
    std::snprintf(path, sizeof path, "%d/syscall", tid);
    std::optional<SyscallLine> call;
    find_line(task_dir, path, [&](std::string_view line) {
        call = parse_syscall_line(line);
        return true;
    });
    if (!call) return std::nullopt;
    auto how = wait_kind(call->number);
    if (!how) return std::nullopt;
    const auto& args = call->args;
    std::optional<int> fd;
    switch (*how) {
        case AcceptHow::accept:
            if (table.holds(args[0])) fd = static_cast<int>(args[0]);
            break;
        case AcceptHow::poll: fd = poll_waits_on(tid, args[0], args[1], table); break;
        case AcceptHow::select: fd = select_waits_on(tid, args[0], args[1], table); break;
        case AcceptHow::epoll: break;  // seen through fdinfo, not here
    }
    if (!fd) return std::nullopt;
    return Acceptor{pid, tid, *fd, *how};
}

std::optional<Acceptor> process_waiting(pid_t pid, std::span<const ino_t> inodes) {
    if (pid <= 0) return std::nullopt;
    char path[32];
    std::snprintf(path, sizeof path, "/proc/%d", pid);
    // Its /proc files are read relative to this: if the process exits and the pid is
    // reused meanwhile, they fail (ESRCH) instead of showing the new process. (Only
    // process_vm_readv names a thread by number, right after its syscall file showed it
    // blocked.)
    UniqueFd proc = open_dir(AT_FDCWD, path);
    if (!proc) return std::nullopt;
    FdTable table = read_fd_table(proc.get(), inodes);
    // An epoll registration outlives the fd it was made with while the socket stays
    // open elsewhere (the supervisor holds it): looked for even without an fd of ours.
    for (int epoll_fd : table.epolls)
        if (auto fd = epoll_target(proc.get(), epoll_fd, inodes)) return Acceptor{pid, pid, *fd, AcceptHow::epoll};
    // No thread can be blocked on an fd it does not have.
    if (table.ours.empty()) return std::nullopt;
    UniqueFd tasks = open_dir(proc.get(), "task");
    if (!tasks) return std::nullopt;
    std::optional<Acceptor> found;
    for_each_number(tasks.get(), kMaxThreadsPerProcess, [&](int tid, const char*) {
        found = thread_waiting(pid, tasks.get(), tid, table);
        return !found;
    });
    return found;
}

// The pids in the cgroup's cgroup.procs: `main` first if it is there (looked for to the
// end of the file), then the others in the kernel's order, `limit` in all. False if the
// file cannot be opened.
bool cgroup_processes(int cgroup_dir_fd, pid_t main, size_t limit, std::vector<pid_t>& pids) {
    bool main_seen = false;
    bool opened = read_pids(cgroup_dir_fd, "cgroup.procs", [&](pid_t pid) {
        if (pid == main)
            main_seen = true;
        else if (pids.size() < limit)
            pids.push_back(pid);
        return !main_seen || pids.size() + 1 < limit;  // else enough: main and limit - 1 others
    });
    if (!opened) return false;
    if (main_seen) {
        pids.insert(pids.begin(), main);
        if (pids.size() > limit) pids.pop_back();
    }
    return true;
}

}  // namespace

const char* accept_how_name(AcceptHow how) {
    switch (how) {
        case AcceptHow::epoll: return "epoll";
        case AcceptHow::accept: return "accept";
        case AcceptHow::poll: return "poll";
        case AcceptHow::select: return "select";
    }
    return "?";
}

std::vector<pid_t> instance_processes(pid_t main, int cgroup_dir_fd, size_t limit) {
    std::vector<pid_t> pids;
    if (limit == 0) return pids;
    if (cgroup_dir_fd >= 0 && cgroup_processes(cgroup_dir_fd, main, limit, pids)) return pids;
    pids.push_back(main);
    // A pid reused while the tree is walked could show up twice: each is taken once.
    auto add = [&](pid_t pid) {
        if (std::find(pids.begin(), pids.end(), pid) == pids.end()) pids.push_back(pid);
        return pids.size() < limit;
    };
    for (size_t next = 0; next < pids.size() && pids.size() < limit; ++next) {
        char path[32];
        std::snprintf(path, sizeof path, "/proc/%d/task", pids[next]);
        UniqueFd tasks = open_dir(AT_FDCWD, path);
        if (!tasks) continue;
        // A child is listed under the thread that forked it.
        for_each_number(tasks.get(), kMaxThreadsPerProcess, [&](int tid, const char*) {
            char children[32];
            std::snprintf(children, sizeof children, "%d/children", tid);
            read_pids(tasks.get(), children, add);
            return pids.size() < limit;
        });
    }
    return pids;
}

std::optional<Acceptor> find_acceptor(std::span<const pid_t> pids, std::span<const ino_t> socket_inodes) {
    if (socket_inodes.empty()) return std::nullopt;
    try {
        for (pid_t pid : pids)
            if (auto found = process_waiting(pid, socket_inodes)) return found;
    } catch (const std::bad_alloc&) {
        // Out of memory for a few small vectors: not seen this time.
    }
    return std::nullopt;
}

}  // namespace fdsup::health
