#include "notify/notify_socket.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "notify/notify_message.h"
#include "sockets/service_socket.h"
#include "sys/scm_rights.h"

namespace fdsup::notify {
namespace {

// Datagrams taken per wakeup: a flooding sender cannot starve the rest of the loop.
constexpr int kDatagramsPerWakeup = 64;
// Like systemd: room for bursts from many workers starting at once.
constexpr int kReceiveBuffer = 8 * 1024 * 1024;

}  // namespace

NotifySocket::NotifySocket(uv_loop_t* loop, std::string path, UniqueFd fd, OnDatagram on_datagram)
    : fd_(std::move(fd)), file_(std::move(path)), watch_(loop, fd_.get()), on_datagram_(std::move(on_datagram)) {}

NotifySocket::~NotifySocket() = default;

Result<std::unique_ptr<NotifySocket>> NotifySocket::open(uv_loop_t* loop, const std::string& path,
                                                         OnDatagram on_datagram, int inherited_fd) {
    const std::string what = "notify socket " + path;
    auto bound = open_service_socket({what, path, true, 0666, std::nullopt, inherited_fd});
    if (!bound) return std::unexpected(bound.error());
    int fd = bound->get();
    int on = 1;
    if (::setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) < 0) return fail_errno(what + ": SO_PASSCRED");
    int size = kReceiveBuffer;
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
        (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);  // best effort without CAP_NET_ADMIN

    std::unique_ptr<NotifySocket> receiver(new NotifySocket(loop, path, std::move(*bound), std::move(on_datagram)));
    if (!receiver->watch_.ok() ||
        receiver->watch_.start(UV_READABLE, [r = receiver.get()](int, int) { r->on_readable(); }) != 0)
        return fail(what + ": cannot watch the socket");
    return receiver;
}

void NotifySocket::on_readable() {
    for (int i = 0; i < kDatagramsPerWakeup; ++i)
        if (!receive_one()) return;
}

void NotifySocket::receive_pending() {
    // Bounded like a wakeup, only larger: the queue is what was sent before an exit.
    for (int i = 0; i < 16 * kDatagramsPerWakeup; ++i)
        if (!receive_one()) return;
}

bool NotifySocket::receive_one() {
    // One loop thread: static buffers are safe and keep a flood from allocating.
    static std::array<char, kMaxMessageSize + 1> data;
    alignas(cmsghdr) static std::array<char, CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int) * kMaxFds)> control;

    iovec iov{data.data(), data.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    ssize_t n = ::recvmsg(fd_.get(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
        if (errno == EINTR) return true;
        spdlog::error("notify socket: recvmsg: {}", std::strerror(errno));
        return false;
    }

    Datagram datagram;
    bool have_credentials = false;
    take_scm_rights(msg, datagram.fds);
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len == CMSG_LEN(sizeof(ucred))) {
            ucred credentials{};
            std::memcpy(&credentials, CMSG_DATA(c), sizeof credentials);
            datagram.pid = credentials.pid;
            datagram.uid = credentials.uid;
            datagram.gid = credentials.gid;
            have_credentials = true;
        }
    }
    size_t length = static_cast<size_t>(n);
    datagram.data.assign(data.data(), std::min(length, kMaxMessageSize));
    if (msg.msg_flags & MSG_CTRUNC)
        datagram.problem = "more than " + std::to_string(kMaxFds) + " fds (control data truncated)";
    else if (length > kMaxMessageSize)
        datagram.problem = "message of " + std::to_string(length) + " bytes (at most " +
                           std::to_string(kMaxMessageSize) + ")";
    else if (!have_credentials || datagram.pid <= 0)
        datagram.problem = "no sender credentials";
    if (!datagram.problem.empty()) datagram.fds.clear();  // closed before anyone can use them
    on_datagram_(std::move(datagram));
    return true;
}

}  // namespace fdsup::notify
