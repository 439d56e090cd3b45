#include "fdserver/fd_server.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "control/protocol.h"
#include "sockets/service_socket.h"
#include "sys/process.h"
#include "sys/scm_rights.h"

namespace fdsup::fdserver {
namespace {

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77  // Linux 6.5
#endif

constexpr size_t kMaxClients = 64;

// Best effort, before a peer becomes a client: one non-blocking line, then it is closed.
void refuse(int fd, const std::string& message) {
    std::string line = control::encode_line(control::error_reply(message));
    (void)!::send(fd, line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
}
constexpr auto kClientTimeout = std::chrono::seconds(10);

}  // namespace

struct FdServer::Client {
    Client(uv_loop_t* loop, uint64_t id, UniqueFd fd, UniqueFd pidfd, pid_t pid, uid_t uid)
        : id(id), fd(std::move(fd)), pidfd(std::move(pidfd)), watch(loop, this->fd.get()), timeout(loop), pid(pid),
          uid(uid) {}
    uint64_t id;
    UniqueFd fd;
    UniqueFd pidfd;  // the peer process itself (SO_PEERPIDFD), when the kernel has it
    FdWatch watch;
    Timer timeout;  // a client that neither asks nor reads in time is closed
    pid_t pid;
    uid_t uid;
    FdAccess access;        // decided at connect
    std::string input;
    std::vector<UniqueFd> received;  // fds sent with the request (a store)
    bool answered = false;  // one request per connection
    std::vector<Message> out;
};

FdServer::FdServer(uv_loop_t* loop, std::string path, UniqueFd fd, FdServerHooks hooks)
    : loop_(loop), fd_(std::move(fd)), file_(std::move(path)), watch_(loop, fd_.get()), accept_pause_(loop),
      hooks_(std::move(hooks)) {}

FdServer::~FdServer() {
    while (!clients_.empty()) close_client(clients_.begin()->first, "fdsupd is exiting");
}

Result<std::unique_ptr<FdServer>> FdServer::open(uv_loop_t* loop, const std::string& path, FdServerHooks hooks,
                                                 int inherited_fd) {
    auto bound = open_service_socket({"fd socket " + path, path, false, 0666, std::nullopt, inherited_fd});
    if (!bound) return std::unexpected(bound.error());
    std::unique_ptr<FdServer> server(new FdServer(loop, path, std::move(*bound), std::move(hooks)));
    if (!server->watch_.ok() || server->watch_.start(UV_READABLE, [s = server.get()](int, int) { s->on_accept(); }) != 0)
        return fail("fd socket " + path + ": cannot watch the socket");
    return server;
}

void FdServer::on_accept() {
    for (int i = 0; i < 64; ++i) {
        UniqueFd fd(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
        if (!fd) {
            if (errno == EMFILE || errno == ENFILE) {  // do not spin on a full table
                watch_.stop();
                accept_pause_.start(std::chrono::milliseconds(250), [this] {
                    watch_.start(UV_READABLE, [this](int, int) { on_accept(); });
                });
            }
            return;
        }
        ucred peer{};
        socklen_t size = sizeof peer;
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &peer, &size) < 0 || clients_.size() >= kMaxClients) {
            refuse(fd.get(), "too many clients");
            continue;
        }
        // The peer as a process handle: its pid may be reused once it exits, its pidfd
        // not (SO_PEERPIDFD since Linux 6.5; before, pidfd_open now, a moment later).
        int peer_pidfd = -1;
        socklen_t pidfd_size = sizeof peer_pidfd;
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERPIDFD, &peer_pidfd, &pidfd_size) < 0)
            peer_pidfd = static_cast<int>(::syscall(SYS_pidfd_open, peer.pid, 0));
        UniqueFd pidfd(peer_pidfd);
        // Decided now, from the pid's process tree, while the peer is known to be that
        // pid (its pidfd shows it has not exited). Nobody else gets to send a byte.
        auto access = hooks_.access(peer.pid, peer.uid);
        if (access && (!pidfd || pidfd_exited(pidfd.get()))) access = fail("the connecting process has exited");
        if (!access) {
            uint64_t suppressed = 0;
            if (refusal_log_.allow(Clock::now(), suppressed))
                spdlog::warn("fd socket: pid {} (uid {}) refused: {}{}", peer.pid, peer.uid, access.error().text(),
                             LogRateLimit::left_out(suppressed, "refused"));
            refuse(fd.get(), "permission denied");
            continue;
        }
        uint64_t id = next_client_++;
        auto client = std::make_unique<Client>(loop_, id, std::move(fd), std::move(pidfd), peer.pid, peer.uid);
        client->access = std::move(*access);
        Client& c = *client;
        clients_.emplace(id, std::move(client));
        c.timeout.start(kClientTimeout, [this, id] { close_client(id, "timed out"); });
        if (!c.watch.ok() || c.watch.start(UV_READABLE, [this, id](int, int events) { on_client_event(id, events); }) != 0)
            close_client(id, "cannot watch the connection");
    }
}

