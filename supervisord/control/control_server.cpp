#include "control/control_server.h"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <vector>

#include "logging/log_hold.h"
#include "sockets/service_socket.h"
#include "sys/paths.h"
#include "sys/users.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

namespace fdsup::control {
namespace {

constexpr size_t kReadChunk = 64 * 1024;
// Requests a client may queue while one of its requests runs.
constexpr size_t kMaxBufferedInput = 1024 * 1024;
constexpr int kAcceptsPerWakeup = 64;

}  // namespace

// ---- a connection ----

struct ControlServer::Client {
    Client(uv_loop_t* loop, uint64_t id, UniqueFd fd, pid_t pid, uid_t uid, gid_t gid)
        : id(id), fd(std::move(fd)), watch(loop, this->fd.get()), idle(loop), resume(loop), pid(pid), uid(uid), gid(gid) {}
    uint64_t id;
    UniqueFd fd;
    FdWatch watch;  // after fd: unregistered before the fd closes
    Timer idle;
    Timer resume;   // takes the next queued request on the next loop turn
    LineSplitter lines{kMaxRequestLine};
    std::string out;
    size_t out_sent = 0;
    bool busy = false;       // a request is running
    bool streaming = false;  // logs -f: lines flow until the client goes
    std::vector<std::function<void()>> on_gone;
    std::function<Json()> upgrade_note;  // Responder::on_upgrade
    bool told_upgrading = false;         // announce_upgrade reached it
    pid_t pid;
    uid_t uid;
    gid_t gid;

