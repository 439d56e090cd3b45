// `fdsupctl top`'s supply of status replies: the same request, asked again every frame.
//
// One connection, kept open between frames (fdsupd logs every connection it accepts).
// fdsupd closes a connection idle for control_idle_timeout, and its connections end
// with it (a restart, an in-place upgrade): a request that cannot be sent on the
// connection kept is sent again on a new one, at once. A reply that does
// not come within kReplyWait is an error, and the connection is given up: a stopped or
// wedged fdsupd must not freeze the view.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "ctl/client.h"
#include "sys/result.h"

namespace fdsup::ctl {

inline constexpr std::chrono::seconds kReplyWait{5};

class StatusFeed {
public:
    StatusFeed(std::string socket_path, Json request);

    // Sends the request (connecting first when there is no connection). Fails only when
    // fdsupd cannot be reached; a failed send is reported by answer().
    Result<void> ask();
    // The connection to wait on for the answer after ask(); -1 when there is none.
    int fd() const;
    // The reply to ask(), waited for until `deadline`; a reply saying "ok": false is
    // fdsupd's answer, not an error. Any error gives the connection up.
    Result<Reply> answer(std::chrono::steady_clock::time_point deadline);
    // ask(), then answer() within kReplyWait.
    Result<Reply> fetch();

    const std::string& socket_path() const { return socket_path_; }

private:
    std::string socket_path_;
    Json request_;
    std::optional<Client> client_;
    std::optional<Error> send_error_;  // the request could not be sent on a new connection
};

}  // namespace fdsup::ctl
