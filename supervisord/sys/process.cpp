#include "sys/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <string_view>

#include "sys/unique_fd.h"
#include "sys/signal_names.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace fdsup {

std::string ExitStatus::describe() const {
    if (oom_kill) return "killed by the OOM killer" + (oom_limit.empty() ? "" : " (" + oom_limit + ")");
    if (signaled) return "killed by signal " + signal_name(signal);
    return "exited with code " + std::to_string(code);
}

Result<void> pidfd_signal(int pidfd, int signal) {
    if (syscall(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0) < 0)
        return fail_errno("pidfd_send_signal " + signal_name(signal));
    return {};
}

namespace {

Result<std::optional<ExitStatus>> wait_pidfd(int pidfd, int options) {
    siginfo_t info{};
    int rc;
    do {
        rc = waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, WEXITED | options);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) return fail_errno("waitid");
    if (info.si_pid == 0) return std::optional<ExitStatus>{};  // WNOHANG: still running
    ExitStatus status;
    if (info.si_code == CLD_EXITED) {
        status.code = info.si_status;
    } else {
        status.signaled = true;
        status.signal = info.si_status;
    }
    return std::optional<ExitStatus>{status};
}

}  // namespace

Result<std::optional<ExitStatus>> pidfd_try_reap(int pidfd) { return wait_pidfd(pidfd, WNOHANG); }

Result<bool> pidfd_has_exited(int pidfd) {
    auto status = wait_pidfd(pidfd, WNOHANG | WNOWAIT);
    if (!status) return std::unexpected(status.error());
    return status->has_value();
}

Result<ExitStatus> pidfd_reap(int pidfd) {
    auto status = wait_pidfd(pidfd, 0);
    if (!status) return std::unexpected(status.error());
    return **status;
}

}  // namespace fdsup

namespace fdsup {

Result<pid_t> parent_pid_of(pid_t pid) {
    std::string path = "/proc/" + std::to_string(pid) + "/stat";
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_errno("open " + path);
    char buffer[1024];
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer - 1);
    if (n <= 0) return fail_errno("read " + path);
    std::string_view stat(buffer, static_cast<size_t>(n));
    // "PID (COMM) STATE PPID ...": COMM may hold spaces and ')', so look for the last ')'.
    size_t close = stat.rfind(')');
    if (close == std::string_view::npos || close + 4 >= stat.size()) return fail("parse " + path);
    std::string_view rest = stat.substr(close + 4);  // past ") S "
    pid_t parent = 0;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), parent);
    if (ec != std::errc()) return fail("parse " + path);
    return parent;
}

}  // namespace fdsup

namespace fdsup {

bool pidfd_exited(int pidfd) {
    pollfd p{pidfd, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0 && (p.revents & POLLIN) != 0;
}

}  // namespace fdsup
