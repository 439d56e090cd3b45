// The exec of an in-place upgrade (and of its rollback): same process, same pid, so the
// workers stay our children and a service manager's MainPID stays right.
#pragma once

#include <string>
#include <vector>

#include "sys/result.h"

namespace fdsup::upgrade {

struct ExecRequest {
    std::string path;                // the binary to exec, or...
    int image_fd = -1;               // ...an O_PATH fd of it (execveat; for the rollback)
    std::vector<std::string> argv;
    std::vector<int> keep;           // fds the next image adopts: FD_CLOEXEC cleared
};

// Clears FD_CLOEXEC on `keep` and execs with the current environment. The caller has
// every signal blocked (the next image unblocks them once its handlers are in place,
// so none is lost or acted on by default meanwhile). Returns only if the exec failed,
// with every fd of `keep` close-on-exec again.
Result<void> exec_in_place(const ExecRequest& request);

// The next image's first step: every fd it inherited becomes close-on-exec again, as
// all of fdsupd's fds are. One close_range call for all of them (Linux 5.11), else one
// fcntl per fd of `kept` (the state's list).
void make_inherited_fds_cloexec(const std::vector<int>& kept);

}  // namespace fdsup::upgrade
