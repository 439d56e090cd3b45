#include "upgrade/reexec.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

extern char** environ;

namespace fdsup::upgrade {

Result<void> exec_in_place(const ExecRequest& request) {
    std::vector<char*> argv;
    for (const auto& arg : request.argv) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);

    for (int fd : request.keep) ::fcntl(fd, F_SETFD, 0);
    if (request.image_fd >= 0)
        ::syscall(SYS_execveat, request.image_fd, "", argv.data(), environ, AT_EMPTY_PATH);
    else
        ::execve(request.path.c_str(), argv.data(), environ);
    int err = errno;
    for (int fd : request.keep) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    errno = err;
    return fail_errno("exec " + (request.image_fd >= 0 ? "the previous image" : request.path));
}

void make_inherited_fds_cloexec(const std::vector<int>& kept) {
    if (::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return;
    for (int fd : kept) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
}

}  // namespace fdsup::upgrade
