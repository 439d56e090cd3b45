// A ListenAddress as a sockaddr for bind() or connect(): tcp/udp hosts through
// getaddrinfo (names too: for binding, at start-up and reload) or numeric only (for the
// loop, which must never wait on a resolver), unix paths and abstract names.
#pragma once

#include <sys/socket.h>

#include <string>

#include "config/listen_address.h"
#include "sys/result.h"

namespace fdsup {

struct SockAddr {
    sockaddr_storage storage{};
    socklen_t len = 0;

    const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
    int family() const { return storage.ss_family; }
};

// SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET.
int socket_type(SocketKind kind);

// HOST:PORT -> the first usable address (getaddrinfo; it may block on a resolver). A
// host with ':' came from brackets: IPv6 only. Errors start with `what`.
Result<SockAddr> resolve_inet(const ListenAddress& a, int type, const std::string& what);

// HOST:PORT for a numeric HOST only (inet_pton): never blocks. "what: not a numeric address"
// for anything else.
Result<SockAddr> numeric_inet_address(const ListenAddress& a, const std::string& what);

// sockaddr_un for a path (NUL-terminated) or an abstract name (exact length).
Result<SockAddr> unix_address(const ListenAddress& a, const std::string& what);

}  // namespace fdsup
