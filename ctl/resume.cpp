#include "ctl/resume.h"

#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "sys/unique_fd.h"

namespace fdsup::ctl {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// A field shown in a message: its text, or "?" when it is missing.
std::string shown(const Json& object, const char* key) {
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) return "?";
    return it->is_string() ? it->get<std::string>() : it->dump();
}

// A connect that may succeed a moment later: nobody listens yet (the previous fdsupd
// is gone and a new one binds), no socket file yet, the backlog is full.
bool worth_retrying(int err) {
    return err == ECONNREFUSED || err == ENOENT || err == EAGAIN;
}

// Waits up to `pause` (less if the deadline is nearer); true if fdsupd's process exited
// meanwhile (or before).
bool exited_within(const UniqueFd& process, milliseconds pause, Clock::time_point deadline) {
    auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now());
    int timeout = static_cast<int>(std::max<milliseconds::rep>(0, std::min(pause, left).count()));
    pollfd watch{process ? process.get() : -1, POLLIN, 0};
    int ready = ::poll(&watch, 1, timeout);  // an fd of -1 is ignored: a plain pause
    return ready > 0 && (watch.revents & POLLIN) != 0;
}

}  // namespace

Result<std::optional<Resumed>> resume_after_upgrade(Client& client, const Json& notice,
                                                    const std::string& consequence) {
    const std::string fdsupd = "fdsupd at " + client.socket_path();
    // fdsupd's process from now on (an exec keeps it; an exit ends the wait). Opened
    // before the connection closes, while the process surely still exists.
    UniqueFd process;
    if (client.server_pid() > 0) process.reset(static_cast<int>(::syscall(SYS_pidfd_open, client.server_pid(), 0)));
    if (!client.upgrade_went_ahead()) return std::optional<Resumed>{};

    auto resume = notice.find("resume");
    if (resume == notice.end() || !resume->is_object())
        return fail(fdsupd + " was upgraded in place before it answered, and this request cannot be followed "
                    "across an upgrade; " + consequence + " (`fdsupctl status` shows where things are now)");
    const std::string unknown = "; " + consequence;

    auto deadline = Clock::now() + kUpgradeWait;
    std::string last_error = "no answer";
    for (milliseconds pause{10};; pause = std::min(pause * 2, milliseconds{250})) {
        auto next = Client::connect(client.socket_path());
        if (!next && !worth_retrying(next.error().err)) return fail(next.error().text() + unknown);
        if (next) {
            // Both requests in one write: the server takes them in one turn of its loop,
            // so the resumed request is running (and told of a next upgrade) once
            // `version` is answered, with no moment between them for an exec to slip in.
            auto asked = next->send_lines({Json{{"cmd", "version"}}, *resume});
            auto version = asked ? next->read_reply(nullptr, deadline) : std::unexpected(asked.error());
            if (version && version->value.value("ok", false) == true) {
                const Json& answer = version->value;
                if (notice.contains("pid") && answer.contains("pid") && notice["pid"] != answer["pid"])
                    return fail(fdsupd + " is another process now (pid " + shown(answer, "pid") + ", was pid " +
                                shown(notice, "pid") + "): fdsupd was restarted, not upgraded in place" + unknown);
                bool upgraded = !notice.contains("upgrades") || notice["upgrades"] != answer.value("upgrades", Json());
                std::string note = upgraded ? "fdsupd was upgraded in place (" + shown(notice, "from") + " -> " +
                                                  shown(answer, "version") + ")"
                                            : "fdsupd's in-place upgrade was rolled back (fdsupd " +
                                                  shown(answer, "version") + " goes on)";
                return std::optional<Resumed>(Resumed{std::move(*next), std::move(note)});
            }
            // Refused (too many clients), or the connection went again: once more.
            last_error = version ? shown(version->value, "error") : version.error().text();
        } else {
            last_error = next.error().text();
        }
        if (exited_within(process, pause, deadline))
            return fail("fdsupd (pid " + shown(notice, "pid") + ") at " + client.socket_path() +
                        " exited during its in-place upgrade" + unknown);
        if (Clock::now() >= deadline)
            return fail(fdsupd + " did not answer within " + std::to_string(kUpgradeWait.count()) +
                        " s of its in-place upgrade (" + last_error + ")" + unknown);
    }
}

}  // namespace fdsup::ctl
