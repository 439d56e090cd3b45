// Taking over a listening socket that a running server bound itself: `fdsupctl adopt
// SOCKET --pid PID [--fd N]` and `[sockets.NAME] adopt = { pid_file = "..." }`.
//
// pidfd_open(PID) then pidfd_getfd (Linux 5.6): fdsupd gets its own reference to the
// very socket the server has, with the same accept queue. The server keeps accepting
// until the operator stops it; meanwhile both take connections off the one queue, and
// a connection waits in it whoever takes it, so none is refused.
//
// Who may: the kernel lets fdsupd take the fd only if it may ptrace the process
// (PTRACE_MODE_ATTACH_REALCREDS: the same uid, or CAP_SYS_PTRACE, and Yama's
// ptrace_scope). fdsupd usually runs as root and may take anything, so an operator's
// request also names the caller (its control connection's SO_PEERCRED uid), held to the
// same rule: root, or the uid that is the process's real, effective and saved uid. A
// pid_file in the configuration needs no caller: the configuration is the operator's
// word.
//
// What is checked before anything is kept: the fd is a socket of the kind and family
// the `listen` says (tcp/udp/unix/unixgram/unixpacket), bound to exactly that address
// (sockets/socket_match.h), and listening when the kind listens. Then the options of
// [sockets.NAME] that can still be applied are (update_socket_options: TCP_NODELAY,
// SO_KEEPALIVE, buffers, a unix file's mode and owner, listen() again with `backlog`);
// reuse_port, free_bind and ipv6_only are as the server set them.
//
// Without an fd number, every socket fd of the process is looked at (/proc/PID/fd) and
// the one listening on the address is taken; several fds of one socket (dup'ed, or
// shared by forked workers) are one socket (the lowest fd is named). Several distinct
// sockets on it (SO_REUSEPORT) is an error that asks for --fd.
//
// Errors name the socket and say what differs:
//   "socket web: no process 1234"
//   "socket web: uid 1000 may not take the sockets of pid 1234 (its uid is 0): only root or the process's own user may"
//   "socket web: fdsupd may not ptrace pid 1234 (pidfd_getfd: Operation not permitted; it needs ...)"
//   (or "(list /proc/1234/fd: Permission denied; ...)": the same rule guards the listing)
//   "socket web: pid 1234 has no fd 9"
//   "socket web: pid 1234 fd 5 is not a socket"
//   "socket web: pid 1234 fd 5 is not listening (bound to 127.0.0.1:8080)"
//   "socket web: pid 1234 fd 5 listens on 127.0.0.1:8081, [sockets.web] says tcp://127.0.0.1:8080"
//   "socket web: pid 1234 fd 5 is a udp socket bound to 127.0.0.1:8080, [sockets.web] says tcp://127.0.0.1:8080"
//   "socket web: no socket of pid 1234 listens on tcp://127.0.0.1:8080"
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "config/model.h"
#include "sockets/bind.h"
#include "sys/result.h"

namespace fdsup {

struct TakeOverRequest {
    pid_t pid = 0;
    std::optional<int> fd;            // the process's fd number; else found by the address
    std::optional<ucred> caller;  // the control client's; nullopt: the configuration asks
};

struct TakenSocket {
    BoundSocket socket;  // fdsupd's own fd (close-on-exec) and its address
    pid_t pid = 0;       // taken from this process ...
    int fd = -1;         // ... at this fd number
};

Result<TakenSocket> take_over_socket(const config::SocketConfig& cfg, const TakeOverRequest& request);

// A pid file's text: a positive decimal pid, with whitespace around it (a newline
// after it, as daemons write it). The error says what is wrong with it.
Result<pid_t> parse_pid_text(std::string_view text);

// The pid in the file `path`: "pid file /run/x.pid: ..." when it cannot be read or
// holds no pid.
Result<pid_t> read_pid_file(const std::string& path);

// take_over_socket for `adopt = { pid_file }`: the pid from the file, the configuration's authority.
Result<TakenSocket> take_over_from_pid_file(const config::SocketConfig& cfg);

}  // namespace fdsup
