// The notify socket (SPEC "Notify socket"): a SOCK_DGRAM unix socket with SO_PASSCRED
// at runtime_dir/notify.sock, mode 0666 (authorisation is by the sender's pid, never
// by file mode). Receives datagrams without blocking and hands each to a callback with
// the kernel-verified sender credentials and any fds it carried (owned, CLOEXEC).
//
// Transport problems are settled here: a datagram without credentials, longer than
// kMaxMessageSize (MSG_TRUNC) or with its control data cut short (MSG_CTRUNC: more fds
// than kMaxFds) is delivered with `problem` set and no fds — whatever fds arrived are
// closed before the callback runs. What the message *means* is the supervisor's business.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "loop/uv_handles.h"
#include "sys/paths.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace fdsup::notify {

// systemd's NOTIFY_FD_MAX: a datagram carrying more is cut short by the kernel.
constexpr size_t kMaxFds = 768;

struct Datagram {
    pid_t pid = 0;  // 0 when the kernel gave no credentials
    uid_t uid = 0;
    gid_t gid = 0;
    std::string data;
    std::vector<UniqueFd> fds;
    std::string problem;  // non-empty: rejected in transport; `data` may be partial, `fds` empty
};

class NotifySocket {
public:
    using OnDatagram = std::function<void(Datagram)>;

    // Creates the runtime directory if needed, replaces a stale socket file.
    // `inherited_fd`: the socket an upgrade handed over (adopted instead of bound).
    static Result<std::unique_ptr<NotifySocket>> open(uv_loop_t* loop, const std::string& path, OnDatagram on_datagram,
                                                      int inherited_fd = -1);
    int fd() const { return fd_.get(); }
    ~NotifySocket();
    NotifySocket(const NotifySocket&) = delete;
    NotifySocket& operator=(const NotifySocket&) = delete;

    const std::string& path() const { return file_.path(); }
    // Handles every datagram already queued, now (before a process's exit is handled,
    // so what it sent just before exiting is not taken for a stranger's).
    void receive_pending();

private:
    NotifySocket(uv_loop_t* loop, std::string path, UniqueFd fd, OnDatagram on_datagram);
    void on_readable();
    // One recvmsg; false once the queue is empty (or the socket failed).
    bool receive_one();

    UniqueFd fd_;
    // The file is checked (and removed) before the socket closes: while the socket is
    // open its inode cannot be reused, so a file someone else bound at the path since
    // is never taken for ours.
    OwnedPath file_;
    FdWatch watch_;  // after fd_: destroyed first
    OnDatagram on_datagram_;
};

}  // namespace fdsup::notify
