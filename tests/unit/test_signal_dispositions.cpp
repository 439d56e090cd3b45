// The signals a spawn's child resets (sys/signal_dispositions.h): whatever is not
// SIG_DFL in the supervisor, as the kernel has it, and the child really resets them.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <uv.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "launcher/launcher.h"
#include "launcher/plan_builder.h"
#include "loop/uv_handles.h"
#include "sys/process.h"
#include "sys/signal_dispositions.h"
#include "sys/unique_fd.h"

using namespace fdsup;

namespace {

constexpr uint64_t bit(int sig) { return uint64_t{1} << (sig - 1); }

void on_signal(int) {}

// Sets `sig`'s disposition for the test's length, then puts back what was there.
struct Disposition {
    int sig;
    struct sigaction saved{};
    Disposition(int sig, void (*handler)(int)) : sig(sig) {
        struct sigaction action{};
        action.sa_handler = handler;
        REQUIRE(sigaction(sig, &action, &saved) == 0);
        note_signal_dispositions_changed();
    }
    ~Disposition() {
        sigaction(sig, &saved, nullptr);
        note_signal_dispositions_changed();
    }
};

// SigIgn of /proc/PID/status: the signals that process ignores.
uint64_t ignored_by(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("SigIgn:", 0) == 0) return std::stoull(line.substr(7), nullptr, 16);
    FAIL("no SigIgn in /proc/" << pid << "/status");
    return 0;
}

}  // namespace

TEST_CASE("signal dispositions: a handler or SIG_IGN is reported until it is taken back") {
    REQUIRE((non_default_signals() & (bit(SIGUSR1) | bit(SIGURG))) == 0);
    {
        Disposition handled(SIGUSR1, on_signal);
        Disposition ignored(SIGURG, SIG_IGN);
        CHECK((non_default_signals() & bit(SIGUSR1)) != 0);
        CHECK((non_default_signals() & bit(SIGURG)) != 0);
    }
    CHECK((non_default_signals() & (bit(SIGUSR1) | bit(SIGURG))) == 0);
    // Never 0: glibc installs its own handlers on 32 and 33 unannounced.
    CHECK((non_default_signals() & (bit(32) | bit(33))) == (bit(32) | bit(33)));
}

TEST_CASE("signal dispositions: a loop's SignalWatch is seen without anyone asking again") {
    REQUIRE((non_default_signals() & bit(SIGWINCH)) == 0);  // asked: the answer is kept
    uv_loop_t loop;
    uv_loop_init(&loop);
    {
        SignalWatch watch(&loop, SIGWINCH, [](int) {});
        CHECK((non_default_signals() & bit(SIGWINCH)) != 0);
    }
    uv_run(&loop, UV_RUN_NOWAIT);  // the watch's close
    uv_loop_close(&loop);
    note_signal_dispositions_changed();  // libuv took its handler back
    CHECK((non_default_signals() & bit(SIGWINCH)) == 0);
}

TEST_CASE("launcher: the program starts with every disposition the supervisor changed back at the default") {
    SpawnContext context = SpawnContext::capture(1024);
    config::WorkerConfig worker;
    worker.name = "sleeper";
    worker.command = {"/bin/sleep", "30"};
    UniqueFd null_fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
    REQUIRE(null_fd);
    Launcher launcher;
    auto launch = [&] {
        auto prepared = PreparedSpawn::make(context, worker, 0, {}, {}, {null_fd.get(), null_fd.get(), null_fd.get()});
        REQUIRE(prepared);
        auto process = launcher.launch((*prepared)->plan());
        REQUIRE(process);
        uint64_t ignored = ignored_by(process->pid);
        (void)pidfd_signal(process->pidfd.get(), SIGKILL);
        (void)pidfd_reap(process->pidfd.get());
        return ignored;
    };
    CHECK((launch() & (bit(SIGUSR2) | bit(SIGTTOU))) == 0);  // a launch first: the answer is kept
    // An ignored disposition is the one a handler shares that survives execve: if the
    // child left out any signal the supervisor changed, the program would show it here.
    Disposition usr2(SIGUSR2, SIG_IGN);
    Disposition ttou(SIGTTOU, SIG_IGN);
    CHECK(launch() == 0);
}
