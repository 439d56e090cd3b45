// EpollSet: the one loop handle behind every worker's pidfd and every stored fd.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <uv.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "loop/epoll_set.h"

using namespace fdsup;

namespace {

struct Loop {
    uv_loop_t loop;
    Loop() { uv_loop_init(&loop); }
    ~Loop() {
        uv_run(&loop, UV_RUN_NOWAIT);  // close callbacks
        uv_loop_close(&loop);
    }
    void turn() { uv_run(&loop, UV_RUN_NOWAIT); }
};

struct Pipe {
    int read_end = -1, write_end = -1;
    Pipe() {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
        read_end = fds[0];
        write_end = fds[1];
    }
    ~Pipe() {
        ::close(read_end);
        ::close(write_end);
    }
};

size_t open_fd_count() {
    size_t count = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++count;
    return count;
}

// An epoll set as a previous image hands it over: `fd` registered in it under `key`.
int set_holding(int fd, uint64_t key) {
    int epoll = ::epoll_create1(EPOLL_CLOEXEC);
    REQUIRE(epoll >= 0);
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = key;
    REQUIRE(::epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) == 0);
    return epoll;
}

// The fds registered in epoll set `fd` ("tfd:" lines of its fdinfo).
std::vector<int> registered_in(int fd) {
    std::ifstream info("/proc/self/fdinfo/" + std::to_string(fd));
    std::vector<int> fds;
    for (std::string line; std::getline(info, line);)
        if (line.starts_with("tfd:")) fds.push_back(std::stoi(line.substr(4)));
    return fds;
}

}  // namespace

TEST_CASE("epoll set: a ready fd is reported with its key; one-shot until modified; removed is silent") {
    Loop l;
    std::vector<uint64_t> reported;
    auto set = EpollSet::open(&l.loop, "test", [&](uint64_t key, uint32_t) { reported.push_back(key); });
    REQUIRE(set);
    Pipe a, b;
    CHECK((*set)->add(a.read_end, EPOLLIN | EPOLLONESHOT, 7) == 0);
    CHECK((*set)->add(b.read_end, EPOLLIN, 8) == 0);
    CHECK((*set)->add(a.read_end, EPOLLIN, 9) == EEXIST);
    l.turn();
    CHECK(reported.empty());

    REQUIRE(::write(a.write_end, "x", 1) == 1);
    l.turn();
    CHECK(reported == std::vector<uint64_t>{7});
    l.turn();  // still readable, but one-shot: not again
    CHECK(reported == std::vector<uint64_t>{7});
    CHECK((*set)->modify(a.read_end, EPOLLIN | EPOLLONESHOT, 70) == 0);
    l.turn();
    CHECK(reported == std::vector<uint64_t>{7, 70});

    (*set)->remove(b.read_end);
    REQUIRE(::write(b.write_end, "x", 1) == 1);
    l.turn();
    CHECK(reported == std::vector<uint64_t>{7, 70});
}

TEST_CASE("epoll set: an adopted set keeps what was registered in it; a failed adoption does not close the fd") {
    Loop l;
    Pipe p;
    int epoll = set_holding(p.read_end, 42);
    std::vector<uint64_t> reported;
    auto set = EpollSet::adopt(&l.loop, epoll, "test", [&](uint64_t key, uint32_t) { reported.push_back(key); });
    REQUIRE(set);
    REQUIRE(::write(p.write_end, "x", 1) == 1);
    l.turn();
    CHECK(reported == std::vector<uint64_t>{42});
    set->reset();
    CHECK(::fcntl(epoll, F_GETFD) < 0);  // owned once adopted: closed with the set

    // A regular file cannot be polled: the adoption fails, and the fd stays open for
    // whoever holds it next (a rollback).
    int file = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    REQUIRE(file >= 0);
    auto refused = EpollSet::adopt(&l.loop, file, "test", [](uint64_t, uint32_t) {});
    CHECK_FALSE(refused);
    CHECK(::fcntl(file, F_GETFD) >= 0);
    ::close(file);
}

TEST_CASE("epoll set: adopted, a set stays at its fd number, the same set, and nothing else is left open") {
    // (libuv's check of a new fd is made on an empty stand-in at that number: the
    // carried set must be back in its place afterwards, and the stand-in gone.)
    Loop l;
    Pipe p;
    int epoll = set_holding(p.read_end, 7);
    size_t open_before = open_fd_count();
    std::vector<uint64_t> reported;
    auto set = EpollSet::adopt(&l.loop, epoll, "test", [&](uint64_t key, uint32_t) { reported.push_back(key); });
    REQUIRE(set);
    CHECK((*set)->fd() == epoll);
    CHECK(registered_in(epoll) == std::vector<int>{p.read_end});
    CHECK(open_fd_count() == open_before);
    CHECK((::fcntl(epoll, F_GETFD) & FD_CLOEXEC) != 0);
    REQUIRE(::write(p.write_end, "x", 1) == 1);
    l.turn();
    CHECK(reported == std::vector<uint64_t>{7});
}

TEST_CASE("epoll set: the loop's own epoll is refused for adoption, and the loop goes on") {
    Loop l;
    Pipe p;
    const int backend = uv_backend_fd(&l.loop);
    REQUIRE(backend >= 0);
    auto refused = EpollSet::adopt(&l.loop, backend, "test", [](uint64_t, uint32_t) {});
    CHECK_FALSE(refused);
    CHECK(uv_backend_fd(&l.loop) == backend);
    CHECK(::fcntl(backend, F_GETFD) >= 0);
    // The loop still watches what it is given.
    std::vector<uint64_t> reported;
    auto set = EpollSet::open(&l.loop, "test", [&](uint64_t key, uint32_t) { reported.push_back(key); });
    REQUIRE(set);
    REQUIRE((*set)->add(p.read_end, EPOLLIN, 9) == 0);
    REQUIRE(::write(p.write_end, "x", 1) == 1);
    l.turn();
    CHECK(reported == std::vector<uint64_t>{9});
}
