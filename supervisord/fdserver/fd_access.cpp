#include "fdserver/fd_access.h"

#include <unistd.h>

#include <algorithm>

namespace fdsup::fdserver {

Result<FdAccess> fd_access(const Supervisor& supervisor, pid_t pid, uid_t uid) {
    Supervisor::ProcessOwner owner = supervisor.owner_of(pid);
    if (owner.instance != nullptr) {
        // A worker (or a process still in its tree) is held to its own sockets even as
        // root: one worker must not take another's listening socket by accident. A
        // helper that daemonised out of the tree is judged by its uid instead.
        const auto& cfg = owner.instance->worker->config;
        FdAccess access;
        access.instance = owner.instance->id;
        access.main = owner.main;
        access.who = owner.instance->label() + (owner.main ? "" : " descendant") + " (pid " + std::to_string(pid) + ")";
        for (const auto& [fd, name] : cfg.fds) access.names.push_back(name);
        access.names.insert(access.names.end(), cfg.scm_rights.begin(), cfg.scm_rights.end());
        return access;
    }
    if (uid == 0 || uid == ::geteuid())
        return FdAccess{true, {}, "uid " + std::to_string(uid) + " (pid " + std::to_string(pid) + ")"};
    return fail("not a worker, not root and not fdsupd's uid");
}

Result<StoreOutcome> store_from_fd_socket(Supervisor& supervisor, const FdAccess& peer, const std::string& name,
                                          std::vector<UniqueFd> fds, bool poll) {
    if (peer.instance == 0) return fail("only a worker can store fds (its own fd store)");
    Instance* instance = supervisor.find_instance(peer.instance);
    if (instance == nullptr || !instance->has_process()) return fail("the worker instance has exited");
    if (!peer.main && instance->worker->config.notify_access != config::NotifyAccess::all)
        return fail("only the worker's main process may store fds (notify_access = \"main\")");
    return supervisor.store_fds(*instance, name, std::move(fds), poll);
}

FdServerHooks hooks_for(Supervisor& supervisor) {
    return {[&supervisor](pid_t pid, uid_t uid) { return fd_access(supervisor, pid, uid); },
            [&supervisor](const std::string& name) { return supervisor.sockets().fd_of(name); },
            [&supervisor](const FdAccess& peer, const std::string& name, std::vector<UniqueFd> fds, bool poll) {
                return store_from_fd_socket(supervisor, peer, name, std::move(fds), poll);
            }};
}

}  // namespace fdsup::fdserver
