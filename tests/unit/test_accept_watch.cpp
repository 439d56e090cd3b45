// The accept watch on real processes: the acceptor helper waits on a listening socket in
// each of the ways apps do, and find_acceptor must see it from outside (and must not see
// one that holds the socket without waiting on it). Every wait below is for an event, with
// a generous deadline: for the helper's "now waiting" byte, for its thread to be blocked in
// the expected system call, or for find_acceptor to see it.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <initializer_list>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "health/accept_watch.h"
#include "health/proc_text.h"
#include "sys/process.h"
#include "sys/unique_fd.h"

using namespace fdsup::health;
using fdsup::UniqueFd;

extern char** environ;

namespace {

constexpr auto kDeadline = std::chrono::seconds(10);

// Calls `attempt` every 2 ms until it gives something, for up to kDeadline.
template <class Attempt>
auto poll_until(Attempt attempt) -> decltype(attempt()) {
    auto deadline = std::chrono::steady_clock::now() + kDeadline;
    for (;;) {
        if (auto got = attempt()) return got;
        if (std::chrono::steady_clock::now() > deadline) return {};
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

// Above the fds posix_spawn's file actions write (3, 4), so that dup2 always makes a
// copy, without FD_CLOEXEC.
UniqueFd moved_high(int fd) {
    UniqueFd high(::fcntl(fd, F_DUPFD_CLOEXEC, 10));
    ::close(fd);
    return high;
}

// A listening TCP socket on 127.0.0.1, on a port the kernel picks.
struct Listener {
    UniqueFd fd;
    ino_t inode = 0;
    Listener() {
        fd = moved_high(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(fd);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
        REQUIRE(::listen(fd.get(), 16) == 0);
        struct stat st {};
        REQUIRE(::fstat(fd.get(), &st) == 0);
        inode = st.st_ino;
    }
};

// `acceptor MODE [ARGS]` with the listener at fd 3 and the write end of a pipe at fd 4;
// SIGKILLed and reaped when the test is done with it, however it ends.
class Helper {
public:
    Helper(const Listener& listener, std::initializer_list<const char*> args) {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        ready_ = moved_high(fds[0]);
        UniqueFd write_end = moved_high(fds[1]);
        std::vector<char*> argv{const_cast<char*>(FDSUP_ACCEPTOR)};
        for (const char* arg : args) argv.push_back(const_cast<char*>(arg));
        argv.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, listener.fd.get(), 3);
        posix_spawn_file_actions_adddup2(&actions, write_end.get(), 4);
        int err = ::posix_spawn(&pid_, FDSUP_ACCEPTOR, &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        if (err != 0) pid_ = -1;
        REQUIRE_MESSAGE(err == 0, "posix_spawn " FDSUP_ACCEPTOR);
    }
    ~Helper() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);  // fork-select's child dies with it (PR_SET_PDEATHSIG)
        while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
        }
    }
    Helper(const Helper&) = delete;
    Helper& operator=(const Helper&) = delete;

    pid_t pid() const { return pid_; }

    // Whether it has said it now waits (the byte on fd 4), without waiting for it.
    bool said_ready() const {
        pollfd ready{ready_.get(), POLLIN, 0};
        return ::poll(&ready, 1, 0) == 1;
    }
    // Waits for that byte.
    bool wait_ready() const {
        pollfd ready{ready_.get(), POLLIN, 0};
        return ::poll(&ready, 1, static_cast<int>(std::chrono::milliseconds(kDeadline).count())) == 1;
    }

private:
    pid_t pid_ = -1;
    UniqueFd ready_;
};

// The system call thread `tid` of `pid` is blocked in, if any.
std::optional<long> blocked_in(pid_t pid, pid_t tid) {
    std::ifstream file("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/syscall");
    std::string line;
    if (!std::getline(file, line)) return std::nullopt;
    auto call = parse_syscall_line(line);
    if (!call) return std::nullopt;
    return call->number;
}

// Waits until the main thread of `pid` is blocked in one of `numbers`.
bool wait_blocked_in(pid_t pid, const std::vector<long>& numbers) {
    return poll_until([&] {
        auto number = blocked_in(pid, pid);
        return number && std::find(numbers.begin(), numbers.end(), *number) != numbers.end();
    });
}

std::optional<Acceptor> find_in_instance(pid_t main, std::initializer_list<ino_t> inodes) {
    auto pids = instance_processes(main);
    return find_acceptor(pids, std::vector<ino_t>(inodes));
}

// find_acceptor, every 2 ms until it sees one.
std::optional<Acceptor> wait_acceptor(pid_t main, std::initializer_list<ino_t> inodes) {
    return poll_until([&] { return find_in_instance(main, inodes); });
}

struct Way {
    const char* mode;
    AcceptHow how;
    int fd;             // the fd number it waits on
    bool other_thread;  // not the main thread
    bool child;         // in a child of the helper
};

}  // namespace

