// Binding the sockets the supervisor owns ([sockets.NAME] in the config).
//
// Every fd created here is SOCK_CLOEXEC: the launcher's fd map is the only way one
// reaches a worker. Listeners stay blocking (workers expect blocking listeners; the
// supervisor itself never accepts on them).
//
// Options are applied where they mean something and ignored elsewhere (the config
// loader rejects misplaced ones):
//   tcp         SO_REUSEADDR (always), SO_REUSEPORT, IP(V6)_FREEBIND, IPV6_V6ONLY,
//               TCP_NODELAY, SO_KEEPALIVE, SO_RCVBUF, SO_SNDBUF, listen(backlog)
//   udp         SO_REUSEPORT, IP(V6)_FREEBIND, IPV6_V6ONLY, SO_RCVBUF, SO_SNDBUF
//   unix*       SO_RCVBUF, SO_SNDBUF; listen(backlog) for unix and unixpacket;
//               path sockets: mode, owner, group
// IPV6_V6ONLY is set explicitly on every AF_INET6 socket (to `ipv6_only`), never left
// to the net.ipv6.bindv6only sysctl.
#pragma once

#include <sys/socket.h>  // SOMAXCONN, used by config/model.h

#include <string>
#include <vector>

#include "config/model.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace fdsup {

struct BoundSocket {
    UniqueFd fd;        // CLOEXEC; O_NONBLOCK is NOT set (workers expect blocking listeners)
    std::string bound;  // the actual local address: "127.0.0.1:41234", "[::1]:8080",
                        // "/run/x.sock", "@name" (see describe_local_address)
};

// Creates, configures, binds (and listen()s for stream kinds) the socket `cfg` describes.
//
// tcp/udp: HOST is resolved with getaddrinfo (numeric or a name); a bracketed host is
// AF_INET6 only, otherwise the first IPv4 or IPv6 result is taken.
// unix path: the directories above it are made if missing (mkdir -p, mode 0755). An
// existing socket file at the path is probed with a connect() of the socket's own type
// (sockets/unix_probe.h): when nobody listens (ECONNREFUSED) it is stale and replaced;
// when a process still serves it, or the probe cannot tell, that is an error and the
// file is left alone, as EADDRINUSE is for a TCP port:
//   "socket admin: unix:/run/app.sock is in use by another process (a connect succeeded); not replacing it"
// Paths in `replaceable` (sockets of this very process that a reload is replacing) are
// replaced without a probe. Anything else at the path is an error ("socket NAME: /path
// exists and is not a socket"). When `mode` is set the file is created with no
// permissions at all, then chown'ed (owner/group: names or numeric ids) and chmod'ed,
// so nobody else can connect before it has its final owner and mode. If any step after
// bind fails, the file is removed again, and so are the directories made for it.
// unix abstract (@name): bound with the exact address length (no trailing NULs).
//
// Errors name the socket, the step and the cause:
//   "socket http: bind tcp://127.0.0.1:80: Address already in use"
//   "socket http: setsockopt SO_REUSEPORT tcp://[::]:80: Protocol not available"
//   "socket app: chown /run/app.sock: unknown user \"www\""
// On error nothing is left open.
Result<BoundSocket> bind_socket(const config::SocketConfig& cfg, const std::vector<std::string>& replaceable = {});

// A socket bound by someone else (a service manager's socket activation) taken as the
// socket `cfg` describes: it must be of the same kind (type and family) and bound to
// the same address (any port when `cfg`'s is 0; a path or abstract name must match),
// and listening when the kind listens. Then the options that can still be applied are
// (update_socket_options). `fd` is close-on-exec. The error says what differs:
//   "socket http: the inherited fd 3 is bound to 127.0.0.1:9000, not tcp://127.0.0.1:8080"
Result<BoundSocket> adopt_bound_socket(UniqueFd fd, const config::SocketConfig& cfg);

// Applies `cfg` to a socket bound earlier at the same address (reload): backlog
// (listen again), TCP_NODELAY and SO_KEEPALIVE (on or off), SO_RCVBUF/SO_SNDBUF when
// > 0 (0 cannot bring back the kernel default: the last value stays), and for unix path
// sockets the file's owner, group and mode. The options fixed at bind time (reuse_port,
// free_bind, ipv6_only) are not touched: see config/diff.h.
Result<void> update_socket_options(int fd, const config::SocketConfig& cfg);

// The local address of a bound socket fd in the `bound` format above: "IPv4:PORT",
// "[IPv6]:PORT" (with "%zone" for scoped addresses), "/path", "@name"; "" for an
// unbound (unnamed) unix socket.
Result<std::string> describe_local_address(int fd);

// The listen string as written, or rebuilt from the parsed address when the config was
// made by hand (tests, defaults).
std::string listen_text(const config::SocketConfig& cfg);

// Removes the filesystem entry of a unix path socket (at shutdown), only if what is at
// the path is a socket; a no-op for other kinds and abstract names. Errors are ignored.
// Not for upgrade: the re-exec'd supervisor keeps the sockets and their files.
void remove_socket_file(const config::SocketConfig& cfg);

}  // namespace fdsup
