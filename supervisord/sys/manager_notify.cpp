#include "sys/manager_notify.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "sys/unique_fd.h"

namespace fdsup {

ManagerNotify::ManagerNotify() {
    const char* socket = std::getenv("NOTIFY_SOCKET");
    if (socket != nullptr && (socket[0] == '/' || socket[0] == '@') && std::strlen(socket) < sizeof(sockaddr_un{}.sun_path))
        address_ = socket;
}

bool ManagerNotify::send(const std::string& message) {
    if (!enabled()) return false;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, address_.data(), address_.size());
    if (address_[0] == '@') addr.sun_path[0] = '\0';
    socklen_t length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size() + (address_[0] == '@' ? 0 : 1));
    UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (fd && ::sendto(fd.get(), message.data(), message.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr),
                       length) == static_cast<ssize_t>(message.size()))
        return true;
    if (!warned_) {
        warned_ = true;
        spdlog::warn("cannot notify the service manager at {}: {}", address_, std::strerror(errno));
    }
    return false;
}

std::optional<std::chrono::microseconds> ManagerNotify::watchdog_timeout() {
    // A whole number, nothing after it (strtoull would take "12abc" and "-1").
    auto number = [](const char* text) -> std::optional<unsigned long long> {
        if (text == nullptr || *text < '0' || *text > '9') return std::nullopt;
        errno = 0;
        char* end = nullptr;
        unsigned long long value = std::strtoull(text, &end, 10);
        if (errno != 0 || *end != '\0') return std::nullopt;
        return value;
    };
    auto usec = number(std::getenv("WATCHDOG_USEC"));
    if (!usec || *usec == 0) return std::nullopt;
    if (const char* pid = std::getenv("WATCHDOG_PID"); pid != nullptr) {
        auto value = number(pid);
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
