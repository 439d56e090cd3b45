#include "sockets/socket_table.h"

#include <signal.h>

#include <spdlog/spdlog.h>

#include <algorithm>

#include "sockets/bind.h"

namespace fdsup {

OwnedSocket* SocketTable::find(const std::string& name) {
    for (auto& socket : current_)
        if (socket.config.name == name) return &socket;
    return nullptr;
}

int SocketTable::fd_of(const std::string& name) const {
    auto it = fds_.find(name);
    return it == fds_.end() ? -1 : it->second;
}

uint64_t SocketTable::serial_of(const std::string& name) const {
    auto it = serials_.find(name);
    return it == serials_.end() ? 0 : it->second;
}

std::vector<std::string> SocketTable::unix_paths_leaving(const std::vector<std::string>& leaving) const {
    std::vector<std::string> paths;
    auto add_path = [&](const OwnedSocket& socket) {
        if (socket.config.address.is_unix() && !socket.config.address.abstract)
            paths.push_back(socket.config.address.path);
    };
    for (const auto& socket : retired_) add_path(socket);
    for (const auto& socket : current_)
        if (std::find(leaving.begin(), leaving.end(), socket.config.name) != leaving.end()) add_path(socket);
    return paths;
}

void SocketTable::add(std::vector<OwnedSocket> sockets) {
    for (auto& socket : sockets) {
        socket.serial = next_serial_++;
        current_.push_back(std::move(socket));
    }
    std::sort(current_.begin(), current_.end(),
              [](const OwnedSocket& a, const OwnedSocket& b) { return a.config.name < b.config.name; });
    index();
}

void SocketTable::retire(const std::vector<std::string>& names) {
    for (auto it = current_.begin(); it != current_.end();) {
        if (std::find(names.begin(), names.end(), it->config.name) == names.end()) {
            ++it;
            continue;
        }
        retired_.push_back(std::move(*it));
        it = current_.erase(it);
    }
    index();
}

bool SocketTable::server_still_runs(const OwnedSocket& socket) {
    // Taken over from a server that still runs: the file is its too. (A pid reused
    // since only leaves a stale file, which the next bind replaces.)
    return socket.adopted_from && (::kill(socket.adopted_from->pid, 0) == 0 || errno == EPERM);
}

void SocketTable::close_unheld(const std::function<bool(uint64_t serial)>& held) {
    for (auto it = retired_.begin(); it != retired_.end();) {
        if (held(it->serial)) {
            ++it;
            continue;
        }
        spdlog::info("socket {}: closed ({})", it->config.name, it->bound);
        const ListenAddress& address = it->config.address;
        bool path_reused = std::any_of(current_.begin(), current_.end(), [&](const OwnedSocket& s) {
            return s.config.address.is_unix() && s.config.address.path == address.path &&
                   s.config.address.abstract == address.abstract;
        });
        if (!path_reused && !server_still_runs(*it)) remove_socket_file(it->config);
        it = retired_.erase(it);
    }
}

void SocketTable::remove_files() const {
    for (const auto& socket : current_) {
        if (socket.held_by_manager) continue;
        if (server_still_runs(socket)) continue;
        remove_socket_file(socket.config);
    }
}

void SocketTable::restore(std::vector<OwnedSocket> current, std::vector<OwnedSocket> retired, uint64_t next_serial) {
    current_ = std::move(current);
    retired_ = std::move(retired);
    next_serial_ = next_serial;
    index();
}

void SocketTable::index() {
    fds_.clear();
    serials_.clear();
    for (const auto& socket : current_) {
        fds_[socket.config.name] = socket.fd.get();
        serials_[socket.config.name] = socket.serial;
    }
}

}  // namespace fdsup
