// Spawn cost against the spawning process's RSS: fdsup's launcher (clone with
// CLONE_VM|CLONE_VFORK) vs glibc's posix_spawn asked for the same work vs fork+exec, at a
// small and a large RSS. The time measured is "until the child has exec'd": for the
// launcher and posix_spawn that is when the call returns; for fork+exec it is when a
// CLOEXEC pipe held by the child reports EOF.
//
// What each side does, so that the two vfork-style columns compare like with like:
//   plan         PreparedSpawn::make, timed on its own (the supervisor builds it before
//                the clone; posix_spawn's file actions and attributes are built outside
//                its timing alike)
//   launcher     Launcher::launch of that plan: stdio from /dev/null, everything above 2
//                closed, setsid, pdeathsig, the signal mask, dispositions reset, execve
//   posix_spawn  the same: dup2 of /dev/null onto 0-2, closefrom(3), POSIX_SPAWN_SETSID,
//                POSIX_SPAWN_SETSIGMASK, POSIX_SPAWN_SETSIGDEF of the ignored SIGPIPE,
//                the same argv and env (glibc resets the dispositions that have a
//                handler itself)
// Each RSS is measured a second after the ballast grew to it, not straight away.
// Both run with the handlers fdsupd has (libuv's on TERM, INT, HUP, USR2; SIGPIPE
// ignored), alternating which goes first, sample by sample, so that whatever the machine
// does meanwhile (another process, the kernel still settling a fresh large RSS) falls on
// both alike.
//
// usage: spawn_cost [iterations] [large_rss_mib]
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "launcher/launcher.h"
#include "launcher/plan_builder.h"
#include "sys/process.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kProgram = "/bin/true";

double micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

long rss_mib() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6) / 1024;
    return 0;
}

struct VforkTimes {
    double plan, launcher, posix_spawn;
};

void on_signal(int) {}

// The dispositions fdsupd runs with, which a spawn has to take back in the child.
void install_fdsupd_handlers() {
    struct sigaction action{};
    action.sa_handler = on_signal;
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR2}) sigaction(sig, &action, nullptr);
    signal(SIGPIPE, SIG_IGN);
}

VforkTimes time_vfork_spawns(int iterations) {
    fdsup::SpawnContext context = fdsup::SpawnContext::capture(1024);
    fdsup::config::WorkerConfig worker;
    worker.name = "bench";
    worker.command = {kProgram};
    fdsup::Launcher launcher;
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    for (int fd = 0; fd < 3; ++fd) posix_spawn_file_actions_adddup2(&actions, null_fd, fd);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t empty;
    sigemptyset(&empty);
    posix_spawnattr_setsigmask(&attr, &empty);
    // glibc resets the handlers itself, but an ignored signal stays ignored unless it is
    // named here; the launcher resets SIGPIPE's SIG_IGN too.
    sigset_t ignored;
    sigemptyset(&ignored);
    sigaddset(&ignored, SIGPIPE);
    posix_spawnattr_setsigdefault(&attr, &ignored);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    std::vector<double> plans, launches, spawns;
    auto run_launcher = [&] {
        auto began = Clock::now();
        auto prepared = fdsup::PreparedSpawn::make(context, worker, 0, {}, {}, {null_fd, null_fd, null_fd});
        auto planned = Clock::now();
        auto process = launcher.launch((*prepared)->plan());
        auto done = Clock::now();
        if (!process) {
            std::fprintf(stderr, "launch: %s\n", process.error().text().c_str());
            std::exit(1);
        }
        (void)fdsup::pidfd_reap(process->pidfd.get());
        plans.push_back(micros(planned - began));
        launches.push_back(micros(done - planned));
    };
    auto run_posix_spawn = [&] {
        // The plan's argv and env (built untimed), as the launcher gets them.
        auto prepared = fdsup::PreparedSpawn::make(context, worker, 0, {}, {}, {null_fd, null_fd, null_fd});
        const auto& plan = (*prepared)->plan();
        pid_t pid;
        auto began = Clock::now();
        if (posix_spawn(&pid, kProgram, &actions, &attr, plan.argv, plan.envp) != 0) std::exit(1);
        auto done = Clock::now();
        waitpid(pid, nullptr, 0);
        spawns.push_back(micros(done - began));
    };
    for (int i = 0; i < iterations; ++i) {
        if (i % 2 == 0) {
            run_launcher();
            run_posix_spawn();
        } else {
            run_posix_spawn();
            run_launcher();
        }
    }
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
    close(null_fd);
    return {median(plans), median(launches), median(spawns)};
}

double time_fork_exec(int iterations) {
    std::vector<double> samples;
    char* argv[] = {const_cast<char*>(kProgram), nullptr};
    for (int i = 0; i < iterations; ++i) {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) < 0) std::exit(1);
        auto start = Clock::now();
        pid_t pid = fork();
        if (pid == 0) {
            execve(kProgram, argv, environ);
            _exit(127);
        }
        close(fds[1]);
        char byte;
        while (read(fds[0], &byte, 1) > 0) {
        }
        auto done = Clock::now();
        close(fds[0]);
        waitpid(pid, nullptr, 0);
        samples.push_back(micros(done - start));
    }
    return median(samples);
}

}  // namespace

int main(int argc, char** argv) {
    int iterations = argc > 1 ? std::atoi(argv[1]) : 200;
    long large_mib = argc > 2 ? std::atol(argv[2]) : 2048;
    install_fdsupd_handlers();
    std::vector<char> ballast;
    std::printf("%-10s %10s %10s %12s %10s   (median us until exec'd, %d spawns each)\n", "RSS", "plan",
                "launcher", "posix_spawn", "fork+exec", iterations);
    VforkTimes small{}, large{};
    double fork_small = 0, fork_large = 0;
    for (long target : {10L, large_mib}) {
        long grow = std::max(0L, target - rss_mib());
        ballast.resize(ballast.size() + static_cast<size_t>(grow) * 1024 * 1024);
        std::memset(ballast.data(), 1, ballast.size());  // touch it: resident, not just reserved
        // Let the kernel finish what the growth set off (its memcg and LRU upkeep runs on
        // these CPUs too) before measuring: a large-RSS figure taken right after a 2 GiB
        // memset measured that, not the launcher.
        std::this_thread::sleep_for(std::chrono::seconds(1));
        VforkTimes t = time_vfork_spawns(iterations);
        double f = time_fork_exec(iterations);
        std::printf("%-10s %10.1f %10.1f %12.1f %10.1f\n", (std::to_string(rss_mib()) + " MiB").c_str(), t.plan,
                    t.launcher, t.posix_spawn, f);
        (target == 10 ? small : large) = t;
        (target == 10 ? fork_small : fork_large) = f;
    }
    std::printf("launcher/posix_spawn: %.2fx at small RSS, %.2fx at large RSS\n", small.launcher / small.posix_spawn,
                large.launcher / large.posix_spawn);
    std::printf("large/small RSS: launcher %.2fx, plan %.2fx, posix_spawn %.2fx, fork+exec %.2fx\n",
                large.launcher / small.launcher, large.plan / small.plan, large.posix_spawn / small.posix_spawn,
                fork_large / fork_small);
    return 0;
}
