#include "sys/output_file.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace fdsup {

Result<UniqueFd> open_output_file(const std::string& path, mode_t mode) {
    // O_NONBLOCK: a FIFO without a reader fails at once (ENXIO) instead of blocking.
    constexpr int kFlags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK;
    open_how how{};
    how.flags = kFlags;
    how.mode = mode;
    how.resolve = RESOLVE_NO_SYMLINKS;
    UniqueFd fd(static_cast<int>(::syscall(SYS_openat2, AT_FDCWD, path.c_str(), &how, sizeof how)));
    // Before 5.6, or under a seccomp filter older than openat2 (EPERM): only the last
    // component can be checked.
    if (!fd && (errno == ENOSYS || errno == EPERM)) fd.reset(::open(path.c_str(), kFlags | O_NOFOLLOW, mode));
    if (!fd) return fail_errno("open");
    // Writes block as usual once open (the worker waits for a slow disk, not EAGAIN).
    int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) < 0) return fail_errno("fcntl");
    return fd;
}

std::string open_failure_reason(int err) {
    std::string reason = std::strerror(err);
    if (err == ELOOP) reason += " (a symlink on the path)";
    return reason;
}

}  // namespace fdsup
