// The /proc texts accept_watch.h reads, parsed: pure functions, for the tests. Each takes
// what the kernel wrote and answers nothing (nullopt) for anything it does not
// recognise, never a guess: the caller then just does not see a waiting process.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace fdsup::health {

// One target of an epoll instance, a line of its /proc/PID/fdinfo/N:
//   "tfd:        3 events:       19 data:                3  pos:0 ino:2d4b sdev:8"
// tfd is decimal; events, data and ino are hex. Kernels have written it with more or
// less padding and without sdev; a kernel that writes no ino (before 3.8) gives nothing.
struct EpollTarget {
    int fd = -1;          // the fd number the registering process used
    uint32_t events = 0;  // the registered mask: 0x18 (HUP|ERR, always added) when disabled
    uint64_t inode = 0;
    bool operator==(const EpollTarget&) const = default;
};
std::optional<EpollTarget> parse_epoll_target(std::string_view line);

// /proc/PID/task/TID/syscall of a thread blocked in a system call:
//   "43 0x3 0x0 0x0 0x80800 0x0 0x0 0x7ffd3c5a1f28 0x7f51e0b1e8f7"
// (the number in decimal, then six arguments, the stack and program counters in hex).
// Nothing for "running", for "-1 SP PC" (not in a system call) and for anything else.
struct SyscallLine {
    long number = -1;
    std::array<uint64_t, 6> args{};
};
std::optional<SyscallLine> parse_syscall_line(std::string_view text);

// The inode of "socket:[12345]" (a readlink of /proc/PID/fd/N; decimal).
std::optional<ino_t> parse_socket_link(std::string_view link);

// Whitespace-separated decimal pids, as /proc/PID/task/TID/children ("12 34 ") and
// cgroup.procs ("12\n34\n") list them, fed in the pieces read() returns: a number split
// between two pieces is put together. `each(pid)` returns false to stop; a token that is
// not a pid (not digits, 0, too large) is skipped.
class PidTokens {
public:
    // False once `each` asked to stop.
    template <class Each>
    bool feed(std::string_view piece, Each&& each) {
        for (char c : piece) {
            if (c >= '0' && c <= '9') {
                if (value_ <= kMaxPid) value_ = value_ * 10 + static_cast<uint64_t>(c - '0');
                digits_ = true;
            } else if (c == ' ' || c == '\n' || c == '\t') {
                if (!end_token(each)) return false;
            } else {
                bad_ = true;
            }
        }
        return true;
    }
    // The last token, when the text does not end with a separator.
    template <class Each>
    bool finish(Each&& each) {
        return end_token(each);
    }

private:
    static constexpr uint64_t kMaxPid = 4194304;  // PID_MAX_LIMIT

    template <class Each>
    bool end_token(Each& each) {
        bool ok = digits_ && !bad_ && value_ > 0 && value_ <= kMaxPid;
        pid_t pid = static_cast<pid_t>(value_);
        value_ = 0;
        digits_ = bad_ = false;
        return !ok || each(pid);
    }

    uint64_t value_ = 0;
    bool digits_ = false;
    bool bad_ = false;
};

}  // namespace fdsup::health
