// Taking the fds a recvmsg() received in SCM_RIGHTS: every one of them becomes owned at
// once, before anything about the message is judged, so none can leak whatever the
// verdict. Receive with MSG_CMSG_CLOEXEC, so none reaches a worker either.
#pragma once

#include <sys/socket.h>

#include <cstring>
#include <vector>

#include "sys/unique_fd.h"

namespace fdsup {

inline void take_scm_rights(msghdr& msg, std::vector<UniqueFd>& into) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char* data = CMSG_DATA(c);
        for (size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, data + i * sizeof(int), sizeof fd);
            into.emplace_back(fd);
        }
    }
}

}  // namespace fdsup