    size_t unsent() const { return out.size() - out_sent; }
};

// ---- Responder --------------------------------------------------------------------

ControlServer* Responder::server() const {
    auto alive = server_.lock();
    return alive ? *alive : nullptr;
}

void Responder::progress(const std::string& message) const {
    if (auto* s = server()) s->send(client_, encode_line(Json{{"progress", message}}), false, false);
}

void Responder::finish(const Json& reply) const {
    if (auto* s = server()) s->send(client_, encode_line(reply), true, false);
}

void Responder::finish_encoded(std::string line) const {
    if (auto* s = server()) s->send(client_, std::move(line), true, false);
}

void Responder::finish_streaming(const Json& reply) const {
    if (auto* s = server()) s->send(client_, encode_line(reply), true, true);
}

void Responder::stream(const Json& line) const {
    if (auto* s = server()) s->send(client_, encode_line(line), false, true);
}

bool Responder::connected() const {
    auto* s = server();
    return s != nullptr && s->clients_.contains(client_);
}

void Responder::on_gone(std::function<void()> callback) const {
    ControlServer* s = server();
    if (s != nullptr) {
        if (auto it = s->clients_.find(client_); it != s->clients_.end()) {
            it->second->on_gone.push_back(std::move(callback));
            return;
        }
    }
    callback();  // already gone
}

void Responder::on_upgrade(std::function<Json()> note) const {
    ControlServer* s = server();
    if (s == nullptr) return;
    if (auto it = s->clients_.find(client_); it != s->clients_.end()) it->second->upgrade_note = std::move(note);
}

// ---- the server -------------------------------------------------------------------

ControlServer::ControlServer(uv_loop_t* loop, std::string path, UniqueFd fd, std::optional<gid_t> group,
                             ControlSettings settings, RequestHandler handler)
    : loop_(loop), fd_(std::move(fd)), socket_file_(std::move(path)), watch_(loop, fd_.get()), accept_pause_(loop),
      group_(group), settings_(std::move(settings)), handler_(std::move(handler)),
      alive_(std::make_shared<ControlServer*>(this)) {}

ControlServer::~ControlServer() {
    *alive_ = nullptr;
    while (!clients_.empty()) close_client(clients_.begin()->first, "fdsupd is exiting");
}

Result<std::unique_ptr<ControlServer>> ControlServer::open(uv_loop_t* loop, const config::SupervisorConfig& config,
                                                          ControlSettings settings, RequestHandler handler,
                                                          int inherited_fd) {
    const std::string& path = config.control_socket;
    const std::string what = "control socket " + path;
    std::optional<gid_t> group;
    if (config.control_group) {
        auto gid = find_group(*config.control_group);
        if (!gid) return fail(what + ": control_group: " + gid.error().text());
        group = *gid;
    }
    auto fd = open_service_socket({what, path, false, static_cast<mode_t>(config.control_mode | (group ? 0060 : 0)),
                                   config.control_group, inherited_fd});
    if (!fd) return std::unexpected(fd.error());

    std::unique_ptr<ControlServer> server(
        new ControlServer(loop, path, std::move(*fd), group, std::move(settings), std::move(handler)));
    if (!server->watch_.ok() || server->watch_.start(UV_READABLE, [s = server.get()](int, int) { s->on_accept(); }) != 0)
        return fail(what + ": cannot watch the socket");
    return server;
}

int ControlServer::client_fd(uint64_t client) const {
    auto it = clients_.find(client);
    return it == clients_.end() ? -1 : it->second->fd.get();
}

std::optional<uid_t> ControlServer::client_uid(uint64_t client) const {
    auto it = clients_.find(client);
    if (it == clients_.end()) return std::nullopt;
    return it->second->uid;
}

std::optional<ucred> ControlServer::client_credentials(uint64_t client) const {
    auto it = clients_.find(client);
    if (it == clients_.end()) return std::nullopt;
    return ucred{it->second->pid, it->second->uid, it->second->gid};
}

void ControlServer::refuse(UniqueFd fd, const std::string& message) {
    std::string line = encode_line(error_reply(message));
    (void)!::send(fd.get(), line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

bool ControlServer::peer_allowed(int fd, std::string& why) const {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        why = std::string("cannot check the peer's credentials: ") + std::strerror(errno);
        return false;
    }
    if (cred.uid == 0 || cred.uid == ::geteuid()) return true;
    if (group_) {
        if (cred.gid == *group_) return true;
        std::vector<gid_t> groups(64);
        for (int attempt = 0; attempt < 2; ++attempt) {
            socklen_t size = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
            if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &size) == 0) {
                for (size_t i = 0; i < size / sizeof(gid_t); ++i)
                    if (groups[i] == *group_) return true;
                break;
            }
            if (errno != ERANGE) break;
            groups.resize(size / sizeof(gid_t) + 1);  // the kernel said how many there are
        }
    }
    why = "permission denied: uid " + std::to_string(cred.uid) + " (pid " + std::to_string(cred.pid) +
          ") may not use the control socket";
    return false;
}

void ControlServer::log_refusal(const std::string& why) {
    uint64_t suppressed = 0;
    if (refusal_log_.allow(Clock::now(), suppressed))
        spdlog::warn("control socket: refused a connection: {}{}", why,
                     LogRateLimit::left_out(suppressed, "refused"));
}

void ControlServer::on_accept() {
    for (int i = 0; i < kAcceptsPerWakeup; ++i) {
        UniqueFd fd(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
        if (!fd) {
            if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) return;
            // Out of fds (or memory): a level-triggered watch would spin. Pause accepting
            // for a moment; the connection waits in the backlog meanwhile.
            spdlog::error("control socket: accept: {}; pausing accepts for 250ms", std::strerror(errno));
            watch_.stop();
            accept_pause_.start(std::chrono::milliseconds(250), [this] {
                (void)watch_.start(UV_READABLE, [this](int, int) { on_accept(); });
            });
            return;
        }
        std::string why;
        if (!peer_allowed(fd.get(), why)) {
            log_refusal(why);
            refuse(std::move(fd), why);
            continue;
        }
        int limit = settings_.max_clients();
        if (static_cast<int>(clients_.size()) >= limit) {
            log_refusal(std::to_string(clients_.size()) + " clients already connected");
            refuse(std::move(fd), "too many control connections (" + std::to_string(limit) + "); try again");
            continue;
        }
        ucred cred{};
        socklen_t len = sizeof cred;
        (void)::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len);
        uint64_t id = next_client_++;
        auto client = std::make_unique<Client>(loop_, id, std::move(fd), cred.pid, cred.uid, cred.gid);
        if (!client->watch.ok()) {
            spdlog::error("control socket: cannot watch a new connection; closed");
            continue;
        }
        spdlog::debug("control client {}: connected (pid {}, uid {})", id, cred.pid, cred.uid);
        Client& added = *client;
        clients_.emplace(id, std::move(client));
        update_watch(added);
        arm_idle_timer(added);
    }
}

