#include "fdstore/fd_store.h"

#include <fcntl.h>
#include <linux/kcmp.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace fdsup {
namespace {

// Two fds of this process refer to the same open file (not merely the same inode: two
// open() calls of one file are two files). kcmp where the kernel allows it; without it
// (seccomp in some containers) the same inode with the same status flags, which is
// exact for sockets and pipes, the fds a store mostly holds.
bool same_open_file(int a, int b) {
    pid_t self = ::getpid();
    long same = ::syscall(SYS_kcmp, self, self, KCMP_FILE, a, b);
    if (same >= 0) return same == 0;
    return ::fcntl(a, F_GETFL) == ::fcntl(b, F_GETFL);
}

}  // namespace

// ---- HangupWatch --------------------------------------------------------------------

Result<std::unique_ptr<HangupWatch>> HangupWatch::open(uv_loop_t* loop, Callback on_hangup) {
    std::unique_ptr<HangupWatch> watch(new HangupWatch());
    watch->on_hangup_ = std::move(on_hangup);
    // Each report removes its fd from the set (the callback drops it from its store, or
    // else it is removed here), so a hung-up fd cannot make the loop spin.
    auto set = EpollSet::open(loop, "fd store", [w = watch.get()](uint64_t key, uint32_t) {
        int fd = static_cast<int>(key);
        if (!w->on_hangup_(fd)) w->remove(fd);
    });
    if (!set) return std::unexpected(set.error());
    watch->set_ = std::move(*set);
    return watch;
}

Result<bool> HangupWatch::add(int fd) {
    // Keyed by fd number: a stored fd leaves the set before it closes, so a reported
    // number is always the fd that was registered under it.
    int err = set_->add(fd, 0, static_cast<uint64_t>(fd));  // EPOLLHUP and EPOLLERR are always reported
    if (err == 0) return true;
    if (err == EPERM) return false;  // not pollable (a regular file, a memfd): kept unwatched
    return fail("fd store: epoll_ctl", err);
}

void HangupWatch::remove(int fd) { set_->remove(fd); }

// ---- FdStore ------------------------------------------------------------------------

bool FdStore::holds_same_file(int fd, dev_t dev, ino_t ino) const {
    return std::any_of(entries_.begin(), entries_.end(), [&](const StoredFd& entry) {
        return entry.dev == dev && entry.ino == ino && same_open_file(entry.fd.get(), fd);
    });
}

StoreOutcome FdStore::add(const std::string& name, std::vector<UniqueFd> fds, bool poll, size_t max) {
    StoreOutcome outcome;
    for (auto& fd : fds) {
        struct stat st{};
        if (::fstat(fd.get(), &st) < 0) continue;  // cannot happen for an fd the kernel just passed
        if (holds_same_file(fd.get(), st.st_dev, st.st_ino)) {
            ++outcome.duplicates;
            continue;  // closed as `fds` goes
        }
        if (entries_.size() >= max || names_length_ + name.size() + 1 > kMaxFdNamesLength) {
            ++outcome.over_limit;
            continue;
        }
        StoredFd entry{name, std::move(fd), false, st.st_dev, st.st_ino};
        if (poll && watch_ != nullptr) {
            auto watched = watch_->add(entry.fd.get());
            if (!watched)
                spdlog::warn("fd store: \"{}\" is kept, but its hang-up cannot be watched: {}", name,
                             watched.error().text());
            entry.watched = watched && *watched;
        }
        names_length_ += name.size() + 1;
        entries_.push_back(std::move(entry));
        ++outcome.stored;
    }
    return outcome;
}

void FdStore::close_entry(StoredFd& entry) {
    if (entry.watched && watch_ != nullptr) watch_->remove(entry.fd.get());
    entry.fd.reset();
    names_length_ -= entry.name.size() + 1;
}

size_t FdStore::remove(const std::string& name) {
    size_t removed = 0;
    std::erase_if(entries_, [&](StoredFd& entry) {
        if (entry.name != name) return false;
        close_entry(entry);
        ++removed;
        return true;
    });
    return removed;
}

bool FdStore::drop(int fd, std::string* name) {
    auto it = std::find_if(entries_.begin(), entries_.end(), [fd](const StoredFd& e) { return e.fd.get() == fd; });
    if (it == entries_.end()) return false;
    if (name != nullptr) *name = it->name;
    close_entry(*it);
    entries_.erase(it);
    return true;
}

size_t FdStore::trim(size_t max) {
    size_t closed = 0;
    while (entries_.size() > max) {
        close_entry(entries_.back());
        entries_.pop_back();
        ++closed;
    }
    return closed;
}

void FdStore::clear() { trim(0); }

}  // namespace fdsup
