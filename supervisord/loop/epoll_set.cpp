#include "loop/epoll_set.h"

#include <sys/epoll.h>

#include <array>
#include <cerrno>

namespace fdsup {

EpollSet::EpollSet(uv_loop_t* loop, UniqueFd epoll, Callback on_event)
    : epoll_(std::move(epoll)), watch_(loop, epoll_.get()), on_event_(std::move(on_event)) {}

Result<std::unique_ptr<EpollSet>> EpollSet::open(uv_loop_t* loop, const std::string& what, Callback on_event) {
    UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll) return fail_errno(what + ": epoll_create1");
    return watched(std::unique_ptr<EpollSet>(new EpollSet(loop, std::move(epoll), std::move(on_event))), what, true);
}

Result<EpollSet*> EpollSet::open_once(std::unique_ptr<EpollSet>& set, uv_loop_t* loop, const std::string& what,
                                      Callback on_event) {
    if (!set) {
        auto opened = open(loop, what, std::move(on_event));
        if (!opened) return std::unexpected(opened.error());
        set = std::move(*opened);
    }
    return set.get();
}

Result<std::unique_ptr<EpollSet>> EpollSet::adopt(uv_loop_t* loop, int epoll, const std::string& what,
                                                  Callback on_event) {
    return watched(std::unique_ptr<EpollSet>(new EpollSet(loop, UniqueFd(epoll), std::move(on_event))), what, false);
}

Result<std::unique_ptr<EpollSet>> EpollSet::watched(std::unique_ptr<EpollSet> set, const std::string& what,
                                                    bool close_on_failure) {
    EpollSet* raw = set.get();
    if (set->watch_.ok() && set->watch_.start(UV_READABLE, [raw](int, int) { raw->on_ready(); }) == 0) return set;
    int fd = set->fd();
    if (!close_on_failure) (void)set->epoll_.release();
    return fail(what + ": cannot watch epoll fd " + std::to_string(fd));
}

int EpollSet::add(int fd, uint32_t events, uint64_t key) {
    epoll_event event{};
    event.events = events;
    event.data.u64 = key;
    return ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) == 0 ? 0 : errno;
}

int EpollSet::modify(int fd, uint32_t events, uint64_t key) {
    epoll_event event{};
    event.events = events;
    event.data.u64 = key;
    return ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &event) == 0 ? 0 : errno;
}

void EpollSet::remove(int fd) { (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr); }

void EpollSet::on_ready() {
    // What does not fit here is read on the next wakeup (the set stays readable).
    std::array<epoll_event, 64> events{};
    int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), 0);
    for (int i = 0; i < n; ++i) on_event_(events[static_cast<size_t>(i)].data.u64, events[static_cast<size_t>(i)].events);
}

}  // namespace fdsup
