// The /proc texts the accept watch reads, on literal strings: epoll fdinfo lines as
// kernels have written them, syscall files, socket links, pid lists split anywhere.
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "health/proc_text.h"

using namespace fdsup::health;

TEST_CASE("proc text: epoll fdinfo target lines, as kernels have written them") {
    // Linux 6.x, as seen on this project's machines (events and ino in hex).
    CHECK(parse_epoll_target("tfd:        3 events:       19 data:                3  pos:0 ino:2d4b sdev:8") ==
          EpollTarget{3, 0x19, 0x2d4b});
    // A registration with events 0: the kernel adds HUP|ERR, and EPOLLIN is not there.
    CHECK(parse_epoll_target("tfd:       12 events:       18 data:     7f0100000003  pos:0 ino:37578f6 sdev:9") ==
          EpollTarget{12, 0x18, 0x37578f6});
    // Older kernels: no sdev; and less padding, or a tab.
    CHECK(parse_epoll_target("tfd: 7 events: 2019 data: 0 pos:0 ino:abc") == EpollTarget{7, 0x2019, 0xabc});
    CHECK(parse_epoll_target("tfd:\t7\tevents:\t1\tdata:\t0\tpos:0\tino:10") == EpollTarget{7, 0x1, 0x10});
    // A consumed EPOLLONESHOT keeps only the private bits.
    CHECK(parse_epoll_target("tfd:        3 events: 40000000 data: 3  pos:0 ino:ff sdev:8")->events == 0x40000000u);
}

TEST_CASE("proc text: what is not a target line gives nothing") {
    for (const char* line : {"pos:\t0", "flags:\t02000002", "mnt_id:\t17", "ino:\t1038", "",
                             // no ino (before Linux 3.8): nothing to match a socket by
                             "tfd:        3 events:       19 data:                3",
                             "tfd:        x events:       19 data: 3  pos:0 ino:2d4b",
                             "tfd:       -3 events:       19 data: 3  pos:0 ino:2d4b",
                             "tfd:        3 events:       zz data: 3  pos:0 ino:2d4b",
                             "tfd:        3 events:       19 data: 3  pos:0 ino:",
                             // "ino:" only as part of another key
                             "tfd:        3 events:       19 data: 3  pos:0 xino:2d4b"}) {
        CAPTURE(line);
        CHECK_FALSE(parse_epoll_target(line).has_value());
    }
}

TEST_CASE("proc text: a thread's syscall file") {
    auto accept = parse_syscall_line("43 0x3 0x0 0x0 0x80800 0x0 0x0 0x7ffd3c5a1f28 0x7f51e0b1e8f7\n");
    REQUIRE(accept);
    CHECK(accept->number == 43);
    CHECK(accept->args == std::array<uint64_t, 6>{3, 0, 0, 0x80800, 0, 0});
    auto poll = parse_syscall_line("7 0x7ffc8a1e2b40 0x2 0xffffffffffffffff 0x0 0x0 0x0 0x7ffc8a1e2b18 0x7f2");
    REQUIRE(poll);
    CHECK(poll->args[0] == 0x7ffc8a1e2b40u);
    CHECK(poll->args[2] == 0xffffffffffffffffu);
    // Not in a system call, running, cut short, garbage: nothing.
    for (const char* text : {"running\n", "-1 0x7ffd3c5a1f28 0x7f51e0b1e8f7\n", "", "43 0x3 0x0", "43 0x3 0x0 0x0 0x0 0x0 zz",
                             "x 0x3 0x0 0x0 0x0 0x0 0x0"}) {
        CAPTURE(text);
        CHECK_FALSE(parse_syscall_line(text).has_value());
    }
}

TEST_CASE("proc text: socket links") {
    CHECK(parse_socket_link("socket:[58030326]") == ino_t{58030326});
    for (const char* link : {"socket:[]", "socket:[12", "socket:[1x]", "pipe:[123]", "anon_inode:[eventpoll]",
                             "/socket:[123]", "socket:[123] "}) {
        CAPTURE(link);
        CHECK_FALSE(parse_socket_link(link).has_value());
    }
}

namespace {

std::vector<pid_t> tokens_of(const std::vector<std::string_view>& pieces, size_t stop_after = 1000) {
    std::vector<pid_t> pids;
    PidTokens tokens;
    auto each = [&](pid_t pid) {
        pids.push_back(pid);
        return pids.size() < stop_after;
    };
    for (auto piece : pieces)
        if (!tokens.feed(piece, each)) return pids;
    tokens.finish(each);
    return pids;
}

}  // namespace

TEST_CASE("proc text: pid lists, in the pieces read() returns") {
    // A children file (one line, spaces) and cgroup.procs (a pid a line).
    CHECK(tokens_of({"12 345 6 "}) == std::vector<pid_t>{12, 345, 6});
    CHECK(tokens_of({"12\n345\n6\n"}) == std::vector<pid_t>{12, 345, 6});
    // A number split between two reads, and a last one without a separator.
    CHECK(tokens_of({"12 3", "45 6"}) == std::vector<pid_t>{12, 345, 6});
    CHECK(tokens_of({"1", "2", "", "3"}) == std::vector<pid_t>{123});
    // Not pids: skipped. 0, and beyond PID_MAX_LIMIT (however many digits).
    CHECK(tokens_of({"7 x 1x 0 4194305 99999999999999999999 8\n"}) == std::vector<pid_t>{7, 8});
    CHECK(tokens_of({"", "  \n"}).empty());
    // Stopping early.
    CHECK(tokens_of({"1 2 3 4"}, 2) == std::vector<pid_t>{1, 2});
}
