// The first step of the http and connect checks: a non-blocking connect of a stream
// socket (tcp, or unix) that the loop finishes. Nothing here blocks: the host is numeric
// (config/probe_target.h made sure), and a unix connect never waits (it succeeds, or
// fails at once: EAGAIN when the listener's backlog is full).
#pragma once

#include <string>

#include "config/listen_address.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace fdsup::health {

struct Connecting {
    UniqueFd fd;               // SOCK_CLOEXEC | SOCK_NONBLOCK
    bool in_progress = false;  // EINPROGRESS: poll writable, then socket_error
};

// socket() and connect(). Errors start with `what` ("connect 127.0.0.1:9000"):
// "connect 127.0.0.1:9000: Connection refused",
// "connect unix:/run/app.sock: listen backlog full: Resource temporarily unavailable".
Result<Connecting> begin_connect(const ListenAddress& address, const std::string& what);

// The socket's pending error (SO_ERROR), as "what: Connection refused": the outcome of
// an in-progress connect once it polls writable, or what broke a connection (libuv
// reports POLLERR as UV_EBADF, which says nothing).
Result<void> socket_error(int fd, const std::string& what);

// "127.0.0.1:9000", "[::1]:9000", "unix:/run/app.sock", "unix:@name"
std::string describe_target(const ListenAddress& address);

}  // namespace fdsup::health