void FdServer::on_client_event(uint64_t id, int events) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    Client& client = *it->second;
    if (client.answered) {
        if (events & UV_WRITABLE) flush(client);
        return;
    }
    if (!receive(client)) return;  // closed, or refused (and maybe gone): `client` is not to be used
    size_t newline = client.input.find('\n');
    if (newline == std::string::npos) {
        if (client.input.size() > control::kMaxRequestLine) reply_error(client, "request line over 64 KiB");
        return;
    }
    handle_request(client, client.input.substr(0, newline));
}

bool FdServer::receive(Client& client) {
    char buffer[4096];
    iovec iov{buffer, sizeof buffer};
    alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int) * kMaxStoreFds)> control{};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    ssize_t n = ::recvmsg(client.fd.get(), &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        close_client(client.id, "closed before asking");
        return false;
    }
    if (n < 0) return true;
    size_t before = client.received.size();
    take_scm_rights(msg, client.received);
    client.input.append(buffer, static_cast<size_t>(n));
    // A refusal may finish (and destroy) the client: report that it is not to be used.
    if (msg.msg_flags & MSG_CTRUNC) {
        reply_error(client, "too many fds in one message (at most " + std::to_string(kMaxStoreFds) + ")");
        return false;
    }
    if (client.received.size() > kMaxStoreFds) {
        reply_error(client, "too many fds in one request (at most " + std::to_string(kMaxStoreFds) + ")");
        return false;
    }
    if (client.received.size() > before && queued_fds() > kMaxQueuedFds) {
        reply_error(client, "too many fds in flight to and from fdsupd; try again");
        return false;
    }
    return true;
}

void FdServer::reply_error(Client& client, const std::string& message) {
    client.answered = true;
    client.received.clear();  // fds nobody asked for are closed
    client.out.push_back({control::encode_line(control::error_reply(message)), {}, 0});
    flush(client);
}

void FdServer::handle_request(Client& client, const std::string& line) {
    auto request = parse_fd_request(line);
    if (!request) return reply_error(client, request.error().text());
    if (request->kind == FdRequest::Kind::store) return handle_store(client, *request);
    if (!client.received.empty()) return reply_error(client, "fds sent with a get request; closed");
    const std::vector<std::string>& names = request->names;

    const FdAccess* access = &client.access;
    for (const auto& name : names) {
        bool allowed = access->any ||
                       std::find(access->names.begin(), access->names.end(), name) != access->names.end();
        if (!allowed) {
            uint64_t suppressed = 0;
            if (refusal_log_.allow(Clock::now(), suppressed))
                spdlog::warn("fd socket: {} asked for socket \"{}\", which is not its own; refused", access->who, name);
            return reply_error(client, "permission denied");
        }
        if (hooks_.socket_fd(name) < 0) return reply_error(client, "unknown socket \"" + name + "\"");
    }
    if (queued_fds() + names.size() > kMaxQueuedFds)
        return reply_error(client, "too many sockets waiting to be sent to other clients; try again");
    // Copies, so a reload that closes a socket meanwhile cannot pull an fd from under us.
    client.answered = true;
    for (size_t start = 0; start < names.size() || start == 0; start += kMaxFdsPerMessage) {
        size_t end = std::min(names.size(), start + kMaxFdsPerMessage);
        Message message;
        control::Json batch = control::Json::array();
        for (size_t i = start; i < end; ++i) {
            UniqueFd copy(::fcntl(hooks_.socket_fd(names[i]), F_DUPFD_CLOEXEC, 3));
            if (!copy) {
                client.out.clear();
                return reply_error(client, std::string("cannot copy the socket: ") + std::strerror(errno));
            }
            message.fds.push_back(std::move(copy));
            batch.push_back(names[i]);
        }
        message.data = control::encode_line(
            control::Json{{"ok", true}, {"more", end < names.size()}, {"names", std::move(batch)}});
        client.out.push_back(std::move(message));
    }
    spdlog::debug("fd socket: {} fetched {} socket(s)", access->who, names.size());
    flush(client);
}

