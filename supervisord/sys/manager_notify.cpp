#include "sys/manager_notify.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "sys/env_number.h"
#include "sys/scm_rights.h"
#include "sys/unique_fd.h"

namespace fdsup {

ManagerNotify::ManagerNotify() {
    const char* socket = std::getenv("NOTIFY_SOCKET");
    if (socket != nullptr && (socket[0] == '/' || socket[0] == '@') && std::strlen(socket) < sizeof(sockaddr_un{}.sun_path))
        address_ = socket;
}

bool ManagerNotify::send(const std::string& message, int fd) {
    if (!enabled()) return false;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, address_.data(), address_.size());
    if (address_[0] == '@') addr.sun_path[0] = '\0';
    socklen_t length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size() + (address_[0] == '@' ? 0 : 1));
    UniqueFd sock(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    iovec iov{const_cast<char*>(message.data()), message.size()};
    msghdr msg{};
    msg.msg_name = &addr;
    msg.msg_namelen = length;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    OneControlMessage<int> control;
    if (fd >= 0) attach_control_message(msg, control, SCM_RIGHTS, fd);
    if (sock && ::sendmsg(sock.get(), &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(message.size())) return true;
    if (!warned_) {
        warned_ = true;
        spdlog::warn("cannot notify the service manager at {}: {}", address_, std::strerror(errno));
    }
    return false;
}

size_t ManagerNotify::fd_store_max() { return static_cast<size_t>(env_number("FDSTORE").value_or(0)); }

std::optional<std::chrono::microseconds> ManagerNotify::watchdog_timeout() {
    auto usec = env_number("WATCHDOG_USEC");
    if (!usec || *usec == 0) return std::nullopt;
    if (std::getenv("WATCHDOG_PID") != nullptr) {
        auto value = env_number("WATCHDOG_PID");
        if (!value || *value != static_cast<unsigned long long>(::getpid())) return std::nullopt;
    }
    return std::chrono::microseconds(*usec);
}

std::string ManagerNotify::reloading_message() {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    unsigned long long usec = static_cast<unsigned long long>(now.tv_sec) * 1000000ULL +
                              static_cast<unsigned long long>(now.tv_nsec) / 1000ULL;
    return "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec);
}

}  // namespace fdsup
