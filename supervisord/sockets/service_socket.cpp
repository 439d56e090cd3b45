#include "sockets/service_socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

#include "config/model.h"
#include "sockets/bind.h"
#include "config/listen_address.h"
#include "sockets/unix_probe.h"
#include "sys/paths.h"

namespace fdsup {

Result<UniqueFd> open_service_socket(const ServiceSocketSpec& spec) {
    if (spec.inherited_fd >= 0) {
        // Checked before it is owned: a refusal leaves the fd open, for a rollback.
        int fd = spec.inherited_fd;
        sockaddr_un address{};
        socklen_t length = sizeof address - 1;  // room for a terminating NUL
        if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) < 0 || address.sun_family != AF_UNIX)
            return fail(spec.what + ": the inherited fd " + std::to_string(fd) + " is not a unix socket");
        std::string bound_path = address.sun_path;
        if (bound_path != spec.path && bound_path != absolute_path(spec.path))
            return fail(spec.what + ": the inherited socket is bound to " + bound_path);
        if (::fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 || ::fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
            return fail_errno(spec.what + ": inherited fd");
        return UniqueFd(fd);
    }
    if (auto made = make_directories(directory_of(spec.path)); !made) return fail(spec.what + ": " + made.error().text());
    // Non-blocking: a live fdsupd whose backlog is full answers EAGAIN, it does not hang us.
    if (probe_socket_file(spec.path, spec.datagram ? SOCK_DGRAM : SOCK_STREAM).use == SocketFileUse::in_use)
        return fail(spec.what + ": another process (another fdsupd?) is serving there");
    std::string listen = (spec.datagram ? "unixgram:" : "unix:") + spec.path;
    auto address = parse_listen_address(listen);
    if (!address) return fail(spec.what + ": " + address.error().text());
    config::SocketConfig socket;
    socket.name = spec.what;
    socket.listen = listen;
    socket.address = *address;
    socket.backlog = 128;
    socket.mode = spec.mode;
    socket.group = spec.group;
    auto bound = bind_socket(socket);
    if (!bound) return std::unexpected(bound.error());
    if (::fcntl(bound->fd.get(), F_SETFL, O_NONBLOCK) < 0) return fail_errno(spec.what + ": O_NONBLOCK");
    return std::move(bound->fd);
}

}  // namespace fdsup
