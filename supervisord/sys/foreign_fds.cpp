#include "sys/foreign_fds.h"

#include <sys/stat.h>

#include <dirent.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>
#include <string>

#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

namespace fdsup {

Result<UniqueFd> open_pidfd(pid_t pid) {
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd) return fail_errno("pidfd_open " + std::to_string(pid));
    return pidfd;
}

Result<UniqueFd> copy_fd_of(int pidfd, int fd) {
    UniqueFd copy(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, fd, 0)));
    if (!copy) return fail_errno("pidfd_getfd fd " + std::to_string(fd));
    return copy;
}

Result<std::vector<int>> socket_fds_of(pid_t pid) {
    const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return fail_errno("list " + dir);
    std::vector<int> fds;
    while (dirent* entry = ::readdir(d)) {
        std::string_view name = entry->d_name;
        int fd = -1;
        auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), fd);
        if (ec != std::errc() || end != name.data() + name.size()) continue;  // "." and ".."
        char link[64] = {};
        ssize_t n = ::readlink((dir + "/" + std::string(name)).c_str(), link, sizeof link - 1);
        if (n > 0 && std::string_view(link, static_cast<size_t>(n)).starts_with("socket:[")) fds.push_back(fd);
    }
    ::closedir(d);
    std::sort(fds.begin(), fds.end());
    return fds;
}

Result<PtraceFacts> ptrace_facts(pid_t pid) {
    const std::string dir = "/proc/" + std::to_string(pid);
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) return fail_errno("stat " + dir);
    PtraceFacts facts;
    facts.proc_owner = st.st_uid;
    std::ifstream in(dir + "/status");
    if (!in) return fail_errno("read " + dir + "/status");
    bool gids = false, caps = false;
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with("Gid:")) {
            std::istringstream fields(line.substr(4));
            gids = static_cast<bool>(fields >> facts.gids[0] >> facts.gids[1] >> facts.gids[2]);
        } else if (line.starts_with("CapPrm:")) {
            std::istringstream fields(line.substr(7));
            caps = static_cast<bool>(fields >> std::hex >> facts.permitted_caps);
        }
    }
    if (!gids || !caps) return fail(dir + "/status: no Gid or CapPrm line");
    return facts;
}

Result<std::array<uid_t, 3>> process_uids(pid_t pid) {
    const std::string path = "/proc/" + std::to_string(pid) + "/status";
    std::ifstream in(path);
    if (!in) return fail_errno("read " + path);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.starts_with("Uid:")) continue;
        std::istringstream fields(line.substr(4));
        std::array<uid_t, 3> uids{};
        if (fields >> uids[0] >> uids[1] >> uids[2]) return uids;
        break;
    }
    return fail(path + ": no Uid line");
}

}  // namespace fdsup
