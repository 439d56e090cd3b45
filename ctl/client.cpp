#include "ctl/client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace fdsup::ctl {

namespace {

constexpr size_t kReadChunk = 256 * 1024;

// connect() interrupted by a signal goes on in the background; its outcome is reported
// once the socket is writable.
int wait_for_interrupted_connect(int fd) {
    pollfd waiting{fd, POLLOUT, 0};
    while (::poll(&waiting, 1, -1) < 0) {
        if (errno != EINTR) return errno;
    }
    int error = 0;
    socklen_t length = sizeof error;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) < 0) return errno;
    return error;
}

}  // namespace

Client::Client(UniqueFd fd, std::string socket_path)
    : fd_(std::move(fd)), socket_path_(std::move(socket_path)) {}

Result<Client> Client::connect(std::string socket_path) {
    std::string unreachable = "cannot reach fdsupd at " + socket_path;
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (socket_path.empty() || socket_path.size() >= sizeof address.sun_path)
        return fail(unreachable + ": the path does not fit in a unix socket address");
    std::memcpy(address.sun_path, socket_path.data(), socket_path.size());

    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return fail_errno(unreachable + ": socket");
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) < 0) {
        if (errno != EINTR) return fail_errno(unreachable);
        if (int error = wait_for_interrupted_connect(fd.get()); error != 0) return fail(unreachable, error);
    }
    Client client(std::move(fd), std::move(socket_path));
    ucred peer{};
    socklen_t length = sizeof peer;
    if (::getsockopt(client.fd_.get(), SOL_SOCKET, SO_PEERCRED, &peer, &length) == 0) client.server_pid_ = peer.pid;
    return client;
}

bool is_upgrading(const Json& line) {
    auto it = line.find("upgrading");
    return it != line.end() && it->is_boolean() && it->get<bool>();
}

Result<void> Client::send(const Json& request) {
    return send_lines({request});
}

Result<void> Client::send_lines(const std::vector<Json>& requests) {
    std::string line;
    for (const auto& request : requests) line += control::encode_line(request);
    size_t sent = 0;
    while (sent < line.size()) {
        // MSG_NOSIGNAL: a closed peer is an EPIPE to report, not a SIGPIPE that kills us.
        ssize_t n = ::send(fd_.get(), line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_errno("cannot send the request to fdsupd at " + socket_path_);
        }
        sent += static_cast<size_t>(n);
    }
    return {};
}

Result<std::optional<Reply>> Client::next_line(std::optional<std::chrono::steady_clock::time_point> deadline) {
    for (;;) {
        if (auto line = splitter_.next()) {
            if (line->too_long) return fail("a reply line from fdsupd at " + socket_path_ + " is over 256 MiB");
            return decoded(std::move(line->text));
        }
        if (closed_) return std::optional<Reply>{};

        if (deadline) {
            auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - std::chrono::steady_clock::now());
            pollfd readable{fd_.get(), POLLIN, 0};
            int ready = left.count() > 0 ? ::poll(&readable, 1, static_cast<int>(left.count())) : 0;
            if (ready < 0 && errno == EINTR) continue;
            if (ready < 0) return fail_errno("poll the connection to fdsupd at " + socket_path_);
            if (ready == 0) return fail("fdsupd at " + socket_path_ + " did not answer in time");
        }
        // Read straight onto the end of partial_ (a reply of megabytes is not copied
        // piece by piece from a read buffer), growing it fourfold: fewer copies, and
        // fewer fresh pages to fault in.
        size_t held = partial_.size();
        if (partial_.capacity() - held < kReadChunk)  // no further than the longest line needs
            partial_.reserve(std::max(held + kReadChunk, std::min(4 * partial_.capacity(), kMaxReplyLine + kReadChunk)));
        ssize_t n = 0;
        partial_.resize_and_overwrite(held + kReadChunk, [&](char* bytes, size_t) {
            n = ::read(fd_.get(), bytes + held, kReadChunk);
            return held + static_cast<size_t>(std::max<ssize_t>(n, 0));
        });
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_errno("read from fdsupd at " + socket_path_);
        }
        if (n == 0) {
            closed_ = true;
            // A last line without its newline still counts.
            if (!partial_.empty() || splitter_.pending() > 0) splitter_.feed(partial_ + "\n");
            partial_.clear();
            continue;
        }
        // LineSplitter searches its whole buffer on every feed, so a line of many
        // megabytes fed in read-sized pieces costs quadratic time. Holding back pieces
        // until one completes a line keeps reading linear.
        std::string_view chunk = std::string_view(partial_).substr(held);
        size_t newline = chunk.find('\n');
        if (newline == std::string_view::npos) {
            if (partial_.size() > kMaxReplyLine)
                return fail("a reply line from fdsupd at " + socket_path_ + " is over 256 MiB");
            continue;
        }
        if (held + newline + 1 == partial_.size() && splitter_.pending() == 0 && held + newline <= kMaxReplyLine) {
            // Exactly one whole line (a reply, as a rule): it is the line, without a copy.
            partial_.pop_back();
            std::string line = std::move(partial_);
            partial_.clear();  // a moved-from string is not promised empty
            return decoded(std::move(line));
        }
        splitter_.feed(partial_);
        partial_.clear();
    }
}

Result<std::optional<Reply>> Client::decoded(std::string line) {
    auto value = skipped_member_.empty() ? control::decode_line(line) : control::decode_line_without(line, skipped_member_);
    if (!value) {
        std::string shown = line.size() > 80 ? line.substr(0, 80) + "..." : line;
        return fail("fdsupd at " + socket_path_ + " sent a line that is not a JSON object: " + shown);
    }
    return std::optional<Reply>(Reply{std::move(*value), std::move(line)});
}

Result<Reply> Client::read_reply(const std::function<void(const Json& progress_line)>& on_progress,
                                 std::optional<std::chrono::steady_clock::time_point> deadline) {
    for (;;) {
        auto line = next_line(deadline);
        if (!line) return std::unexpected(line.error());
        if (!*line) return fail("connection to fdsupd at " + socket_path_ + " closed before the reply");
        Reply& reply = **line;
        if (reply.value.contains("ok") || is_upgrading(reply.value)) return std::move(reply);
        if (reply.value.contains("progress") && on_progress) on_progress(reply.value);
    }
}

Result<std::optional<Reply>> Client::follow_logs(
    const std::function<bool(const Json& log_line, std::string_view raw)>& on_log, const char* key) {
    for (;;) {
        auto line = next_line();
        if (!line) return std::unexpected(line.error());
        if (!*line) return std::optional<Reply>{};  // fdsupd closed the connection: the stream is over
        if (is_upgrading((*line)->value)) return std::move(*line);
        if (!(*line)->value.contains(key)) continue;
        if (!on_log((*line)->value, (*line)->line)) return std::optional<Reply>{};
    }
}

bool Client::upgrade_went_ahead() {
    for (;;) {
        auto line = next_line();
        // A read error (ECONNRESET) is the connection going as well.
        if (!line || !*line) return true;
        auto upgrading = (*line)->value.find("upgrading");
        if (upgrading != (*line)->value.end() && upgrading->is_boolean() && !upgrading->get<bool>()) return false;
    }
}

}  // namespace fdsup::ctl
