// The listening sockets the supervisor owns: the current ones, one per [sockets.NAME],
// and the retired ones, which a reload replaced or removed while old processes still
// hold them. A retired socket is closed (and its file removed) once no process holds it.
//
// Every socket gets a serial number when it joins the table, unique for the
// supervisor's life (an upgrade carries the count): an instance records the serials
// of the sockets its process was given, which tells whether it holds a retired one.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/model.h"
#include "sys/unique_fd.h"

namespace fdsup {

struct OwnedSocket {
    config::SocketConfig config;
    UniqueFd fd;
    std::string bound;    // the real local address ("127.0.0.1:41234")
    uint64_t serial = 0;  // set by the table
    // fdsupd's service manager holds it too (passed by socket activation, or parked in
    // its fd store): its file is not removed at shutdown, the manager still serves it.
    bool held_by_manager = false;
    // Taken over from a running process (sockets/take_over.h) rather than bound: which
    // one, and its fd number there. Shown by status; an upgrade carries it.
    struct AdoptedFrom {
        pid_t pid = 0;
        int fd = -1;
    };
    std::optional<AdoptedFrom> adopted_from{};
};

// The name a socket is parked under in the service manager's fd store: one no
// [sockets.NAME] can have ('.'), so a parked socket is never taken for a .socket unit's.
inline std::string parked_name(const std::string& socket) { return "parked." + socket; }

class SocketTable {
public:
    SocketTable() = default;
    explicit SocketTable(std::vector<OwnedSocket> sockets) { add(std::move(sockets)); }

    const std::vector<OwnedSocket>& current() const { return current_; }
    const std::vector<OwnedSocket>& retired() const { return retired_; }
    OwnedSocket* find(const std::string& name);
    // The fd of the current socket `name`, -1 if there is none.
    int fd_of(const std::string& name) const;
    // name -> fd of every current socket, for the plan builder.
    const std::map<std::string, int>& fds() const { return fds_; }
    // The serial of the current socket `name`, 0 if there is none.
    uint64_t serial_of(const std::string& name) const;

    // The files of the unix sockets on their way out: retired ones, and the current ones
    // named in `leaving` (a reload may bind a new socket at such a path).
    std::vector<std::string> unix_paths_leaving(const std::vector<std::string>& leaving) const;
    // Sockets bound (or adopted) since: current from now on, in name order.
    void add(std::vector<OwnedSocket> sockets);
    // The current sockets named (those a reload replaced or removed) are retired.
    void retire(const std::vector<std::string>& names);
    // Closes each retired socket no process holds (`held(serial)` is false), and
    // removes its file unless a current socket has been bound at the same path.
    void close_unheld(const std::function<bool(uint64_t serial)>& held);
    // At shutdown: the files of the current unix sockets, except those the service
    // manager still holds (it goes on serving them) and those taken over from a process
    // that still runs (it may still serve them).
    // Taken over (fdsupctl adopt) from a process that still runs: its unix socket file
    // is that server's too, left in place when fdsupd lets go of the socket.
    static bool server_still_runs(const OwnedSocket& socket);
    void remove_files() const;

    // For an upgrade: the next serial, and the table as the previous image left it.
    uint64_t next_serial() const { return next_serial_; }
    void restore(std::vector<OwnedSocket> current, std::vector<OwnedSocket> retired, uint64_t next_serial);

private:
    void index();

    std::vector<OwnedSocket> current_;
    std::vector<OwnedSocket> retired_;
    std::map<std::string, int> fds_;
    std::map<std::string, uint64_t> serials_;
    uint64_t next_serial_ = 1;
};

}  // namespace fdsup
