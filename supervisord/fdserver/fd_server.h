// The fd socket (SPEC "fd socket"): a SOCK_STREAM unix socket at runtime_dir/fds.sock,
// mode 0666 (authorisation is by peer credentials, never by file mode), through which
// a process asks for listening sockets by name and gets them in SCM_RIGHTS.
//
// Wire format (one request per connection):
//   request  {"cmd":"get","names":["http","admin"]}\n     (one line, at most 64 KiB,
//            at most kMaxNamesPerRequest (fd_request.h) names; a name may repeat)
//            A peer that is neither a worker's process nor root/fdsupd's uid is refused
//            at connect, before it may send anything.
//   reply    one or more messages, each one sendmsg whose data is a JSON line and whose
//            SCM_RIGHTS carries that message's fds, in the order of its "names":
//              {"ok":true,"more":false,"names":["http","admin"]}\n
//            ("more" before the names, so a reader that keeps only a line's start
//            still sees it)
//            at most kMaxFdsPerMessage fds per message; "more":true says another
//            message follows. A data line cut short by a partial write is finished
//            without fds (the fds travel with the first byte).
//   error    {"ok":false,"error":"permission denied"}\n  and no fds; then the
//            connection is closed.
//   store    {"cmd":"store","name":"conn-7"}\n with the fds to park in SCM_RIGHTS
//            (sent with the line; at most kMaxStoreFds). "name" defaults to "stored";
//            "poll":false is FDPOLL=0. Reply {"ok":true,"stored":1,"duplicates":0}\n,
//            or an error: fds that did not fit in the store (fd_store_max) are closed.
//            Fds that come with anything but a store request are closed.
// Who may have what is the caller's decision (FdAccess below); this file only talks.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "control/protocol.h"
#include "fdserver/fd_request.h"
#include "fdstore/fd_store.h"
#include "logging/log_rate_limit.h"
#include "loop/uv_handles.h"
#include "sys/paths.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace fdsup::fdserver {

constexpr size_t kMaxFdsPerMessage = 250;
// Socket copies queued for all clients together (not yet handed to the kernel): a
// peer that asks and never reads cannot fill fdsupd's fd table.
constexpr size_t kMaxQueuedFds = 2048;
// The kernel's own limit for one SCM_RIGHTS message (SCM_MAX_FD).
constexpr size_t kMaxStoreFds = 253;

// What the peer may fetch: every socket (`any`), or the names listed.
struct FdAccess {
    bool any = false;
    std::vector<std::string> names;
    std::string who;  // for the log: "web[0] (pid 42)", "uid 0 (pid 7)"
    uint64_t instance = 0;  // the worker instance the peer belongs to; 0: none
    bool main = false;      // the peer is that instance's main process
};


struct FdServerHooks {
    // Who the peer is, from its kernel credentials; an error denies it ("permission denied").
    std::function<Result<FdAccess>(pid_t pid, uid_t uid)> access;
    // The supervisor's fd for socket `name`, or -1 if there is no such socket.
    std::function<int(const std::string& name)> socket_fd;
    // Parks `fds` in the peer's fd store; an error refuses them all (closed).
    std::function<Result<StoreOutcome>(const FdAccess& peer, const std::string& name, std::vector<UniqueFd> fds,
                                     bool poll)>
        store;
};

class FdServer {
public:
    // `inherited_fd`: the socket an upgrade handed over (adopted instead of bound).
    static Result<std::unique_ptr<FdServer>> open(uv_loop_t* loop, const std::string& path, FdServerHooks hooks,
                                                  int inherited_fd = -1);
    int fd() const { return fd_.get(); }
    ~FdServer();
    FdServer(const FdServer&) = delete;
    FdServer& operator=(const FdServer&) = delete;

    const std::string& path() const { return file_.path(); }

private:
    struct Message {
        std::string data;
        std::vector<UniqueFd> fds;  // copies, closed once sent (or the client gone)
        size_t sent = 0;            // bytes of `data` already written
    };
    struct Client;

    FdServer(uv_loop_t* loop, std::string path, UniqueFd fd, FdServerHooks hooks);
    void on_accept();
    void on_client_event(uint64_t id, int events);
    void handle_request(Client& client, const std::string& line);
    void handle_store(Client& client, const FdRequest& request);
    // Reads what the client sent, fds included; false if the client was closed or
    // refused (and may be destroyed).
    bool receive(Client& client);
    void reply_error(Client& client, const std::string& message);
    // Writes what it can; false once the client is finished (all sent, or failed).
    bool flush(Client& client);
    void close_client(uint64_t id, const std::string& why);

    size_t queued_fds() const;

    uv_loop_t* loop_;
    UniqueFd fd_;
    // The file is checked (and removed) before the socket closes: while the socket is
    // open its inode cannot be reused, so a file someone else bound at the path since
    // is never taken for ours.
    OwnedPath file_;
    FdWatch watch_;
    Timer accept_pause_;
    FdServerHooks hooks_;
    std::map<uint64_t, std::unique_ptr<Client>> clients_;
    uint64_t next_client_ = 1;
    LogRateLimit refusal_log_{20, std::chrono::seconds(10)};
};

}  // namespace fdsup::fdserver
