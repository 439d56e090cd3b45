// The control socket: accepts fdsupctl connections, checks who is connecting, splits
// requests into lines and hands each to a handler; writes replies without ever
// blocking the loop. Wire format: control/protocol.h.
//
// Limits (each protects the supervisor, never another client):
//   - peers: SO_PEERCRED uid 0, the supervisor's uid, or a member of control_group
//     (primary or supplementary, SO_PEERGROUPS); others get an error and are closed
//   - at most control_max_clients connections; the next one gets an error and is closed
//   - request lines up to kMaxRequestLine; a longer one gets an error and is skipped
//   - one request at a time per connection; while it runs the connection is not read
//   - a connection with no request in flight for control_idle_timeout is closed
//   - a client that does not read is closed once more than kMaxPendingOutput bytes would
//     wait for it (one reply larger than that, with nothing else waiting, is sent whole)
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "config/model.h"
#include "logging/log_rate_limit.h"
#include "control/protocol.h"
#include "loop/uv_handles.h"
#include "sys/paths.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace fdsup::control {

class ControlServer;

// Where a request's answer goes. Copyable and safe to keep after the client has gone
// (or the server itself): then everything sent is dropped.
class Responder {
public:
    Responder() = default;
    // A progress line before the final reply.
    void progress(const std::string& message) const;
    // The final reply: the connection takes its next request after it.
    void finish(const Json& reply) const;
    // The same with the reply already encoded (one line, '\n' included).
    void finish_encoded(std::string line) const;
    // The final reply of a request that streams from now on (logs -f, events -f): the
    // connection is a stream at once, not idle (control_idle_timeout does not close a
    // quiet follower) and takes no further request.
    void finish_streaming(const Json& reply) const;
    // After finish: a line of a stream (logs -f); the connection stays busy until the
    // client goes. `on_gone` runs when it does (or at once if it already has).
    void stream(const Json& line) const;
    void on_gone(std::function<void()> callback) const;
    // What this request tells its client if fdsupd is upgraded in place before its
    // final reply (or while its stream flows): the fields added to the "upgrading"
    // notice, "resume" and "instances" (protocol.h). Called just before the exec. The
    // final reply drops it; a stream sets it after that reply.
    void on_upgrade(std::function<Json()> note) const;
    bool connected() const;
    // Which connection it answers (ControlServer::client_fd).
    uint64_t client_id() const { return client_; }

private:
    friend class ControlServer;
    Responder(std::weak_ptr<ControlServer*> server, uint64_t client) : server_(std::move(server)), client_(client) {}
    ControlServer* server() const;
    std::weak_ptr<ControlServer*> server_;
    uint64_t client_ = 0;
};

using RequestHandler = std::function<void(const Json& request, Responder responder)>;

// The settings the server reads live (reload may change the limits).
struct ControlSettings {
    std::function<config::Duration()> idle_timeout;
    std::function<int()> max_clients;
};

class ControlServer {
public:
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    // Creates the runtime directory if needed, refuses a path where a live supervisor
    // answers, replaces a stale socket file, and binds with the configured mode and group
    // (group members get read/write: the socket becomes at least 0660).
    // `inherited_fd`: the socket an upgrade handed over (adopted instead of bound).
    static Result<std::unique_ptr<ControlServer>> open(uv_loop_t* loop, const config::SupervisorConfig& config,
                                                       ControlSettings settings, RequestHandler handler,
                                                       int inherited_fd = -1);
    int fd() const { return fd_.get(); }
    // A client's connection, for an upgrade to answer on from the next image (-1 if gone).
    int client_fd(uint64_t client) const;
    // A client's uid (SO_PEERCRED at connect); nullopt if it is gone.
    std::optional<uid_t> client_uid(uint64_t client) const;
    // ... its pid, uid and gid, as SO_PEERCRED had them at connect.
    std::optional<ucred> client_credentials(uint64_t client) const;

    const std::string& path() const { return socket_file_.path(); }
    size_t client_count() const { return clients_.size(); }

    // Just before an in-place upgrade's exec: `notice` ({"upgrading": true, ...}), with
    // each request's own note (Responder::on_upgrade), goes to every client whose
    // request waits for its final reply or whose stream flows, except `except` (the
    // upgrade's own). Blocks until all of it has been written, or `budget` has passed
    // (a client that does not read then loses it). Returns how many were told.
    size_t announce_upgrade(const Json& notice, uint64_t except, std::chrono::milliseconds budget);
    // The exec failed after all: the clients told are told so ({"upgrading": false}),
    // and their requests go on.
    void upgrade_failed(const std::string& why);

private:
    friend class Responder;
    struct Client;

    ControlServer(uv_loop_t* loop, std::string path, UniqueFd fd, std::optional<gid_t> group,
                  ControlSettings settings, RequestHandler handler);

    void on_accept();
    bool peer_allowed(int fd, std::string& why) const;
    // "refused a connection: WHY", at most 20 per 10 s: anyone who may open the socket
    // file can knock, and must not be able to fill the log.
    void log_refusal(const std::string& why);
    void on_client_event(uint64_t id, int status, int events);
    // Reads once; false if the client is gone.
    bool read_from(Client& client);
    void take_requests(Client& client);
    void send(uint64_t id, std::string line, bool final, bool stream);
    // Writes what is pending; false if the client was closed.
    bool flush(Client& client);
    void update_watch(Client& client);
    void arm_idle_timer(Client& client);
    void close_client(uint64_t id, const std::string& why);
    // Best effort, for refusals: one non-blocking write, then close.
    static void refuse(UniqueFd fd, const std::string& message);

    uv_loop_t* loop_;
    UniqueFd fd_;
    // Removed at exit only if it is still ours; checked before the socket closes: while
    // the socket is open its inode cannot be reused, so a file someone else bound at the
    // path since is never taken for ours.
    OwnedPath socket_file_;
    FdWatch watch_;
    Timer accept_pause_;  // after EMFILE: accepting again a moment later
    LogRateLimit refusal_log_{20, std::chrono::seconds(10)};
    std::optional<gid_t> group_;
    ControlSettings settings_;
    RequestHandler handler_;
    std::map<uint64_t, std::unique_ptr<Client>> clients_;
    uint64_t next_client_ = 1;
    std::shared_ptr<ControlServer*> alive_;  // Responders hold it weakly
};

}  // namespace fdsup::control
