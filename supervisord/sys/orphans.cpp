#include "sys/orphans.h"

#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

namespace fdsup {

std::vector<std::pair<pid_t, ExitStatus>> reap_orphans(const std::function<bool(pid_t)>& ours) {
    std::vector<std::pair<pid_t, ExitStatus>> reaped;
    // fdsupd has one thread: its children are that thread's.
    std::ifstream children("/proc/self/task/" + std::to_string(::getpid()) + "/children");
    pid_t pid = 0;
    while (children >> pid) {
        if (ours(pid)) continue;
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) != pid) continue;  // still running (or gone)
        reaped.emplace_back(pid, WIFSIGNALED(status) ? ExitStatus{true, 0, WTERMSIG(status)}
                                                     : ExitStatus{false, WEXITSTATUS(status), 0});
    }
    return reaped;
}

}  // namespace fdsup
