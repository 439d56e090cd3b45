#include "control/metrics_server.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "sockets/bind.h"
#include "config/listen_address.h"

namespace fdsup::control {

struct MetricsServer::Client {
    Client(uv_loop_t* loop, uint64_t id, UniqueFd socket)
        : id(id), fd(std::move(socket)), watch(loop, fd.get()), timeout(loop) {}
    uint64_t id;  // also the order they came in
    bool replying = false;
    UniqueFd fd;
    FdWatch watch;  // after fd: stopped before it closes
    Timer timeout;
    std::string request;
    std::string reply;
    size_t sent = 0;
};

Result<std::unique_ptr<MetricsServer>> MetricsServer::open(uv_loop_t* loop, const std::string& listen,
                                                           Pages pages) {
    config::SocketConfig cfg;
    cfg.name = "metrics";
    cfg.listen = "tcp://" + listen;
    auto address = parse_listen_address(cfg.listen);
    if (!address) return fail("metrics_listen \"" + listen + "\": " + address.error().text());
    cfg.address = *address;
    cfg.backlog = 64;
    auto bound = bind_socket(cfg);
    if (!bound) return std::unexpected(bound.error());
    // Unlike a worker's listener, this one is ours to accept on: non-blocking.
    if (::fcntl(bound->fd.get(), F_SETFL, O_NONBLOCK) < 0) return fail_errno("metrics: fcntl");
    std::unique_ptr<MetricsServer> server(new MetricsServer(loop, std::move(bound->fd), bound->bound, std::move(pages)));
    if (!server->watch_.ok() ||
        server->watch_.start(UV_READABLE, [s = server.get()](int, int) { s->on_accept(); }) != 0)
        return fail("metrics: cannot watch the listening socket");
    return server;
}

MetricsServer::MetricsServer(uv_loop_t* loop, UniqueFd fd, std::string bound, Pages pages)
    : loop_(loop), fd_(std::move(fd)), bound_(std::move(bound)), pages_(std::move(pages)), watch_(loop, fd_.get()),
      accept_pause_(loop) {}

MetricsServer::~MetricsServer() = default;

void MetricsServer::on_accept() {
    for (;;) {
        UniqueFd socket(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
        if (!socket) {
            // Out of fds: the pending connection stays pending and the listener readable;
            // pause instead of spinning, and try again in a moment.
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                watch_.stop();
                accept_pause_.start(std::chrono::milliseconds(100), [this] {
                    watch_.start(UV_READABLE, [this](int, int) { on_accept(); });
                });
            }
            return;  // EAGAIN, or an error for that one connection only
        }
        if (clients_.size() >= kMaxClients) {
            // Full: the oldest connection still without a whole request goes (an idle
            // one must not lock scrapers out); if every one is being answered, this one.
            auto idle = std::find_if(clients_.begin(), clients_.end(), [](const auto& c) { return !c.second->replying; });
            if (idle == clients_.end()) continue;
            clients_.erase(idle);
        }
        uint64_t id = next_id_++;
        auto client = std::make_unique<Client>(loop_, id, std::move(socket));
        Client& c = *client;
        if (!c.watch.ok() || c.watch.start(UV_READABLE, [this, &c](int, int) { on_readable(c); }) != 0) continue;
        c.timeout.start(std::chrono::duration_cast<std::chrono::milliseconds>(kTimeout), [this, id] { close(id); });
        clients_.emplace(id, std::move(client));
    }
}

void MetricsServer::on_readable(Client& c) {
    char buffer[4096];
    ssize_t n = ::read(c.fd.get(), buffer, sizeof buffer);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) return close(c.id);
    c.request.append(buffer, static_cast<size_t>(n));
    size_t head_end = c.request.find("\r\n\r\n");
    if (head_end == std::string::npos) head_end = c.request.find("\n\n");
    if (head_end == std::string::npos) {
        if (c.request.size() > kMaxRequest) respond(c, 431, "Request Header Fields Too Large", "request too large\n", "text/plain");
        return;
    }
    // "GET /metrics HTTP/1.1"
    std::string line = c.request.substr(0, c.request.find_first_of("\r\n"));
    size_t first = line.find(' ');
    size_t second = first == std::string::npos ? std::string::npos : line.find(' ', first + 1);
    if (second == std::string::npos || line.compare(second + 1, 5, "HTTP/") != 0)
        return respond(c, 400, "Bad Request", "bad request\n", "text/plain");
    std::string method = line.substr(0, first);
    std::string path = line.substr(first + 1, second - first - 1);
    if (size_t query = path.find('?'); query != std::string::npos) path.resize(query);
    if (method != "GET" && method != "HEAD") return respond(c, 405, "Method Not Allowed", "only GET\n", "text/plain");
    auto page = pages_.find(path);
    if (page == pages_.end()) {
        std::string paths;
        for (const auto& [known, make] : pages_) paths += (paths.empty() ? "" : ", ") + known;
        return respond(c, 404, "Not Found", "not found; this server has " + paths + "\n", "text/plain");
    }
    Page made = page->second();
    respond(c, made.code, made.code == 200 ? "OK" : made.code == 503 ? "Service Unavailable" : "Error", made.body,
            made.type, method == "HEAD");
}

void MetricsServer::respond(Client& c, int code, const char* reason, const std::string& body, const char* type,
                            bool head_only) {
    c.reply = "HTTP/1.1 " + std::to_string(code) + " " + reason + "\r\nContent-Type: " + type +
              "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
    if (!head_only) c.reply += body;
    c.sent = 0;
    c.replying = true;
    c.watch.stop();
    if (c.watch.start(UV_WRITABLE, [this, &c](int, int) { on_writable(c); }) != 0) close(c.id);
}

void MetricsServer::on_writable(Client& c) {
    while (c.sent < c.reply.size()) {
        ssize_t n = ::send(c.fd.get(), c.reply.data() + c.sent, c.reply.size() - c.sent, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;  // the rest when writable again
        if (n <= 0) return close(c.id);
        c.sent += static_cast<size_t>(n);
    }
    ::shutdown(c.fd.get(), SHUT_WR);
    close(c.id);
}

void MetricsServer::close(uint64_t id) { clients_.erase(id); }

}  // namespace fdsup::control