TEST_CASE("accept watch: the names of the ways") {
    CHECK(std::string(accept_how_name(AcceptHow::epoll)) == "epoll");
    CHECK(std::string(accept_how_name(AcceptHow::accept)) == "accept");
    CHECK(std::string(accept_how_name(AcceptHow::poll)) == "poll");
    CHECK(std::string(accept_how_name(AcceptHow::select)) == "select");
}

TEST_CASE("accept watch: each way of waiting for connections is seen, in the process and thread that waits") {
    const Way ways[] = {
        {"accept", AcceptHow::accept, 3, false, false},
        {"accept-thread", AcceptHow::accept, 3, true, false},
        {"poll", AcceptHow::poll, 3, false, false},
        {"ppoll", AcceptHow::poll, 3, false, false},
        {"select", AcceptHow::select, 3, false, false},
        {"pselect", AcceptHow::select, 70, false, false},  // a dup, past the fd_set's first word
        {"epoll", AcceptHow::epoll, 3, false, false},
        {"fork-select", AcceptHow::select, 9, false, true},  // a pre-fork server's child
    };
    for (const auto& way : ways) {
        CAPTURE(way.mode);
        Listener listener;
        Helper helper(listener, {way.mode});
        auto found = wait_acceptor(helper.pid(), {listener.inode});
        CHECK(found.has_value());
        if (!found) continue;
        CHECK(accept_how_name(found->how) == std::string(accept_how_name(way.how)));
        CHECK(found->fd == way.fd);
        if (way.child) {
            CHECK(found->pid != helper.pid());
            CHECK(fdsup::parent_pid_of(found->pid).value_or(0) == helper.pid());
        } else {
            CHECK(found->pid == helper.pid());
        }
        if (way.other_thread) {
            CHECK(found->tid != found->pid);
        } else {
            CHECK(found->tid == found->pid);  // and for epoll, always
        }
    }
}

TEST_CASE("accept watch: holding the socket without waiting for connections on it is not accepting") {
    const long pause_calls[] = {
#ifdef SYS_pause
        SYS_pause,
#endif
        SYS_rt_sigsuspend, SYS_ppoll};
    const long epoll_waits[] = {
#ifdef SYS_epoll_wait
        SYS_epoll_wait,
#endif
        SYS_epoll_pwait,
#ifdef SYS_epoll_pwait2
        SYS_epoll_pwait2,
#endif
    };
    struct Idle {
        const char* mode;
        std::vector<long> blocked_in;
    };
    const Idle idles[] = {
        {"none", {std::begin(pause_calls), std::end(pause_calls)}},
        // The socket is in the epoll set, with events 0: registered, never reported.
        {"epoll-disabled", {std::begin(epoll_waits), std::end(epoll_waits)}},
        // Registered EPOLLIN|EPOLLONESHOT, the event taken and not re-armed.
        {"epoll-oneshot-consumed", {std::begin(epoll_waits), std::end(epoll_waits)}},
    };
    for (const auto& idle : idles) {
        CAPTURE(idle.mode);
        Listener listener;
        Helper helper(listener, {idle.mode});
        REQUIRE(helper.wait_ready());
        // Past its last step: blocked where it stays for good.
        REQUIRE(wait_blocked_in(helper.pid(), idle.blocked_in));
        CHECK_FALSE(find_in_instance(helper.pid(), {listener.inode}).has_value());
    }
}