void FdServer::handle_store(Client& client, const FdRequest& request) {
    if (client.received.empty()) return reply_error(client, "a store request needs fds (SCM_RIGHTS, sent with the line)");
    auto stored = hooks_.store(client.access, request.store_name, std::move(client.received), request.poll);
    client.received.clear();
    if (!stored) {
        uint64_t suppressed = 0;
        if (refusal_log_.allow(Clock::now(), suppressed))
            spdlog::warn("fd socket: {} may not store fds: {}", client.access.who, stored.error().text());
        return reply_error(client, stored.error().text());
    }
    if (stored->over_limit > 0)
        return reply_error(client, "the fd store is full (fd_store_max): " + std::to_string(stored->stored) +
                                       " stored, " + std::to_string(stored->over_limit) + " closed");
    client.answered = true;
    client.out.push_back({control::encode_line(control::Json{
                              {"ok", true}, {"stored", stored->stored}, {"duplicates", stored->duplicates}}),
                          {},
                          0});
    flush(client);
}

bool FdServer::flush(Client& client) {
    uint64_t id = client.id;
    while (!client.out.empty()) {
        Message& message = client.out.front();
        iovec iov{message.data.data() + message.sent, message.data.size() - message.sent};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)> control{};
        if (message.sent == 0 && !message.fds.empty()) {
            msg.msg_control = control.data();
            msg.msg_controllen = CMSG_SPACE(sizeof(int) * message.fds.size());
            cmsghdr* c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int) * message.fds.size());
            auto* out = reinterpret_cast<int*>(CMSG_DATA(c));
            for (size_t i = 0; i < message.fds.size(); ++i) out[i] = message.fds[i].get();
        }
        ssize_t n = ::sendmsg(client.fd.get(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                client.watch.start(UV_WRITABLE, [this, id](int, int events) { on_client_event(id, events); });
                return true;
            }
            close_client(id, std::string("send: ") + std::strerror(errno));
            return false;
        }
        message.fds.clear();  // the kernel holds them now (they went with the first byte)
        message.sent += static_cast<size_t>(n);
        if (message.sent == message.data.size()) client.out.erase(client.out.begin());
    }
    // Closing with unread input would reset the connection, and the client might lose
    // the reply: end our side, drop what it sent beyond the request, then close.
    ::shutdown(client.fd.get(), SHUT_WR);
    char discard[4096];
    for (int i = 0; i < 16 && ::recv(client.fd.get(), discard, sizeof discard, MSG_DONTWAIT) > 0; ++i) {
    }
    close_client(id, "answered");
    return false;
}

size_t FdServer::queued_fds() const {
    size_t count = 0;
    for (const auto& [id, client] : clients_) {
        count += client->received.size();
        for (const auto& message : client->out) count += message.fds.size();
    }
    return count;
}

void FdServer::close_client(uint64_t id, const std::string& why) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    spdlog::debug("fd socket client (pid {}): {}", it->second->pid, why);
    clients_.erase(it);  // the watch goes before the fd (member order), queued fds close
}

}  // namespace fdsup::fdserver
