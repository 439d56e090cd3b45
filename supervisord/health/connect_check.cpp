#include "health/connect_check.h"

#include <optional>
#include <string>
#include <utility>

#include "health/probe_report.h"
#include "health/stream_connect.h"
#include "loop/uv_handles.h"

namespace fdsup::health {

namespace {

class ConnectCheck final : public ProbeCheck {
public:
    ConnectCheck(uv_loop_t* loop, const ListenAddress& address, std::chrono::milliseconds timeout, ProbeDone done)
        : report_(loop, std::move(done)), what_("connect " + describe_target(address)) {
        auto connecting = begin_connect(address, what_);
        if (!connecting) {
            report_.report_later(false, connecting.error().text());
            return;
        }
        if (!connecting->in_progress) {  // unix sockets connect at once
            report_.report_later(true, what_ + ": connected");
            return;
        }
        fd_ = std::move(connecting->fd);
        watch_.emplace(loop, fd_.get());
        if (int err = watch_->start(UV_WRITABLE, [this](int status, int) { on_writable(status); }); err != 0) {
            close();
            report_.report_later(false, what_ + ": poll: " + uv_strerror(err));
            return;
        }
        report_.arm_timeout(timeout, [this] {
            close();
            report_.report(false, what_ + ": " + report_.timed_out());
        });
    }

private:
    void on_writable(int status) {
        Result<void> outcome = socket_error(fd_.get(), what_);
        if (outcome && status < 0) outcome = fail(what_ + ": poll: " + uv_strerror(status));
        close();
        if (outcome) report_.report(true, what_ + ": connected");
        else report_.report(false, outcome.error().text());
    }
    void close() {
        watch_.reset();  // before the fd it watches
        fd_.reset();
    }

    ProbeReport report_;
    std::string what_;
    UniqueFd fd_;
    std::optional<FdWatch> watch_;  // after fd_: destroyed first
};

}  // namespace

std::unique_ptr<ProbeCheck> start_connect_check(uv_loop_t* loop, const ListenAddress& address,
                                                std::chrono::milliseconds timeout, ProbeDone done) {
    return std::make_unique<ConnectCheck>(loop, address, timeout, std::move(done));
}

}  // namespace fdsup::health
