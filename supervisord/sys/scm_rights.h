// Taking the fds a recvmsg() received in SCM_RIGHTS: every one of them becomes owned at
// once, before anything about the message is judged, so none can leak whatever the
// verdict. Receive with MSG_CMSG_CLOEXEC, so none reaches a worker either.
// And the sending side: one control message (an fd, credentials) attached to a sendmsg().
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

// Room for one control message carrying a T, aligned as cmsghdr needs.
template <class T>
struct OneControlMessage {
    alignas(cmsghdr) unsigned char bytes[CMSG_SPACE(sizeof(T))] = {};
};

// `msg` carries `value` as its one control message (SOL_SOCKET, `type`: SCM_RIGHTS for
// an int fd, SCM_CREDENTIALS for a ucred), kept in `room`.
template <class T>
void attach_control_message(msghdr& msg, OneControlMessage<T>& room, int type, const T& value) {
    msg.msg_control = room.bytes;
    msg.msg_controllen = sizeof room.bytes;
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = type;
    cmsg->cmsg_len = CMSG_LEN(sizeof(T));
    std::memcpy(CMSG_DATA(cmsg), &value, sizeof value);
}

}  // namespace fdsup
