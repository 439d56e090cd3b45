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
        access.instance = owner.instance->id;
        access.main = owner.main;
        access.who = owner.instance->label() + (owner.main ? "" : " descendant") + " (pid " + std::to_string(pid) + ")";
        for (const auto& [fd, name] : cfg.fds) access.names.push_back(name);
        access.names.insert(access.names.end(), cfg.scm_rights.begin(), cfg.scm_rights.end());
        return access;
    }
    if (uid == 0 || uid == ::geteuid())
        return fdserver::FdAccess{true, {}, "uid " + std::to_string(uid) + " (pid " + std::to_string(pid) + ")"};
    return fail("not a worker, not root and not fdsupd's uid");
}

Result<StoreOutcome> Supervisor::store_from_fd_socket(const fdserver::FdAccess& peer, const std::string& name,
                                                      std::vector<UniqueFd> fds, bool poll) {
    if (peer.instance == 0) return fail("only a worker can store fds (its own fd store)");
    Instance* instance = find_instance(peer.instance);
    if (instance == nullptr || !instance->has_process()) return fail("the worker instance has exited");
    if (!peer.main && instance->worker->config.notify_access != config::NotifyAccess::all)
        return fail("only the worker's main process may store fds (notify_access = \"main\")");
    return fd_stores_.store(*instance, name, std::move(fds), poll, shutting_down_);
}

int Supervisor::socket_fd(const std::string& name) const {
    return sockets_.fd_of(name);
}

}  // namespace fdsup
