#include "sockets/socket_address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>
#include <memory>

namespace fdsup {

int socket_type(SocketKind kind) {
    switch (kind) {
        case SocketKind::tcp:
        case SocketKind::unix_stream: return SOCK_STREAM;
        case SocketKind::udp:
        case SocketKind::unix_dgram: return SOCK_DGRAM;
        case SocketKind::unix_seqpacket: return SOCK_SEQPACKET;
    }
    return SOCK_STREAM;
}

Result<SockAddr> resolve_inet(const ListenAddress& a, int type, const std::string& what) {
    addrinfo hints{};
    hints.ai_family = a.host.find(':') != std::string::npos ? AF_INET6 : AF_UNSPEC;
    hints.ai_socktype = type;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* list = nullptr;
    std::string service = std::to_string(a.port);
    int rc = getaddrinfo(a.host.c_str(), service.c_str(), &hints, &list);
    if (rc == EAI_SYSTEM) return fail_errno(what);
    if (rc != 0) return fail(what + ": " + gai_strerror(rc));
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owner(list, &freeaddrinfo);
    for (const addrinfo* ai = list; ai; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
        if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
        SockAddr out;
        std::memcpy(&out.storage, ai->ai_addr, ai->ai_addrlen);
        out.len = ai->ai_addrlen;
        return out;
    }
    return fail(what + ": no IPv4 or IPv6 address");
}

Result<SockAddr> numeric_inet_address(const ListenAddress& a, const std::string& what) {
    SockAddr out;
    auto* in = reinterpret_cast<sockaddr_in*>(&out.storage);
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
    if (inet_pton(AF_INET, a.host.c_str(), &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(a.port);
        out.len = sizeof(sockaddr_in);
    } else if (inet_pton(AF_INET6, a.host.c_str(), &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(a.port);
        out.len = sizeof(sockaddr_in6);
    } else {
        return fail(what + ": " + a.host + " is not a numeric address");
    }
    return out;
}

Result<SockAddr> unix_address(const ListenAddress& a, const std::string& what) {
    SockAddr out;
    auto* un = reinterpret_cast<sockaddr_un*>(&out.storage);
    un->sun_family = AF_UNIX;
    constexpr size_t room = sizeof(un->sun_path);
    if (a.abstract) {
        if (a.path.empty() || a.path.size() > room - 1) return fail(what + ": bad abstract name");
        un->sun_path[0] = '\0';
        std::memcpy(un->sun_path + 1, a.path.data(), a.path.size());
        out.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + a.path.size());
    } else {
        if (a.path.empty() || a.path.size() > room - 1) return fail(what + ": bad path");
        std::memcpy(un->sun_path, a.path.data(), a.path.size());
        out.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + a.path.size() + 1);
    }
    return out;
}

}  // namespace fdsup
