// Who may fetch which listening socket over the fd socket, and who may store fds there
// (SPEC "fd socket"): the fd server's questions, answered from the process table.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "fdserver/fd_server.h"
#include "supervisor/supervisor.h"

namespace fdsup::fdserver {

// A worker's process (or its descendant) may fetch its own `fds` and `scm_rights`,
// whatever its uid; any other process everything if it is root or fdsupd's uid;
// nobody else anything.
Result<FdAccess> fd_access(const Supervisor& supervisor, pid_t pid, uid_t uid);

// {"cmd":"store"} from a peer fd_access let in: into its instance's fd store, under
// the rules FDSTORE=1 follows (notify_access included).
Result<StoreOutcome> store_from_fd_socket(Supervisor& supervisor, const FdAccess& peer, const std::string& name,
                                          std::vector<UniqueFd> fds, bool poll);

// The hooks an FdServer asks, answered by `supervisor`.
FdServerHooks hooks_for(Supervisor& supervisor);

}  // namespace fdsup::fdserver
