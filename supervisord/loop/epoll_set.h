// An epoll set of the supervisor's own, watched by the loop as one handle. For fds that
// come in numbers (every worker's pidfd, every output pipe, every stored fd) it costs one
// epoll_ctl per fd and nothing in libuv (whose uv_poll costs four syscalls and an
// allocation per fd). The set is an fd like any other: an upgrade carries the sets of
// pidfds and of pipes across execve, registrations and all, so the next image adopts
// thousands of them without a syscall each.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "loop/uv_handles.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace fdsup {

class EpollSet {
public:
    // Called for each ready registration with the key it was added with.
    using Callback = std::function<void(uint64_t key, uint32_t events)>;

    // A new, empty set; `what` names it in errors ("fd store").
    static Result<std::unique_ptr<EpollSet>> open(uv_loop_t* loop, const std::string& what, Callback on_event);
    // `set` itself, opened now if it is not yet: sets whose owners open them at first
    // use, so that a failure (EMFILE) is tried again at the next use.
    static Result<EpollSet*> open_once(std::unique_ptr<EpollSet>& set, uv_loop_t* loop, const std::string& what,
                                       Callback on_event);
    // A set this process already holds (one an upgrade handed over), with whatever it
    // has registered. `epoll` is owned only on success: never closed on failure (a
    // rollback hands it back to the previous image).
    static Result<std::unique_ptr<EpollSet>> adopt(uv_loop_t* loop, int epoll, const std::string& what,
                                                   Callback on_event);
    EpollSet(const EpollSet&) = delete;
    EpollSet& operator=(const EpollSet&) = delete;

    int fd() const { return epoll_.get(); }
    // 0, or the errno of epoll_ctl.
    int add(int fd, uint32_t events, uint64_t key);
    int modify(int fd, uint32_t events, uint64_t key);
    // Before a registered fd closes (a closed fd leaves the set only once every copy
    // of its open file is closed, and its key would go on being reported till then).
    void remove(int fd);

private:
    EpollSet(uv_loop_t* loop, UniqueFd epoll, Callback on_event);
    static Result<std::unique_ptr<EpollSet>> watched(std::unique_ptr<EpollSet> set, const std::string& what,
                                                     bool close_on_failure);
    void on_ready();

    UniqueFd epoll_;
    FdWatch watch_;
    Callback on_event_;
};

}  // namespace fdsup
