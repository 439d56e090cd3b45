// The connections of a listening socket, as the kernel's socket tables show them
// (NETLINK_SOCK_DIAG): what idle_stop measures (supervisor/on_demand.cpp).
//
//   tcp (inet_diag): sockets with the listener's local port (and its address, unless it
//     is bound to the wildcard) in ESTABLISHED, SYN_RECV, CLOSE_WAIT or LAST_ACK: open,
//     still in the accept queue, or closed by the peer but not yet by the worker. A
//     connection the worker closed first is in TIME_WAIT for the kernel's fixed 60 s:
//     its remaining time tells when it closed (`last_closed_ago`).
//   unix, unixpacket (unix_diag): accepted sockets of the listener's type that carry
//     its name (the kernel gives an accepted socket the listener's address), and the
//     listener's accept queue (a queued one is in no table yet). Nothing is left of a
//     closed one.
//
// Limits: a connection opened and closed entirely between two samples leaves no trace
// unless it ended in TIME_WAIT; another process's socket on the same port (SO_REUSEPORT
// outside fdsupd) is counted too; the tables are those of fdsupd's network namespace,
// where the listener is. Cost: one dump of the family's sockets in those states (the
// kernel filters tcp by port; unix sockets are all listed and filtered here).
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>

#include "sys/result.h"

namespace fdsup {

struct ConnectionSample {
    size_t open = 0;  // open, queued or half-closed
    // tcp: how long ago the most recent connection the worker closed was closed, if the
    // kernel still remembers one (TIME_WAIT).
    std::optional<std::chrono::milliseconds> last_closed_ago;
};

// The connections of `listen_fd`, a listening tcp, unix or unixpacket socket.
// Other sockets (udp, unixgram) are an error: they have no connections.
Result<ConnectionSample> sample_connections(int listen_fd);

}  // namespace fdsup
