#include "ctl/top.h"
#include "ctl/render.h"
#include "ctl/status_feed.h"
#include "ctl/terminal_safe.h"
#include "ctl/top_screen.h"
#include "ctl/top_table.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <thread>
#include <utility>

namespace fdsup::ctl {

namespace {

// Plain frames on stdout (fdsupd's errors on stderr) until -n, or until the reader goes
// away (`fdsupctl top | head`: as good as Ctrl-C).
int run_plain(StatusFeed& feed, const Command& command, TopReply frame) {
    const TopPlan& plan = *command.top;
    auto due = std::chrono::steady_clock::now();
    for (long long shown = 1;; ++shown) {
        if (frame.reply) {
            std::string text = command.json ? json_terminal_safe(frame.reply->line) + "\n"
                                            : top_frame(top_table(frame.reply->value, plan.sort), frame.time);
            std::fwrite(text.data(), 1, text.size(), stdout);
        } else {
            std::fprintf(stderr, "fdsupctl: %s: %s; asking again every %s\n", frame.time.c_str(),
                         frame.error.c_str(), interval_text(plan).c_str());
        }
        if (std::fflush(stdout) != 0) {
            int error = errno;
            if (error == EPIPE) return kExitOk;
            std::fprintf(stderr, "fdsupctl: write to stdout: %s\n", std::strerror(error));
            return kExitFailed;
        }
        if (plan.iterations && shown >= *plan.iterations) return frame.status;
        // On the interval's beat; after an answer slower than the interval, at once (no
        // burst to catch up).
        due = std::max(due + plan.interval, std::chrono::steady_clock::now());
        std::this_thread::sleep_until(due);
        frame = top_reply(feed.fetch());
    }
}

}  // namespace

TopReply top_reply(Result<Reply> fetched) {
    TopReply frame;
    auto now = std::chrono::system_clock::now().time_since_epoch();
    frame.time = format_log_time(std::chrono::duration<double>(now).count());
    frame.clock = frame.time.size() == 23 ? frame.time.substr(11, 8) : frame.time;  // "YYYY-MM-DD HH:MM:SS.mmm"
    if (!fetched) {
        frame.error = fetched.error().text();
        frame.status = kExitUnreachable;
    } else if (!reply_ok(fetched->value)) {
        const Json& error = field_or_null(fetched->value, "error");
        frame.error = error.is_null() ? "fdsupd refused the request without saying why" : printable(error);
        frame.status = kExitFailed;
    } else {
        frame.reply = std::move(*fetched);
    }
    return frame;
}

std::string interval_text(const TopPlan& plan) {
    char text[32];
    std::snprintf(text, sizeof text, "%gs", static_cast<double>(plan.interval.count()) / 1000);
    return text;
}

int run_top(const Command& command) {
    try {
        StatusFeed feed(command.socket_path, command.request);
        TopReply first = top_reply(feed.fetch());
        if (!first.reply) {
            std::fprintf(stderr, "fdsupctl: %s\n", first.error.c_str());
            return first.status;
        }
        if (!command.json && isatty(STDIN_FILENO) == 1 && isatty(STDOUT_FILENO) == 1) {
            if (auto status = run_top_screen(feed, *command.top, first)) return *status;
            const char* term = std::getenv("TERM");
            std::fprintf(stderr, "fdsupctl: no screen on this terminal (TERM=%s): plain frames instead\n",
                         term != nullptr ? term : "");
        }
        return run_plain(feed, command, std::move(first));
    } catch (const std::exception& error) {
        // The screen's guard has restored the terminal by now.
        std::fprintf(stderr, "fdsupctl: top: %s\n", error.what());
        return kExitFailed;
    }
}

}  // namespace fdsup::ctl
