// FdStore and HangupWatch on real fds and a real loop: duplicates by open file, the
// limit, removal by name, trimming, and hang-ups (dropped unless stored unpolled).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <string>
#include <vector>

#include "fdstore/fd_store.h"

using fdsup::FdStore;
using fdsup::HangupWatch;
using fdsup::UniqueFd;

namespace {

bool is_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

std::vector<UniqueFd> one(int fd) {
    std::vector<UniqueFd> fds;
    fds.emplace_back(fd);
    return fds;
}

struct Pair {
    int stored = -1;  // handed to the store
    int peer = -1;    // kept by the test
    Pair() {
        int fds[2];
        REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
        stored = fds[0];
        peer = fds[1];
    }
};

struct Loop {
    uv_loop_t loop{};
    Loop() { uv_loop_init(&loop); }
    ~Loop() {
        uv_run(&loop, UV_RUN_NOWAIT);  // let closed handles finish
        uv_loop_close(&loop);
    }
};

}  // namespace

TEST_CASE("the same open file is stored once; another open of the same file is not the same") {
    FdStore store(nullptr);
    int memfd = memfd_create("state", MFD_CLOEXEC);
    REQUIRE(memfd >= 0);
    int copy = dup(memfd);
    auto first = store.add("state", one(memfd), true, 8);
    CHECK(first.stored == 1);
    auto again = store.add("other-name", one(copy), true, 8);  // a dup: the same open file
    CHECK(again.stored == 0);
    CHECK(again.duplicates == 1);
    CHECK_FALSE(is_open(copy));  // taken and closed

    // /dev/null opened twice: one inode, two open files: both stored.
    auto nulls = store.add("null", one(open("/dev/null", O_RDONLY | O_CLOEXEC)), true, 8);
    auto nulls2 = store.add("null", one(open("/dev/null", O_RDONLY | O_CLOEXEC)), true, 8);
    CHECK(nulls.stored + nulls2.stored == 2);
    CHECK(store.size() == 3);
}

TEST_CASE("beyond max the rest is closed; remove by name; trim keeps the oldest") {
    FdStore store(nullptr);
    std::vector<UniqueFd> five;
    std::vector<int> numbers;
    for (int i = 0; i < 5; ++i) {
        numbers.push_back(open("/dev/null", O_RDONLY | O_CLOEXEC));
        five.emplace_back(numbers.back());
    }
    auto outcome = store.add("a", std::move(five), true, 3);
    CHECK(outcome.stored == 3);
    CHECK(outcome.over_limit == 2);
    CHECK(is_open(numbers[2]));
    CHECK_FALSE(is_open(numbers[3]));
    CHECK_FALSE(is_open(numbers[4]));

    store.add("b", one(open("/dev/null", O_RDONLY | O_CLOEXEC)), true, 5);
    CHECK(store.size() == 4);
    CHECK(store.remove("a") == 3);
    CHECK_FALSE(is_open(numbers[0]));
    CHECK(store.remove("nothing") == 0);
    REQUIRE(store.size() == 1);
    CHECK(store.entries()[0].name == "b");

    store.add("c", one(open("/dev/null", O_RDONLY | O_CLOEXEC)), true, 5);
    store.add("d", one(open("/dev/null", O_RDONLY | O_CLOEXEC)), true, 5);
    CHECK(store.trim(1) == 2);
    REQUIRE(store.size() == 1);
    CHECK(store.entries()[0].name == "b");
}

TEST_CASE("a hung-up fd is reported once and dropped; one stored unpolled stays") {
    Loop l;
    std::vector<int> reported;
    FdStore* target = nullptr;
    auto watch = HangupWatch::open(&l.loop, [&](int fd) {
        reported.push_back(fd);
        return target->drop(fd);
    });
    REQUIRE(watch.has_value());
    FdStore store(watch->get());
    target = &store;
    Pair polled, unpolled;
    store.add("polled", one(polled.stored), true, 8);
    store.add("unpolled", one(unpolled.stored), false, 8);
    // A memfd cannot be watched by epoll (EPERM): kept, unwatched.
    int memfd = memfd_create("m", MFD_CLOEXEC);
    store.add("memfd", one(memfd), true, 8);
    REQUIRE(store.size() == 3);
    CHECK(store.entries()[0].watched);
    CHECK_FALSE(store.entries()[1].watched);
    CHECK_FALSE(store.entries()[2].watched);

    uv_run(&l.loop, UV_RUN_NOWAIT);
    CHECK(reported.empty());  // nothing hung up yet

    close(polled.peer);
    close(unpolled.peer);
    for (int i = 0; i < 100 && reported.empty(); ++i) uv_run(&l.loop, UV_RUN_NOWAIT);
    CHECK(reported == std::vector<int>{polled.stored});
    CHECK_FALSE(is_open(polled.stored));
    REQUIRE(store.size() == 2);
    CHECK(store.entries()[0].name == "unpolled");
    CHECK(is_open(unpolled.stored));

    uv_run(&l.loop, UV_RUN_NOWAIT);
    CHECK(reported.size() == 1);  // level-triggered, but gone from the set: not again
    store.clear();
    watch->reset();
}

TEST_CASE("a hang-up nobody claims is forgotten by the watch (no busy loop)") {
    Loop l;
    int calls = 0;
    auto watch = HangupWatch::open(&l.loop, [&](int) {
        ++calls;
        return false;  // no store holds it
    });
    REQUIRE(watch.has_value());
    Pair pair;
    auto watched = (*watch)->add(pair.stored);
    REQUIRE(watched.has_value());
    CHECK(*watched);
    close(pair.peer);
    for (int i = 0; i < 10; ++i) uv_run(&l.loop, UV_RUN_NOWAIT);
    CHECK(calls == 1);
    close(pair.stored);
    watch->reset();
}
