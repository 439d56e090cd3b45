#include "health/stream_connect.h"

#include <sys/socket.h>

#include <cerrno>

#include "sockets/socket_address.h"

namespace fdsup::health {

Result<Connecting> begin_connect(const ListenAddress& address, const std::string& what) {
    auto sockaddr = address.is_inet() ? numeric_inet_address(address, what) : unix_address(address, what);
    if (!sockaddr) return std::unexpected(sockaddr.error());
    Connecting out;
    out.fd.reset(::socket(sockaddr->family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!out.fd) return fail_errno(what + ": socket");
    if (::connect(out.fd.get(), sockaddr->get(), sockaddr->len) == 0) return out;
    // An interrupted connect goes on in the background, as an in-progress one does.
    if (errno == EINPROGRESS || errno == EINTR) {
        out.in_progress = true;
        return out;
    }
    // For a unix socket, EAGAIN is the listener's full backlog (not a retry hint: a
    // blocking connect would wait for room).
    if (errno == EAGAIN && address.is_unix()) return fail_errno(what + ": listen backlog full");
    return fail_errno(what);
}

Result<void> socket_error(int fd, const std::string& what) {
    int err = 0;
    socklen_t length = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &length) < 0) return fail_errno(what + ": getsockopt SO_ERROR");
    if (err != 0) return fail(what, err);
    return {};
}

std::string describe_target(const ListenAddress& address) {
    if (address.is_unix()) return std::string("unix:") + (address.abstract ? "@" : "") + address.path;
    if (address.host.find(':') != std::string::npos) return "[" + address.host + "]:" + std::to_string(address.port);
    return address.host + ":" + std::to_string(address.port);
}

}  // namespace fdsup::health
