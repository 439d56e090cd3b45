// Spawn cost against the spawning process's RSS: fdsup's launcher (clone with
// CLONE_VM|CLONE_VFORK, plan prepared each time as the supervisor does) vs fork+exec vs
// posix_spawn, at a small and a large RSS. The time measured is "until the child has
// exec'd": for the launcher and posix_spawn that is when the call returns; for fork+exec
// it is when a CLOEXEC pipe held by the child reports EOF.
//
// usage: spawn_cost [iterations] [large_rss_mib]
#include <fcntl.h>
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

double time_launcher(int iterations) {
    fdsup::SpawnContext context = fdsup::SpawnContext::capture(1024);
    fdsup::config::WorkerConfig worker;
    worker.name = "bench";
    worker.command = {kProgram};
    fdsup::Launcher launcher;
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    std::vector<double> samples;
    for (int i = 0; i < iterations; ++i) {
        auto start = Clock::now();
        auto prepared = fdsup::PreparedSpawn::make(context, worker, 0, {}, {}, {null_fd, null_fd, null_fd});
        auto process = launcher.launch((*prepared)->plan());
        auto done = Clock::now();
        if (!process) {
            std::fprintf(stderr, "launch: %s\n", process.error().text().c_str());
            std::exit(1);
        }
        (void)fdsup::pidfd_reap(process->pidfd.get());
        samples.push_back(micros(done - start));
    }
    close(null_fd);
    return median(samples);
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

double time_posix_spawn(int iterations) {
    std::vector<double> samples;
    char* argv[] = {const_cast<char*>(kProgram), nullptr};
    for (int i = 0; i < iterations; ++i) {
        pid_t pid;
        auto start = Clock::now();
        if (posix_spawn(&pid, kProgram, nullptr, nullptr, argv, environ) != 0) std::exit(1);
        auto done = Clock::now();
        waitpid(pid, nullptr, 0);
        samples.push_back(micros(done - start));
    }
    return median(samples);
}

}  // namespace

int main(int argc, char** argv) {
    int iterations = argc > 1 ? std::atoi(argv[1]) : 200;
    long large_mib = argc > 2 ? std::atol(argv[2]) : 2048;
    std::vector<char> ballast;
    std::printf("%-10s %14s %14s %14s   (median us until exec'd, %d spawns each)\n", "RSS", "launcher",
                "fork+exec", "posix_spawn", iterations);
    double launcher_small = 0, launcher_large = 0, fork_small = 0, fork_large = 0;
    for (long target : {10L, large_mib}) {
        long grow = std::max(0L, target - rss_mib());
        ballast.resize(ballast.size() + static_cast<size_t>(grow) * 1024 * 1024);
        std::memset(ballast.data(), 1, ballast.size());  // touch it: resident, not just reserved
        double l = time_launcher(iterations), f = time_fork_exec(iterations), p = time_posix_spawn(iterations);
        std::printf("%-10s %14.1f %14.1f %14.1f\n", (std::to_string(rss_mib()) + " MiB").c_str(), l, f, p);
        (target == 10 ? launcher_small : launcher_large) = l;
        (target == 10 ? fork_small : fork_large) = f;
    }
    std::printf("launcher large/small RSS: %.2fx   fork+exec large/small RSS: %.2fx\n",
                launcher_large / launcher_small, fork_large / fork_small);
    return 0;
}
