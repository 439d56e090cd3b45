#include "output/journal_connection.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "sys/scm_rights.h"

namespace fdsup {

namespace {

// As sd_journal_sendv() does: room for a long line in one datagram (the kernel caps it
// at net.core.wmem_max; its default already fits kMaxLine many times).
constexpr int kSendBuffer = 8 * 1024 * 1024;

// A connected, non-blocking datagram socket to `path`; -errno on failure.
int open_journal(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return -ENAMETOOLONG;
    std::memcpy(addr.sun_path, path.data(), path.size());
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -errno;
    (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kSendBuffer, sizeof kSendBuffer);  // best effort
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) < 0) {
        int err = errno;
        ::close(fd);
        return -err;
    }
    return fd;
}

}  // namespace

JournalConnection::JournalConnection() {
    const char* path = std::getenv(kPathVariable);
    path_ = path != nullptr && path[0] != '\0' ? path : kDefaultPath;
}

int JournalConnection::send_once(std::string_view datagram, const Credentials* credentials) {
    iovec iov{const_cast<char*>(datagram.data()), datagram.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    OneControlMessage<ucred> control;
    if (credentials != nullptr) {
        ucred cred{credentials->pid, credentials->uid, credentials->gid};
        attach_control_message(msg, control, SCM_CREDENTIALS, cred);
    }
    return ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL) < 0 ? errno : 0;
}

JournalConnection::Failure JournalConnection::classify(int err, bool with_credentials) {
    switch (err) {
        case EINTR:
            return Failure::again;
        case EAGAIN:
            return Failure::full;
        // The credentials' errors (net/core/scm.c, scm_check_creds()); without
        // credentials these mean something else, and nothing to mend by sending again.
        case ESRCH:
            return with_credentials ? Failure::no_such_pid : Failure::outage;
        case EPERM:
            return with_credentials ? Failure::refused_credentials : Failure::outage;
        case EINVAL:
            return with_credentials ? Failure::unmapped_credentials : Failure::outage;
        case EMSGSIZE:
        case ENOBUFS:
        case ENOMEM:
            return Failure::this_line;
        case ECONNREFUSED:
        case ECONNRESET:
        case ENOTCONN:
        case EPIPE:
        case ENOENT:
            return Failure::gone;
        default:
            return Failure::outage;
    }
}

JournalConnection::Sent JournalConnection::send(std::string_view datagram, const Credentials* credentials,
                                                const std::string& label) {
    bool reconnected = false;
    for (;;) {
        if (!fd_ && !connect_if_due(label)) {
            ++lines_while_missing_;
            return Sent::not_sent;
        }
        int err = send_once(datagram, credentials);
        if (err == 0) {
            if (behind_) {
                behind_ = false;
                if (behind_warned_)
                    spdlog::info("journal {}: takes lines again; {} went to fdsupd's log meanwhile", path_,
                                 lines_while_behind_);
                behind_warned_ = false;
                lines_while_behind_ = 0;
            }
            return Sent::ok;
        }
        switch (classify(err, credentials != nullptr)) {
            case Failure::again:
                continue;
            case Failure::full:
                if (wait_for_room()) continue;
                note_behind(label);
                return Sent::not_sent;
            case Failure::no_such_pid:
                return Sent::no_such_pid;
            case Failure::refused_credentials:
                credentials_refused_ = true;
                spdlog::debug("journal {}: the kernel refuses to name a worker's pid in credentials; the pid "
                              "goes in OBJECT_PID= and FDSUP_PID= instead",
                              path_);
                return Sent::refused_credentials;
            case Failure::unmapped_credentials:
                spdlog::debug("journal {}: {}'s uid {} or gid {} has no mapping in fdsupd's user namespace; its "
                              "pid goes in OBJECT_PID= and FDSUP_PID= instead",
                              path_, label, credentials->uid, credentials->gid);
                return Sent::unmapped_credentials;
            case Failure::this_line:
                // This datagram, not the journal: the line goes to fdsupd's log, the
                // next one is tried as usual.
                if (!oversize_warned_) {
                    oversize_warned_ = true;
                    spdlog::warn("journal {}: send a line of {} ({} bytes): {}; it goes to fdsupd's log (said once)",
                                 path_, label, datagram.size(), std::strerror(err));
                }
                return Sent::not_sent;
            case Failure::gone:
                // journald went away, maybe to come back at once (a restart binds the
                // path anew): one new connection before calling it an outage.
                fd_.reset();
                if (!reconnected) {
                    reconnected = true;
                    retry_soon();
                    continue;
                }
                break;
            case Failure::outage:
                break;
        }
        lost(err, label);
        ++lines_while_missing_;
        return Sent::not_sent;
    }
}

bool JournalConnection::connect_if_due(const std::string& label) {
    auto now = Clock::now();
    if (now < retry_at_) return false;
    int fd = open_journal(path_);
    if (fd < 0) {
        retry_at_ = now + kRetryInterval;
        if (!missing_) {
            missing_ = true;
            spdlog::warn("journal {}: {}; {} goes to fdsupd's log instead, as does every stream sent to the "
                         "journal until it is back (tried again every {} s and when an instance starts)",
                         path_, std::strerror(-fd), label, kRetryInterval.count());
        }
        return false;
    }
    fd_.reset(fd);
    if (missing_) {
        missing_ = false;
        spdlog::info("journal {}: back; {} lines went to fdsupd's log meanwhile", path_, lines_while_missing_);
    }
    lines_while_missing_ = 0;
    return true;
}

void JournalConnection::lost(int err, const std::string& label) {
    // Anything else is an outage too (the socket is of no use as it is): the next try
    // opens a new one.
    fd_.reset();
    retry_at_ = Clock::now() + kRetryInterval;
    if (!missing_) {
        missing_ = true;
        spdlog::warn("journal {}: send: {}; {} goes to fdsupd's log instead, as does every stream sent to the "
                     "journal until it is back (tried again every {} s and when an instance starts)",
                     path_, std::strerror(err), label, kRetryInterval.count());
    }
}

bool JournalConnection::wait_for_room() {
    if (behind_) return false;  // known full: no wait until it takes a line again
    auto now = Clock::now();
    // A new budget once the previous one's pause is over; until then, what is left of it
    // (nothing, during the pause).
    if (!budget_end_ || now >= *budget_end_ + kMaxWait) budget_end_ = now + kMaxWait;
    auto left = std::chrono::ceil<std::chrono::milliseconds>(*budget_end_ - now);
    if (left.count() <= 0) return false;
    ++waits_;
    pollfd p{fd_.get(), POLLOUT, 0};
    int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    return ready > 0 || (ready < 0 && errno == EINTR);  // room, or try again (the budget holds)
}

void JournalConnection::note_behind(const std::string& label) {
    ++lines_while_behind_;
    if (behind_) return;
    behind_ = true;
    auto now = Clock::now();
    if (now < next_behind_warning_) return;
    next_behind_warning_ = now + kBehindWarningInterval;
    behind_warned_ = true;
    spdlog::warn("journal {}: full (journald is behind; fdsupd waits for room at most {} ms in {}); {} and every "
                 "other stream sent to the journal go to fdsupd's log until it takes lines again",
                 path_, kMaxWait.count(), 2 * kMaxWait.count(), label);
}

}  // namespace fdsup
