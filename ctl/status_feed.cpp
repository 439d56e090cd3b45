#include "ctl/status_feed.h"

#include <utility>

namespace fdsup::ctl {

StatusFeed::StatusFeed(std::string socket_path, Json request)
    : socket_path_(std::move(socket_path)), request_(std::move(request)) {}

Result<void> StatusFeed::ask() {
    send_error_.reset();
    if (client_ && client_->send(request_)) return {};
    client_.reset();  // none yet, or fdsupd has closed it since: a new one
    auto connected = Client::connect(socket_path_);
    if (!connected) return std::unexpected(connected.error());
    client_.emplace(std::move(*connected));
    // fdsupd may refuse a connection (permission, too many clients) with a reply and
    // close it before the request is written: that reply, read by answer(), says why.
    if (auto sent = client_->send(request_); !sent) send_error_ = sent.error();
    return {};
}

int StatusFeed::fd() const {
    return client_ ? client_->fd() : -1;
}

Result<Reply> StatusFeed::answer(std::chrono::steady_clock::time_point deadline) {
    if (!client_) return fail("no request to fdsupd at " + socket_path_ + " is waiting for its answer");
    auto reply = client_->read_reply(nullptr, deadline);
    if (reply) return reply;
    client_.reset();
    return std::unexpected(send_error_.value_or(reply.error()));
}

Result<Reply> StatusFeed::fetch() {
    auto asked = ask();
    if (!asked) return std::unexpected(asked.error());
    return answer(std::chrono::steady_clock::now() + kReplyWait);
}

}  // namespace fdsup::ctl
