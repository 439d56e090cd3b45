#include "sys/orphans.h"

#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

namespace fdsup {

std::vector<std::pair<pid_t, ExitStatus>> reap_orphans(const std::function<bool(pid_t)>& ours) {
    std::vector<std::pair<pid_t, ExitStatus>> reaped;
    // The loop's thread forks every worker: its children are fdsupd's. (thread-self, not
    // a pid: /proc may be another PID namespace's, where our pid means someone else.)
    std::ifstream children("/proc/thread-self/children");
    if (!children) {
        static bool warned = false;
        if (!warned) spdlog::error("cannot read /proc/thread-self/children: orphans are not reaped");
        warned = true;
        return reaped;
    }
    pid_t pid = 0;
    while (children >> pid) {
        if (ours(pid)) continue;
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) != pid) continue;  // still running (or gone)
        reaped.emplace_back(pid, WIFSIGNALED(status) ? ExitStatus{true, 0, WTERMSIG(status), false, {}}
                                                     : ExitStatus{false, WEXITSTATUS(status), 0, false, {}});
    }
    return reaped;
}

}  // namespace fdsup
