// fdsupctl's end of the control socket: connect, send one request, read the lines that
// answer it (wire format in control/protocol.h).
//
// Blocking I/O on one socket, no timeouts unless asked for: connecting to a unix socket
// fails at once when nobody listens, and a reply may legitimately take long (stop waits
// for the workers). Every error names the socket path, since "which supervisor?" is the
// first question when one cannot be reached.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/protocol.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace fdsup::ctl {

using control::Json;

// {"upgrading": true, ...}: fdsupd is about to exec its next image (protocol.h).
bool is_upgrading(const Json& line);

// Far above any request limit: a status of thousands of instances is one long line.
inline constexpr size_t kMaxReplyLine = 256 * 1024 * 1024;

struct Reply {
    Json value;
    std::string line;  // as received, without its "\n" (what --json prints)
};

class Client {
public:
    // Connects to the control socket at `socket_path`. The error reads
    // "cannot reach fdsupd at PATH: No such file or directory".
    static Result<Client> connect(std::string socket_path);

    // Sends `request` as one line.
    Result<void> send(const Json& request);
    // Sends several requests in one write (fdsupd answers them in order).
    Result<void> send_lines(const std::vector<Json>& requests);

    // Reads up to the final reply: the first line with an "ok" key, or an "upgrading"
    // notice (is_upgrading; then the reply comes from the next image, see resume.h).
    // Progress lines before it go to `on_progress`; lines of other kinds are skipped (a
    // newer fdsupd may send more). The connection closing first is an error, and so is
    // `deadline` passing first, if given.
    Result<Reply> read_reply(const std::function<void(const Json& progress_line)>& on_progress,
                             std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt);

    // After the reply to `logs` (or `events`) with follow: each {"log": LOGLINE} line
    // (each {"event": EVENT} line, with key "event") goes to `on_log`, until fdsupd
    // closes the connection or on_log returns false (both: nullopt), or an "upgrading"
    // notice comes (returned).
    Result<std::optional<Reply>> follow_logs(
        const std::function<bool(const Json& log_line, std::string_view raw)>& on_log, const char* key = "log");

    // After an "upgrading" notice: true once the connection has closed (the exec
    // happened), false if {"upgrading": false} came instead (the exec failed, and this
    // connection goes on as before).
    bool upgrade_went_ahead();

    // Lines are decoded without their top-level member `key` (control::decode_line_without):
    // for a caller that prints the reply's line as it came and reads none of that member.
    void skip_member(std::string key) { skipped_member_ = std::move(key); }

    const std::string& socket_path() const { return socket_path_; }
    // The connection, to wait for a reply alongside other things (top's keyboard).
    int fd() const { return fd_.get(); }
    // fdsupd's pid as the kernel gave it at connect (SO_PEERCRED, in our pid namespace);
    // 0 if unknown.
    pid_t server_pid() const { return server_pid_; }

private:
    Client(UniqueFd fd, std::string socket_path);

    // The next complete line, decoded; nullopt once fdsupd has closed the connection.
    Result<std::optional<Reply>> next_line(
        std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt);
    // A line, decoded (skipping skipped_member_), with its text.
    Result<std::optional<Reply>> decoded(std::string line);

    UniqueFd fd_;
    std::string socket_path_;
    pid_t server_pid_ = 0;
    control::LineSplitter splitter_{kMaxReplyLine};
    // Bytes of a line still incomplete, held back from splitter_ (see next_line); reads
    // land here.
    std::string partial_;
    bool closed_ = false;
    std::string skipped_member_;  // empty: every member decoded
};

}  // namespace fdsup::ctl
