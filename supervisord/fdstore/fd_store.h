// The fd store (systemd's FDSTORE=1; SPEC "Notify socket", "fd socket"): fds a worker
// parks with fdsupd so that the next process of the same instance gets them back,
// after the configured sockets, named in LISTEN_FDNAMES. A client connection, a memfd
// with state, a pipe: whatever must outlive one process of the worker.
//
// One FdStore per instance slot (worker, index): a restart (crash, stop-start or
// rolling) hands the slot's store to the next process; stores are released when the
// slot has no future (the worker stopped by the operator, removed, scaled below the
// index, or its instance exited/failed for good). Handing fds over does not empty the
// store: the new process removes what it no longer needs (FDSTOREREMOVE=1).
//
// As in systemd: an fd that refers to the same open file as one already stored is a
// duplicate and is closed (a worker that stores every fd it was given must not double
// its store on each restart); fds beyond fd_store_max are closed; a stored fd is
// dropped once it reports EPOLLHUP or EPOLLERR, unless it was stored with FDPOLL=0
// (fds epoll cannot watch, such as regular files and memfds, are kept unwatched).
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "loop/epoll_set.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace fdsup {

// Every stored fd watched for hang-ups (events = 0: only EPOLLHUP and EPOLLERR, which
// epoll always reports) in one epoll set: one loop handle for all stores, however many
// fds they hold.
class HangupWatch {
public:
    // Returns false if nobody holds `fd` any more (the watch then forgets it).
    using Callback = std::function<bool(int fd)>;
    static Result<std::unique_ptr<HangupWatch>> open(uv_loop_t* loop, Callback on_hangup);
    HangupWatch(const HangupWatch&) = delete;
    HangupWatch& operator=(const HangupWatch&) = delete;

    // True if `fd` is watched now; false if epoll cannot watch it (EPERM: a regular file).
    Result<bool> add(int fd);
    // Must be called before a watched fd closes.
    void remove(int fd);

private:
    HangupWatch() = default;

    std::unique_ptr<EpollSet> set_;
    Callback on_hangup_;
};

// The names of a store go into the next process's LISTEN_FDNAMES, one environment
// string, which the kernel limits to 128 KiB (MAX_ARG_STRLEN): a store keeps its names
// (with their ':' separators) within this.
constexpr size_t kMaxFdNamesLength = 64 * 1024;

struct StoredFd {
    std::string name;  // FDNAME=, "stored" by default
    UniqueFd fd;       // close-on-exec in fdsupd; the fd map hands a copy to the worker
    bool watched;      // registered with the HangupWatch
    dev_t dev;         // for the duplicate check
    ino_t ino;
};

struct StoreOutcome {
    size_t stored = 0;
    size_t duplicates = 0;  // already in the store: closed
    size_t over_limit = 0;  // beyond fd_store_max (or kMaxFdNamesLength): closed
};

class FdStore {
public:
    // `watch` may be null (no hang-up detection); it must outlive the store.
    explicit FdStore(HangupWatch* watch) : watch_(watch) {}
    ~FdStore() { clear(); }
    FdStore(const FdStore&) = delete;
    FdStore& operator=(const FdStore&) = delete;

    // Takes every fd: stores what is new and fits under `max`, closes the rest.
    StoreOutcome add(const std::string& name, std::vector<UniqueFd> fds, bool poll, size_t max);
    // Closes every fd stored under `name`; returns how many.
    size_t remove(const std::string& name);
    // Closes `fd` (it hung up); false if this store does not hold it.
    bool drop(int fd, std::string* name = nullptr);
    // Keeps the `max` oldest fds, closes the rest; returns how many were closed.
    size_t trim(size_t max);
    void clear();

    const std::vector<StoredFd>& entries() const { return entries_; }
    size_t size() const { return entries_.size(); }
    bool empty() const { return entries_.empty(); }

private:
    bool holds_same_file(int fd, dev_t dev, ino_t ino) const;
    void close_entry(StoredFd& entry);

    HangupWatch* watch_;
    std::vector<StoredFd> entries_;  // in the order they were stored
    size_t names_length_ = 0;        // of every entry's name, plus one separator each
};

}  // namespace fdsup
