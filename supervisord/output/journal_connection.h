// The one connection to systemd-journald that every `stdout`/`stderr = "journal"`
// stream shares: an AF_UNIX datagram socket connect()ed to its native socket
// (/run/systemd/journal/socket, or $FDSUP_JOURNAL_SOCKET: for tests and unusual setups),
// opened at the first line. It is not carried across an upgrade (close-on-exec): the
// next image connects again.
//
// No journal (no socket file, nobody bound to it: ENOENT, ECONNREFUSED...): the line
// goes to fdsupd's log instead (the caller's fallback), with one warning for the whole
// outage; the socket is tried again at the first line after kRetryInterval, and at the
// first line of any stream that starts (retry_soon()), and its return is logged once.
//
// Journald behind (its socket's queue full: EAGAIN): the send waits for room, within
// one budget shared by every stream: kMaxWait from the first full queue, then no wait
// at all for kMaxWait after it (so the loop is never held longer than kMaxWait in a
// row, nor more than half the time, whatever the number of streams: a journald that
// drains slowly would otherwise cost each stream's read its own wait, every turn).
// A line that finds the queue full with no budget left goes to fdsupd's log, as do
// later lines, without waiting, until journald takes one again (one warning per such
// episode, at most one per kBehindWarningInterval).
// Why wait in the loop, bounded, rather than stop reading the pipe until the socket
// is writable: a datagram socket's queue drains in microseconds when journald is
// merely busy, so a short wait keeps every line in the journal at the cost of a
// short stall; and a journald that is stuck costs the loop one kMaxWait, after which
// lines flow to fdsupd's log at full speed (never buffered here, never lost), while
// pausing the pipe would hold the worker's output hostage to journald and need lines
// kept across upgrades.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sys/clock.h"
#include "sys/unique_fd.h"

namespace fdsup {

class JournalConnection {
public:
    static constexpr const char* kDefaultPath = "/run/systemd/journal/socket";
    static constexpr const char* kPathVariable = "FDSUP_JOURNAL_SOCKET";
    static constexpr auto kRetryInterval = std::chrono::seconds(5);
    static constexpr auto kMaxWait = std::chrono::milliseconds(250);
    static constexpr auto kBehindWarningInterval = std::chrono::seconds(10);

    JournalConnection();  // the path from $FDSUP_JOURNAL_SOCKET, else kDefaultPath
    explicit JournalConnection(std::string path) : path_(std::move(path)) {}

    const std::string& path() const { return path_; }

    // A stream starts: if the journal was missing, it is tried again at the next line.
    void retry_soon() { retry_at_ = Clock::time_point::min(); }

    // Who the datagram says it comes from (SCM_CREDENTIALS), as journald's _PID, _UID,
    // _GID. The kernel lets a sender name another process only with CAP_SYS_ADMIN
    // (CAP_SETUID/CAP_SETGID for ids not its own), and only a process that exists.
    struct Credentials {
        pid_t pid;
        uid_t uid;
        gid_t gid;
    };
    // The kernel refused credentials once (EPERM): it always will (no such capability),
    // so no stream offers them again.
    bool credentials_refused() const { return credentials_refused_; }

    enum class Sent {
        ok,
        no_such_pid,          // the credentials' pid is gone (ESRCH): send without them
        refused_credentials,  // EPERM for the credentials: send without them
        // EINVAL for the credentials: their uid or gid has no mapping in fdsupd's user
        // namespace (a container's overflow 65534): send without them. That stream's
        // ids, not the journal: other streams' may map, and the socket is fine.
        unmapped_credentials,
        not_sent,  // no journal, or it is behind: the caller logs the line
    };
    // One datagram. `label`: the stream, for messages.
    Sent send(std::string_view datagram, const Credentials* credentials, const std::string& label);

    // What sendmsg()'s errno means for the line (pure, for tests): `with_credentials`:
    // the datagram carried SCM_CREDENTIALS.
    enum class Failure {
        again,                 // EINTR: send again
        full,                  // EAGAIN: wait for room
        no_such_pid,           // ESRCH with credentials
        refused_credentials,   // EPERM with credentials
        unmapped_credentials,  // EINVAL with credentials
        this_line,             // EMSGSIZE, ENOBUFS, ENOMEM: this datagram, not the journal
        gone,                  // ECONNREFUSED, ENOENT...: journald went away (reconnect once)
        outage,                // anything else: the socket is of no use as it is
    };
    static Failure classify(int err, bool with_credentials);

    // How many times a send waited for room (poll()ed): for tests.
    uint64_t waits() const { return waits_; }

private:
    // sendmsg(); 0 or the errno.
    int send_once(std::string_view datagram, const Credentials* credentials);
    // Connects if it is time to try; false (logged once per outage) if there is no journal.
    bool connect_if_due(const std::string& label);
    void lost(int err, const std::string& label);
    // Room in the queue within the wait budget: false once it is spent, or while behind.
    bool wait_for_room();
    void note_behind(const std::string& label);

    std::string path_;
    UniqueFd fd_;
    Clock::time_point retry_at_ = Clock::time_point::min();
    bool missing_ = false;  // an outage was logged
    uint64_t lines_while_missing_ = 0;
    bool credentials_refused_ = false;
    bool oversize_warned_ = false;
    bool behind_ = false;  // the last send found the queue full past its wait
    bool behind_warned_ = false;
    Clock::time_point next_behind_warning_ = Clock::time_point::min();
    uint64_t lines_while_behind_ = 0;
    // The end of the current wait budget (set at the first full queue after the previous
    // one's pause: budget_end_ + kMaxWait).
    std::optional<Clock::time_point> budget_end_;
    uint64_t waits_ = 0;
};

}  // namespace fdsup
