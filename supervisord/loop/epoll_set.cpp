#include "loop/epoll_set.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

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

namespace {

// `from` put at fd `number` (which this process holds). dup3 onto an fd that is open
// fails only in a race with another thread's open (EBUSY) or when a signal interrupts
// the close of what was there; a restore runs on one thread with every signal blocked.
bool put_at(int from, int number) {
    for (;;) {
        if (::dup3(from, number, O_CLOEXEC) == number) return true;
        if (errno != EINTR && errno != EBUSY) return false;
    }
}

// Whether `fd` is an epoll set, asked by taking out of it `other` (an epoll set of our
// own, in no other): "not in the set" (ENOENT) from a set, EINVAL from anything else.
// Nothing changes either way.
bool is_epoll_set(int fd, int other) {
    epoll_event unused{};
    return ::epoll_ctl(fd, EPOLL_CTL_DEL, other, &unused) < 0 && errno == ENOENT;
}

}  // namespace

Result<std::unique_ptr<EpollSet>> EpollSet::adopt(uv_loop_t* loop, int epoll, const std::string& what,
                                                  Callback on_event) {
    // libuv's uv_poll_init checks the fd it is given by adding it to the loop's epoll and
    // taking it out again, and adding an epoll set to another makes the kernel walk every
    // registration in it (its loop and wakeup-path checks): for a carried set of 12,000
    // output pipes that check took ~4.8 ms of an upgrade's pause, and the loop's real add
    // at its next turn walks them all again. So the check is made on an empty set that
    // stands in at the same fd number for the moment; the carried set is back at its
    // number before anything else can run. Where no stand-in can be made, the check is
    // made on the set itself, and so it is where the fd is no epoll set at all or is the
    // loop's own (a damaged state): libuv refuses it here, as before, rather than abort
    // at the loop's add. (No other set can make a loop: none holds the loop's.)
    UniqueFd stand_in(::epoll_create1(EPOLL_CLOEXEC));
    const bool worth_a_stand_in = stand_in && epoll != uv_backend_fd(loop) && is_epoll_set(epoll, stand_in.get());
    UniqueFd carried(worth_a_stand_in ? ::fcntl(epoll, F_DUPFD_CLOEXEC, 0) : -1);
    const bool standing_in = carried && put_at(stand_in.get(), epoll);
    auto set = std::unique_ptr<EpollSet>(new EpollSet(loop, UniqueFd(epoll), std::move(on_event)));
    if (standing_in && !put_at(carried.get(), epoll)) {
        // Not seen to happen (see put_at). The set is not lost: it stays open where it is.
        int err = errno;
        int kept_at = carried.release();
        (void)set->epoll_.release();
        return fail(what + ": cannot put the carried epoll set back at fd " + std::to_string(epoll) + " (it is at fd " +
                    std::to_string(kept_at) + ")", err);
    }
    return watched(std::move(set), what, false);
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