TEST_CASE("accept watch: not yet while the app starts, then seen once it waits") {
    Listener listener;
    Helper helper(listener, {"epoll", "--delay-ms", "1500"});
    REQUIRE(wait_blocked_in(helper.pid(), {SYS_nanosleep, SYS_clock_nanosleep}));
    auto early = find_in_instance(helper.pid(), {listener.inode});
    // Conclusive only if it was still starting all along: it says so after the delay.
    if (!helper.said_ready()) CHECK_FALSE(early.has_value());
    auto found = wait_acceptor(helper.pid(), {listener.inode});
    REQUIRE(found);
    CHECK(found->how == AcceptHow::epoll);
}

TEST_CASE("accept watch: only the sockets asked about count") {
    for (const char* mode : {"accept", "poll", "select", "epoll"}) {
        CAPTURE(mode);
        Listener listener, other;
        Helper helper(listener, {mode});
        REQUIRE(wait_acceptor(helper.pid(), {listener.inode}));
        // Waiting, but on another socket than the one asked about.
        CHECK_FALSE(find_in_instance(helper.pid(), {other.inode}).has_value());
        CHECK_FALSE(find_in_instance(helper.pid(), {}).has_value());
        // Among several asked about.
        auto found = find_in_instance(helper.pid(), {other.inode, listener.inode});
        REQUIRE(found);
        CHECK(found->pid == helper.pid());
    }
}

TEST_CASE("accept watch: a process that is gone or was never there is skipped") {
    Listener listener;
    pid_t gone;
    {
        Helper helper(listener, {"accept"});
        gone = helper.pid();
    }
    Helper helper(listener, {"accept"});
    REQUIRE(wait_acceptor(helper.pid(), {listener.inode}));
    std::vector<pid_t> pids{0, -1, gone, 4194304, helper.pid()};
    auto found = find_acceptor(pids, std::vector<ino_t>{listener.inode});
    REQUIRE(found);
    CHECK(found->pid == helper.pid());
}

TEST_CASE("instance processes: main and its descendants, breadth first, at most the limit") {
    Listener listener;
    Helper helper(listener, {"fork-select"});
    auto both = poll_until([&] {
        auto pids = instance_processes(helper.pid());
        return pids.size() == 2 ? std::optional(pids) : std::nullopt;
    });
    REQUIRE(both);
    CHECK((*both)[0] == helper.pid());
    CHECK(fdsup::parent_pid_of((*both)[1]).value_or(0) == helper.pid());
    CHECK(instance_processes(helper.pid(), -1, 1) == std::vector<pid_t>{helper.pid()});
    CHECK(instance_processes(helper.pid(), -1, 0).empty());
}

TEST_CASE("instance processes: a cgroup's cgroup.procs, main first") {
    char dir_template[] = "/tmp/fdsup-test-accept-XXXXXX";
    REQUIRE(mkdtemp(dir_template) != nullptr);
    std::string dir = dir_template;
    struct Remove {
        std::string path;
        ~Remove() {
            std::error_code ec;
            std::filesystem::remove_all(path, ec);
        }
    } remove{dir};
    UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(dir_fd);

    // No cgroup.procs (the cgroup is gone): the descendants, as without a cgroup.
    CHECK(instance_processes(::getpid(), dir_fd.get(), 1) == std::vector<pid_t>{::getpid()});

    std::ofstream(dir + "/cgroup.procs") << "40\n20\n30\n10\n";
    CHECK(instance_processes(30, dir_fd.get()) == std::vector<pid_t>{30, 40, 20, 10});
    CHECK(instance_processes(10, dir_fd.get(), 2) == std::vector<pid_t>{10, 40});  // main found past the limit
    CHECK(instance_processes(40, dir_fd.get(), 1) == std::vector<pid_t>{40});
    CHECK(instance_processes(99, dir_fd.get(), 3) == std::vector<pid_t>{40, 20, 30});  // main not in it
    std::ofstream(dir + "/cgroup.procs") << "";
    CHECK(instance_processes(99, dir_fd.get()).empty());
}
