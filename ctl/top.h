// fdsupctl top: fdsupd's status, again every interval (SPEC "Resources": the live view).
//
// The first reply decides whether there is a view at all: fdsupd not reached is exit 3,
// a refusal (an unknown NAME) exit 1, as for `status`. Then, on a terminal (standard
// input and output both), the ncurses screen (top_screen.h); otherwise one plain frame
// per interval on stdout, flushed, for a pipe or a log. Once running, fdsupd going away
// (a restart, an in-place upgrade) does not end the view: each frame says so and the
// next one asks again, on a new connection.
#pragma once

#include <optional>
#include <string>

#include "ctl/arguments.h"
#include "ctl/client.h"
#include "ctl/exit_status.h"
#include "sys/result.h"

namespace fdsup::ctl {

// One frame's reply, or why there is none.
struct TopReply {
    std::string time;            // when it came: "2026-11-23 10:00:00.123", local time
    std::string clock;           // the same, shorter (for the screen): "10:00:00"
    std::optional<Reply> reply;  // "ok": true
    std::string error;           // otherwise: "cannot reach fdsupd at ...", or fdsupd's refusal
    int status = kExitOk;        // otherwise kExitUnreachable or kExitFailed
};

// What StatusFeed brought, now.
TopReply top_reply(Result<Reply> fetched);

// "1s", "0.25s"
std::string interval_text(const TopPlan& plan);

// The whole verb: the exit status.
int run_top(const Command& command);

}  // namespace fdsup::ctl
