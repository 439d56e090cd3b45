// Who may fetch which listening socket over the fd socket (SPEC "fd socket").
#include <unistd.h>

#include <algorithm>

#include "supervisor/supervisor.h"

namespace fdsup {

Result<fdserver::FdAccess> Supervisor::fd_access(pid_t pid, uid_t uid) const {
    ProcessOwner owner = owner_of(pid);
    if (owner.instance != nullptr) {
        // A worker (or a process still in its tree) is held to its own sockets even as
        // root: one worker must not take another's listening socket by accident. A
        // helper that daemonised out of the tree is judged by its uid instead.
        const auto& cfg = owner.instance->worker->config;
        fdserver::FdAccess access;
        access.who = owner.instance->label() + (owner.main ? "" : " descendant") + " (pid " + std::to_string(pid) + ")";
        for (const auto& [fd, name] : cfg.fds) access.names.push_back(name);
        access.names.insert(access.names.end(), cfg.scm_rights.begin(), cfg.scm_rights.end());
        return access;
    }
    if (uid == 0 || uid == ::geteuid())
        return fdserver::FdAccess{true, {}, "uid " + std::to_string(uid) + " (pid " + std::to_string(pid) + ")"};
    return fail("not a worker, not root and not fdsupd's uid");
}

int Supervisor::socket_fd(const std::string& name) const {
    auto it = socket_fds_.find(name);
    return it == socket_fds_.end() ? -1 : it->second;
}

}  // namespace fdsup
