#include "health/http_check.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "health/probe_report.h"
#include "health/stream_connect.h"
#include "loop/uv_handles.h"

namespace fdsup::health {

namespace {

std::string request_for(const config::HttpUrl& url) {
    return "GET " + url.path + " HTTP/1.1\r\nHost: " + url.host_header +
           "\r\nUser-Agent: fdsup-probe\r\nConnection: close\r\n\r\n";
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// "HTTP/1.1 200 OK" -> 200; nullopt unless it is "HTTP/D.D DDD" followed by a space or
// nothing.
std::optional<int> status_code(std::string_view line) {
    if (line.size() < 12 || !line.starts_with("HTTP/") || !is_digit(line[5]) || line[6] != '.' ||
        !is_digit(line[7]) || line[8] != ' ' || !is_digit(line[9]) || !is_digit(line[10]) || !is_digit(line[11]))
        return std::nullopt;
    if (line.size() > 12 && line[12] != ' ') return std::nullopt;
    return (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
}

// What the server sent, fit for a log line: printable ASCII, at most 60 bytes.
std::string printable(std::string_view text) {
    constexpr size_t kMax = 60;
    std::string out;
    for (char c : text.substr(0, kMax)) out += c >= 0x20 && c < 0x7f ? c : '?';
    if (text.size() > kMax) out += "...";
    return out;
}

class HttpCheck final : public ProbeCheck {
public:
    HttpCheck(uv_loop_t* loop, const config::HttpUrl& url, std::chrono::milliseconds timeout, ProbeDone done)
        : report_(loop, std::move(done)), what_("GET " + config::describe(url)), request_(request_for(url)) {
        auto connecting = begin_connect(url.address, what_ + ": connect");
        if (!connecting) {
            report_.report_later(false, connecting.error().text());
            return;
        }
        fd_ = std::move(connecting->fd);
        connected_ = !connecting->in_progress;
        watch_.emplace(loop, fd_.get());
        if (int err = watch(UV_WRITABLE | UV_READABLE); err != 0) {
            close();
            report_.report_later(false, what_ + ": poll: " + uv_strerror(err));
            return;
        }
        report_.arm_timeout(timeout, [this] { finish(false, report_.timed_out()); });
    }

private:
    int watch(int events) {
        return watch_->start(events, [this](int status, int ready) { on_event(status, ready); });
    }

    void on_event(int status, int events) {
        if (status < 0) {
            auto broken = socket_error(fd_.get(), connected_ ? "connection" : "connect");
            return finish(false, broken ? std::string("poll: ") + uv_strerror(status) : broken.error().text());
        }
        if (!connected_) {
            if (auto ok = socket_error(fd_.get(), "connect"); !ok) return finish(false, ok.error().text());
            connected_ = true;
        }
        if ((events & UV_WRITABLE) != 0 && sent_ < request_.size() && !send_more()) return;
        // A server may answer (and close) before it has read the whole request.
        if ((events & UV_READABLE) != 0) receive();
    }

    // False once the check has finished.
    bool send_more() {
        ssize_t n = ::send(fd_.get(), request_.data() + sent_, request_.size() - sent_, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return true;
            finish(false, std::string("send: ") + std::strerror(errno));
            return false;
        }
        sent_ += static_cast<size_t>(n);
        if (sent_ == request_.size()) {
            if (int err = watch(UV_READABLE); err != 0) {
                finish(false, std::string("poll: ") + uv_strerror(err));
                return false;
            }
        }
        return true;
    }

    void receive() {
        char buffer[kMaxResponseHead];
        ssize_t n = ::recv(fd_.get(), buffer, kMaxResponseHead - head_.size(), 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            return finish(false, std::string("receive: ") + std::strerror(errno));
        }
        if (n == 0)
            return finish(false, head_.empty() ? "connection closed before a response"
                                               : "connection closed within the status line \"" + printable(head_) + "\"");
        head_.append(buffer, static_cast<size_t>(n));
        size_t end = head_.find('\n');
        std::string_view line(head_.data(), end == std::string::npos ? head_.size() : end);
        if (line.ends_with('\r')) line.remove_suffix(1);
        // Not HTTP at all: no need to wait for the end of the line.
        size_t compared = std::min<size_t>(line.size(), 5);
        if (line.substr(0, compared) != std::string_view("HTTP/").substr(0, compared))
            return finish(false, "malformed status line \"" + printable(line) + "\"");
        if (end == std::string::npos) {
            if (head_.size() >= kMaxResponseHead) finish(false, "no status line in the first 8 KiB of the response");
            return;
        }
        auto code = status_code(line);
        if (!code) return finish(false, "malformed status line \"" + printable(line) + "\"");
        finish(*code >= 200 && *code < 400, std::to_string(*code));
    }

    // Closes the connection and reports; the caller returns at once (the report may
    // destroy this check).
    void finish(bool passed, const std::string& why) {
        close();
        report_.report(passed, what_ + ": " + why);
    }
    void close() {
        watch_.reset();  // before the fd it watches
        fd_.reset();
    }

    ProbeReport report_;
    std::string what_;  // "GET http://127.0.0.1:9000/healthz"
    std::string request_;
    size_t sent_ = 0;
    bool connected_ = false;
    std::string head_;  // received so far, up to the status line's end
    UniqueFd fd_;
    std::optional<FdWatch> watch_;  // after fd_: destroyed first
};

}  // namespace

std::unique_ptr<ProbeCheck> start_http_check(uv_loop_t* loop, const config::HttpUrl& url,
                                             std::chrono::milliseconds timeout, ProbeDone done) {
    return std::make_unique<HttpCheck>(loop, url, timeout, std::move(done));
}

}  // namespace fdsup::health
