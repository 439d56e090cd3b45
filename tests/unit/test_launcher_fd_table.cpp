// The launcher's child shares the supervisor's fd table (CLONE_FILES) until its
// close_range(keep_fds_below, ~0U, CLOSE_RANGE_UNSHARE): whatever sits above or below
// that line, the program must get exactly its fd map, and the supervisor's own table
// must come out of the spawn unchanged. And sys/high_fd.h, which keeps the long-lived
// fds above the line.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "launcher/launcher.h"
#include "launcher/plan_builder.h"
#include "sys/high_fd.h"
#include "sys/process.h"
#include "sys/unique_fd.h"

using namespace fdsup;

namespace {

std::map<int, std::string> fds_of(pid_t pid) {
    std::map<int, std::string> fds;
    std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    for (const auto& entry : std::filesystem::directory_iterator(dir))
        fds[std::stoi(entry.path().filename().string())] = std::filesystem::read_symlink(entry.path()).string();
    return fds;
}

std::string link_of(int fd) { return std::filesystem::read_symlink("/proc/self/fd/" + std::to_string(fd)).string(); }

std::set<int> open_fds_of_self() {
    std::set<int> fds;
    for (const auto& [fd, target] : fds_of(getpid())) fds.insert(fd);
    return fds;
}

}  // namespace

TEST_CASE("high fd: moved to the lowest free number at or above the base, the low one closed") {
    UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    REQUIRE(fd);
    int low = fd.get();
    std::string target = link_of(low);
    move_fd_high(fd, 300);
    CHECK(fd.get() >= 300);
    CHECK(link_of(fd.get()) == target);
    CHECK((::fcntl(fd.get(), F_GETFD) & FD_CLOEXEC) != 0);
    CHECK(::fcntl(low, F_GETFD) < 0);  // the low number is free again

    int high = fd.get();
    move_fd_high(fd, 300);  // already high: stays
    CHECK(fd.get() == high);
}

TEST_CASE("high fd: kept where it is when the move fails or there is no base") {
    UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    REQUIRE(fd);
    int low = fd.get();
    move_fd_high(fd, 0);
    CHECK(fd.get() == low);
    struct rlimit nofile{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &nofile) == 0);
    move_fd_high(fd, static_cast<int>(std::min<rlim_t>(nofile.rlim_cur, 1 << 30)));  // EINVAL: at the limit
    CHECK(fd.get() == low);
    CHECK(::fcntl(low, F_GETFD) >= 0);
}

TEST_CASE("high fd: the base is half the soft limit, capped, and none below 256") {
    struct rlimit nofile{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &nofile) == 0);
    int base = high_fd_base();
    if (nofile.rlim_cur < 512) CHECK(base == 0);
    else if (nofile.rlim_cur != RLIM_INFINITY) CHECK(base == static_cast<int>(std::min<rlim_t>(nofile.rlim_cur / 2, 65536)));
    CHECK(base <= 65536);
}

TEST_CASE("launcher: the program gets exactly its fd map, whatever is open above and below the map's sources") {
    SpawnContext context = SpawnContext::capture(1024);
    UniqueFd null_fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
    REQUIRE(null_fd);
    // Inheritable fds (no FD_CLOEXEC) on both sides of the socket's number: had the
    // child kept any of them, execve would hand it to the program.
    std::vector<UniqueFd> clutter;
    for (int i = 0; i < 200; ++i) clutter.emplace_back(::open("/dev/null", O_RDONLY));
    int pair[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
    UniqueFd near(pair[0]), far_low(pair[1]);
    // The socket the worker gets sits above all that clutter, so keep_fds_below is
    // above it too; more inheritable fds above the socket.
    UniqueFd socket_fd(::fcntl(near.get(), F_DUPFD_CLOEXEC, 400));
    REQUIRE(socket_fd.get() >= 400);
    for (int i = 0; i < 50; ++i) clutter.emplace_back(::fcntl(null_fd.get(), F_DUPFD, 450));
    for (const auto& fd : clutter) REQUIRE(fd);

    config::WorkerConfig worker;
    worker.name = "fds";
    worker.command = {"/bin/sleep", "30"};
    worker.fds[3] = "http";
    std::map<std::string, int> sockets{{"http", socket_fd.get()}};
    std::set<int> before = open_fds_of_self();

    Launcher launcher;
    for (int round = 0; round < 2; ++round) {  // the second after any fallback the first chose
        auto prepared = PreparedSpawn::make(context, worker, 0, sockets, {}, {null_fd.get(), null_fd.get(), null_fd.get()});
        REQUIRE(prepared);
        CHECK((*prepared)->plan().keep_fds_below == socket_fd.get() + 1);
        {
            auto process = launcher.launch((*prepared)->plan());
            REQUIRE(process);
            // sleep's own start-up (locale files) may hold an fd for a moment; an fd the
            // child let through would stay for good.
            auto fds = fds_of(process->pid);
            for (int i = 0; i < 500 && fds.size() > 4; ++i) {
                ::usleep(10'000);
                fds = fds_of(process->pid);
            }
            (void)pidfd_signal(process->pidfd.get(), SIGKILL);
            (void)pidfd_reap(process->pidfd.get());
            CHECK(fds.size() == 4);
            CHECK(fds[0] == "/dev/null");
            CHECK(fds[1] == "/dev/null");
            CHECK(fds[2] == "/dev/null");
            CHECK(fds[3] == link_of(socket_fd.get()));
        }
        // Nothing of the supervisor's closed, moved or added (the pidfd is gone again).
        CHECK(open_fds_of_self() == before);
    }
    CHECK(launcher.fd_table_unshare_errno() == 0);  // Linux >= 5.9, no filter here
}

TEST_CASE("launcher: a worker's pidfd is kept above the high base") {
    int base = high_fd_base();
    if (base == 0) return;  // a soft limit under 512: nothing is moved
    SpawnContext context = SpawnContext::capture(1024);
    UniqueFd null_fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
    config::WorkerConfig worker;
    worker.name = "sleeper";
    worker.command = {"/bin/sleep", "30"};
    Launcher launcher;
    auto prepared = PreparedSpawn::make(context, worker, 0, {}, {}, {null_fd.get(), null_fd.get(), null_fd.get()});
    REQUIRE(prepared);
    auto process = launcher.launch((*prepared)->plan());
    REQUIRE(process);
    CHECK(process->pidfd.get() >= base);
    (void)pidfd_signal(process->pidfd.get(), SIGKILL);
    (void)pidfd_reap(process->pidfd.get());
}