void ControlServer::update_watch(Client& client) {
    int events = UV_READABLE | UV_DISCONNECT;
    if (client.unsent() > 0) events |= UV_WRITABLE;
    uint64_t id = client.id;
    if (client.watch.start(events, [this, id](int status, int ev) { on_client_event(id, status, ev); }) != 0)
        close_client(id, "cannot watch the connection");
}

void ControlServer::arm_idle_timer(Client& client) {
    if (client.busy || client.streaming) {
        client.idle.stop();
        return;
    }
    uint64_t id = client.id;
    auto timeout = settings_.idle_timeout();
    client.idle.start(timeout, [this, id, timeout] {
        close_client(id, "idle for " + std::to_string(timeout.count()) + "ms");
    });
}

void ControlServer::on_client_event(uint64_t id, int status, int events) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    Client& client = *it->second;
    if (status < 0) return close_client(id, std::string("connection error: ") + uv_strerror(status));
    if ((events & UV_WRITABLE) && !flush(client)) return;
    if (events & (UV_READABLE | UV_DISCONNECT)) {
        if (!read_from(client)) return;
        take_requests(client);
    }
}

bool ControlServer::read_from(Client& client) {
    static std::array<char, kReadChunk> buffer;  // one loop thread
    ssize_t n = ::recv(client.fd.get(), buffer.data(), buffer.size(), MSG_DONTWAIT);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return true;
        close_client(client.id, std::string("read: ") + std::strerror(errno));
        return false;
    }
    if (n == 0) {
        close_client(client.id, "closed by the client");
        return false;
    }
    client.lines.feed(std::string_view(buffer.data(), static_cast<size_t>(n)));
    if ((client.busy || client.streaming) && client.lines.pending() > kMaxBufferedInput) {
        close_client(client.id, "sent more than 1 MiB while its request was running");
        return false;
    }
    arm_idle_timer(client);
    return true;
}

void ControlServer::take_requests(Client& client) {
    uint64_t id = client.id;
    while (true) {
        auto it = clients_.find(id);
        if (it == clients_.end()) return;  // dropped while handling the last request
        Client& c = *it->second;
        if (c.busy || c.streaming) return;
        auto line = c.lines.next();
        if (!line) return;
        if (line->too_long) {
            send(id, encode_line(error_reply("request line longer than " + std::to_string(kMaxRequestLine) +
                                             " bytes; skipped")),
                 true, false);
            continue;
        }
        auto request = decode_line(line->text);
        if (!request) {
            send(id, encode_line(error_reply(request.error().text())), true, false);
            continue;
        }
        c.busy = true;
        c.idle.stop();
        handler_(*request, Responder(alive_, id));
    }
}

void ControlServer::send(uint64_t id, std::string line, bool final, bool stream) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    write_held_log();  // what the line tells of is in fdsupd's log first
    Client& client = *it->second;
    // What waits unread is the measure, not one reply's size: the metrics or status of
    // 10,000 instances is more than the bound by itself, and is sent whole.
    if (client.unsent() > 0 && client.unsent() + line.size() > kMaxPendingOutput)
        return close_client(id, "not reading its replies (" + std::to_string(client.unsent() + line.size()) +
                                    " bytes would wait)");
    if (client.out_sent > 0 && client.out_sent == client.out.size()) {
        client.out.clear();
        client.out_sent = 0;
    }
    if (client.out.empty()) client.out = std::move(line);  // a reply of megabytes is not copied
    else client.out += line;
    if (final) {
        client.busy = false;
        client.upgrade_note = nullptr;
    }
    if (stream) client.streaming = true;
    if (!flush(client)) return;
    if (final) {
        arm_idle_timer(client);
        // Requests queued meanwhile run on the next loop turn, not inside whatever
        // callback finished this one.
        if (client.lines.pending() > 0)
            client.resume.start(std::chrono::milliseconds(0), [this, id] {
                if (auto c = clients_.find(id); c != clients_.end()) take_requests(*c->second);
            });
    }
}

