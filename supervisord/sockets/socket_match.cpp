#include "sockets/socket_match.h"

#include <netinet/in.h>

#include <cstring>

#include "sockets/bind.h"

namespace fdsup {

Result<SocketFacts> socket_facts(int fd) {
    SocketFacts facts;
    socklen_t length = sizeof facts.type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &facts.type, &length) < 0)
        return fail(errno == ENOTSOCK ? "not a socket" : "getsockopt SO_TYPE", errno == ENOTSOCK ? 0 : errno);
    facts.length = sizeof facts.address;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&facts.address), &facts.length) < 0)
        return fail_errno("getsockname");
    int accepting = 0;
    length = sizeof accepting;
    // Datagram sockets answer 0 (or ENOPROTOOPT on old kernels): not listening.
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0) facts.listening = accepting != 0;
    auto bound = describe_local_address(fd);
    if (!bound) return std::unexpected(bound.error());
    facts.bound = std::move(*bound);
    return facts;
}

SocketMismatch compare_socket(const SocketFacts& facts, const ListenAddress& wanted, const SockAddr& expected) {
    const int family = facts.address.ss_family;
    const bool inet_family = family == AF_INET || family == AF_INET6;
    if (facts.type != socket_type(wanted.kind) || (wanted.is_inet() ? !inet_family : family != AF_UNIX))
        return SocketMismatch::kind;
    bool same = false;
    if (family == AF_INET && expected.family() == AF_INET) {
        const auto* x = reinterpret_cast<const sockaddr_in*>(&facts.address);
        const auto* y = reinterpret_cast<const sockaddr_in*>(expected.get());
        same = x->sin_addr.s_addr == y->sin_addr.s_addr && (wanted.port == 0 || x->sin_port == y->sin_port);
    } else if (family == AF_INET6 && expected.family() == AF_INET6) {
        const auto* x = reinterpret_cast<const sockaddr_in6*>(&facts.address);
        const auto* y = reinterpret_cast<const sockaddr_in6*>(expected.get());
        same = std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0 &&
               (wanted.port == 0 || x->sin6_port == y->sin6_port);
    } else if (family == AF_UNIX) {
        same = facts.length == expected.len && std::memcmp(&facts.address, expected.get(), facts.length) == 0;
    }
    if (!same) return SocketMismatch::address;
    if (wanted.listens() && !facts.listening) return SocketMismatch::not_listening;
    return SocketMismatch::none;
}

std::string kind_of(const SocketFacts& facts) {
    const bool unix_family = facts.address.ss_family == AF_UNIX;
    switch (facts.type) {
        case SOCK_STREAM: return unix_family ? "unix" : "tcp";
        case SOCK_DGRAM: return unix_family ? "unixgram" : "udp";
        case SOCK_SEQPACKET: return unix_family ? "unixpacket" : "other";
        default: return "other";
    }
}

}  // namespace fdsup
