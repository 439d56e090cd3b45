#include "sys/output_file.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace fdsup {

Result<UniqueFd> open_output_file(const std::string& path) {
    // O_NONBLOCK: a FIFO without a reader fails at once (ENXIO) instead of blocking.
    constexpr int kFlags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK;
    open_how how{};
    how.flags = kFlags;
    how.mode = 0644;
    how.resolve = RESOLVE_NO_SYMLINKS;
    UniqueFd fd(static_cast<int>(::syscall(SYS_openat2, AT_FDCWD, path.c_str(), &how, sizeof how)));
    // Before 5.6, or under a seccomp filter older than openat2 (EPERM): only the last
    // component can be checked.
    if (!fd && (errno == ENOSYS || errno == EPERM)) fd.reset(::open(path.c_str(), kFlags | O_NOFOLLOW, 0644));
    if (!fd) return fail_errno("open");
    // Writes block as usual once open (the worker waits for a slow disk, not EAGAIN).
    int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) < 0) return fail_errno("fcntl");
    return fd;
}

}  // namespace fdsup
