// Whether a socket someone else made is the one a [sockets.NAME] describes: for taking
// over a socket rather than binding it (socket activation, sockets/bind.h's
// adopt_bound_socket; another process's, sockets/take_over.h).
//
// The facts are read from the fd once (socket_facts), then compared without syscalls
// (compare_socket), so the rules are tested on made-up facts.
#pragma once

#include <sys/socket.h>

#include <string>

#include "config/listen_address.h"
#include "sockets/socket_address.h"
#include "sys/result.h"

namespace fdsup {

struct SocketFacts {
    int type = 0;                 // SO_TYPE
    sockaddr_storage address{};   // getsockname
    socklen_t length = 0;
    bool listening = false;       // SO_ACCEPTCONN
    std::string bound;            // describe_local_address: "127.0.0.1:8080", "/run/x.sock", "" unnamed
};

// ENOTSOCK (an fd that is not a socket) is an error "not a socket".
Result<SocketFacts> socket_facts(int fd);

enum class SocketMismatch {
    none,           // the same kind, bound to the same address, listening if the kind listens
    kind,           // another type or family (a udp socket for tcp://, a tcp one for unix:)
    address,        // bound elsewhere
    not_listening,  // the right address, but listen() was never called
};

// `expected` is `wanted` as a sockaddr (resolve_inet / unix_address). Addresses are
// compared exactly: a wildcard matches only the same wildcard (0.0.0.0 is not
// 127.0.0.1, [::] not 0.0.0.0), a path the same path, an abstract name the same name;
// a configured port 0 matches any port.
SocketMismatch compare_socket(const SocketFacts& facts, const ListenAddress& wanted, const SockAddr& expected);

// The kind the facts say, as a listen string's scheme: "tcp", "udp", "unix",
// "unixgram", "unixpacket", or "other".
std::string kind_of(const SocketFacts& facts);

}  // namespace fdsup
