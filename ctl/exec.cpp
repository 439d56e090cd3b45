#include "ctl/exec.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "fdsup_fds.h"

namespace fdsup::ctl {

int exec_with_sockets(const ExecPlan& plan, void (*sigpipe)(int)) {
    std::vector<const char*> names;
    for (const auto& [fd, name] : plan.fds) names.push_back(name.c_str());
    std::vector<int> fetched(names.size(), -1);
    char why[512];
    if (fdsup_get_fds_at(plan.fd_socket.c_str(), names.data(), names.size(), fetched.data(), why, sizeof why) < 0) {
        std::fprintf(stderr, "fdsupctl: cannot get the sockets from %s: %s\n", plan.fd_socket.c_str(), why);
        return 1;
    }

    // First every fetched fd above the highest target, then each into place: a fetched
    // fd that sits on another's target number is never overwritten before it moved.
    int highest = 2;
    for (const auto& [fd, name] : plan.fds) highest = std::max(highest, fd);

    // Errors after this point go to a private copy of stderr, above every target:
    // `--fd 2=...` replaces fd 2, and a target may be the lowest free number.
    int err = ::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, highest + 1);
    auto complain = [err](const std::string& message) {
        if (err >= 0) (void)!::write(err, message.data(), message.size());
    };
    for (int& fd : fetched) {
        int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, highest + 1);
        if (moved < 0) {
            complain(std::string("fdsupctl: exec: cannot move an fd: ") + std::strerror(errno) + "\n");
            return 1;
        }
        ::close(fd);
        fd = moved;
    }
    for (size_t i = 0; i < fetched.size(); ++i) {
        if (::dup2(fetched[i], plan.fds[i].first) < 0) {  // the copy at the target is inheritable
            complain("fdsupctl: exec: cannot put a socket at fd " + std::to_string(plan.fds[i].first) + ": " +
                     std::strerror(errno) + "\n");
            return 1;
        }
        ::close(fetched[i]);
    }

    // systemd's protocol when the sockets are exactly 3..3+n-1, as fdsupd does for workers.
    auto by_number = plan.fds;
    std::sort(by_number.begin(), by_number.end());
    bool contiguous = true;
    std::string fdnames;
    for (size_t i = 0; i < by_number.size(); ++i) {
        contiguous &= by_number[i].first == static_cast<int>(3 + i);
        fdnames += (i == 0 ? "" : ":") + by_number[i].second;
    }
    if (contiguous) {
        ::setenv("LISTEN_FDS", std::to_string(by_number.size()).c_str(), 1);
        ::setenv("LISTEN_FDNAMES", fdnames.c_str(), 1);
        ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);  // exec keeps the pid
    } else {
        ::unsetenv("LISTEN_FDS");
        ::unsetenv("LISTEN_FDNAMES");
        ::unsetenv("LISTEN_PID");
    }

    std::vector<char*> argv;
    for (const auto& arg : plan.argv) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    ::signal(SIGPIPE, sigpipe);  // fdsupctl ignores it; the command gets what we were given
    ::execvp(argv[0], argv.data());
    complain(std::string("fdsupctl: exec ") + argv[0] + ": " + std::strerror(errno) + "\n");
    return 1;
}

}  // namespace fdsup::ctl