bool ControlServer::flush(Client& client) {
    while (client.unsent() > 0) {
        ssize_t n = ::send(client.fd.get(), client.out.data() + client.out_sent, client.unsent(),
                           MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            close_client(client.id, std::string("write: ") + std::strerror(errno));
            return false;
        }
        client.out_sent += static_cast<size_t>(n);
        arm_idle_timer(client);  // progress: a slow reader is not an idle one
    }
    if (client.unsent() == 0) {
        client.out.clear();
        client.out_sent = 0;
    } else if (client.out_sent > kMaxPendingOutput / 2) {
        client.out.erase(0, client.out_sent);
        client.out_sent = 0;
    }
    update_watch(client);
    return clients_.contains(client.id);
}

size_t ControlServer::announce_upgrade(const Json& notice, uint64_t except, std::chrono::milliseconds budget) {
    std::vector<Client*> told;
    for (auto& [id, client] : clients_) {
        if (id == except || !(client->busy || client->streaming)) continue;
        Json line = notice;
        if (client->upgrade_note) {
            try {
                Json note = client->upgrade_note();
                for (auto& [key, value] : note.items()) line[key] = value;
            } catch (const std::exception& e) {  // a bug in a note must not stop the upgrade
                spdlog::error("control client {}: its upgrade note failed: {}", id, e.what());
            }
        }
        // After whatever is still unsent: lines stay whole.
        client->out += encode_line(line);
        client->told_upgrading = true;
        told.push_back(client.get());
    }
    // The exec closes every connection: written now, waiting for slow readers up to
    // `budget` in all (the loop does not run again in this image).
    auto deadline = std::chrono::steady_clock::now() + budget;
    for (;;) {
        std::vector<pollfd> waiting;
        for (Client* client : told) {
            while (client->unsent() > 0) {
                ssize_t n = ::send(client->fd.get(), client->out.data() + client->out_sent, client->unsent(),
                                   MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && errno == EINTR) continue;
                if (n < 0) break;
                client->out_sent += static_cast<size_t>(n);
            }
            if (client->unsent() > 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                waiting.push_back({client->fd.get(), POLLOUT, 0});
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (waiting.empty() || left.count() <= 0) {
            if (!waiting.empty())
                spdlog::warn("upgrade: {} control client(s) did not take the upgrade notice in time", waiting.size());
            break;
        }
        if (::poll(waiting.data(), waiting.size(), static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    }
    return told.size();
}

void ControlServer::upgrade_failed(const std::string& why) {
    std::vector<uint64_t> told;
    for (auto& [id, client] : clients_)
        if (client->told_upgrading) told.push_back(id);
    for (uint64_t id : told) {
        auto it = clients_.find(id);
        if (it == clients_.end()) continue;
        it->second->told_upgrading = false;
        send(id, encode_line(Json{{"upgrading", false}, {"error", why}}), false, false);
    }
}

void ControlServer::close_client(uint64_t id, const std::string& why) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    std::unique_ptr<Client> client = std::move(it->second);
    clients_.erase(it);
    spdlog::debug("control client {} (pid {}): closed: {}", id, client->pid, why);
    if (why.rfind("not reading", 0) == 0 || why.rfind("sent more", 0) == 0)
        spdlog::warn("control client {} (pid {}): dropped: {}", id, client->pid, why);
    for (auto& callback : client->on_gone) callback();
}

}  // namespace fdsup::control
