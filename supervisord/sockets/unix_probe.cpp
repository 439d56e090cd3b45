#include "sockets/unix_probe.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include "sys/unique_fd.h"

namespace fdsup {

SocketFileProbe probe_socket_file(const std::string& path, int type) {
    sockaddr_un addr{};
    if (path.empty() || path.size() >= sizeof addr.sun_path) return {SocketFileUse::unknown, ENAMETOOLONG};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    UniqueFd probe(::socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!probe) return {SocketFileUse::unknown, errno};
    if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0)
        return {SocketFileUse::in_use, 0};
    switch (int err = errno) {
        case ECONNREFUSED: return {SocketFileUse::stale, err};
        case ENOENT: return {SocketFileUse::absent, err};
        case EAGAIN:       // a listener whose backlog is full: busy, not gone
        case EINPROGRESS:  // (not done by AF_UNIX today; would mean someone answers)
        case EPROTOTYPE:   // only a live socket has a type (a stale file refuses any)
            return {SocketFileUse::in_use, err};
        default: return {SocketFileUse::unknown, err};
    }
}

std::string describe_socket_file_probe(const SocketFileProbe& probe) {
    switch (probe.err) {
        case 0: return "a connect succeeded";
        case EAGAIN: return "its backlog is full";
        case EINPROGRESS: return "a connect is pending";
        case EPROTOTYPE: return "a socket of another type is bound there";
        default: return std::string("connect: ") + std::strerror(probe.err);
    }
}

}  // namespace fdsup
