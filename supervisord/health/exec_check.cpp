#include "health/exec_check.h"

#include <fcntl.h>
#include <signal.h>

#include <utility>

#include "health/probe_report.h"
#include "sys/process.h"
#include "sys/signal_names.h"

namespace fdsup::health {

namespace {

// The worker's config as the probe's process sees it: its user, environment, limits and
// directory, none of its sockets, and no sd_notify (the probe is not the worker).
config::WorkerConfig probe_spec(const config::WorkerConfig& worker, const std::vector<std::string>& argv) {
    config::WorkerConfig spec = worker;
    spec.command = argv;
    spec.fds.clear();
    spec.scm_rights.clear();
    spec.fd_store_max = 0;
    spec.watchdog = config::Duration::zero();
    spec.ready = config::ReadyMode::exec;
    return spec;
}

std::string describe_exit(const ExitStatus& status) {
    if (status.signaled) return "killed by SIG" + signal_name(status.signal);
    return "exit status " + std::to_string(status.code);
}

// The probe's process group, and the probe itself should it have left the group.
// Only while the probe is not yet reaped: its zombie pins the pid and the group id.
void kill_process(pid_t pid, int pidfd) {
    ::kill(-pid, SIGKILL);
    (void)pidfd_signal(pidfd, SIGKILL);
}

// Waits for a SIGKILLed probe and reaps it. uv_poll_init made the pidfd non-blocking,
// and a blocking waitid(P_PIDFD) on a non-blocking pidfd fails with EAGAIN: blocking again first.
void reap_killed(int pidfd) {
    int flags = ::fcntl(pidfd, F_GETFL);
    if (flags >= 0 && (flags & O_NONBLOCK) != 0) ::fcntl(pidfd, F_SETFL, flags & ~O_NONBLOCK);
    (void)pidfd_reap(pidfd);
}

}  // namespace

class ExecChecks::Check final : public ProbeCheck {
public:
    Check(ExecChecks& owner, ProbeDone done) : owner_(owner), report_(owner.loop_, std::move(done)) {}
    ~Check() override {
        if (pid_ > 0) owner_.abandon(pid_);
    }

    ExecChecks& owner_;
    pid_t pid_ = -1;  // while the process runs and this check waits for it
    ProbeReport report_;
};

ExecChecks::ExecChecks(uv_loop_t* loop, Launcher& launcher, const SpawnContext& context, int null_fd)
    : loop_(loop), launcher_(launcher), context_(context), null_fd_(null_fd) {}

ExecChecks::~ExecChecks() { kill_and_reap_all(false); }

std::unique_ptr<ProbeCheck> ExecChecks::start(const config::WorkerConfig& worker, int instance,
                                              const std::vector<std::string>& argv,
                                              std::chrono::milliseconds timeout, ProbeDone done) {
    auto check = std::make_unique<Check>(*this, std::move(done));
    auto prepared = PreparedSpawn::make(context_, probe_spec(worker, argv), instance, {}, {},
                                        StdioFds{null_fd_, null_fd_, null_fd_});
    if (!prepared) {
        check->report_.report_later(false, prepared.error().text());
        return check;
    }
    auto launched = launcher_.launch((*prepared)->plan());
    if (!launched) {
        check->report_.report_later(false, launched.error().text());
        return check;
    }

    auto process = std::make_unique<Process>();
    process->pid = launched->pid;
    process->pidfd = std::move(launched->pidfd);
    process->watch.emplace(loop_, process->pidfd.get());
    pid_t pid = process->pid;
    if (int err = process->watch->start(UV_READABLE, [this, pid](int, int) { on_exit(pid); }); err != 0) {
        // Unwatched, it would never be reaped: take it back now.
        kill_process(pid, process->pidfd.get());
        reap_killed(process->pidfd.get());
        check->report_.report_later(false, std::string("watch the probe's pidfd: ") + uv_strerror(err));
        return check;
    }
    process->check = check.get();
    check->pid_ = pid;
    check->report_.arm_timeout(timeout, [check = check.get()] {
        check->owner_.abandon(check->pid_);
        check->pid_ = -1;
        check->report_.report(false, check->report_.timed_out());
    });
    processes_[pid] = std::move(process);
    return check;
}

void ExecChecks::abandon(pid_t pid) {
    auto it = processes_.find(pid);
    if (it == processes_.end()) return;
    it->second->check = nullptr;
    kill_process(pid, it->second->pidfd.get());
}

void ExecChecks::on_exit(pid_t pid) {
    auto it = processes_.find(pid);
    if (it == processes_.end()) return;
    Process& process = *it->second;
    auto exited = pidfd_has_exited(process.pidfd.get());
    if (exited && !*exited) return;  // a spurious wakeup: still running
    // Whatever the probe left behind in its group goes with it, before the reap.
    if (exited) ::kill(-pid, SIGKILL);
    auto reaped = pidfd_try_reap(process.pidfd.get());
    if (reaped && !reaped->has_value()) return;  // still running after all
    bool passed = reaped && !(*reaped)->signaled && (*reaped)->code == 0;
    // Without a status (someone else reaped it, a waitpid(-1) that should not have) the
    // entry goes all the same: a pidfd that stays readable must not stay watched.
    std::string detail = reaped ? describe_exit(**reaped)
                                : "pid " + std::to_string(pid) + ": " + reaped.error().text() + "; exit status unknown";
    Check* check = process.check;
    processes_.erase(it);  // closes the watch, then the pidfd
    if (check == nullptr) return;
    check->pid_ = -1;
    check->report_.report(passed, std::move(detail));  // may destroy the check, or start another
}

void ExecChecks::kill_all() { kill_and_reap_all(true); }

void ExecChecks::kill_and_reap_all(bool report) {
    for (auto& [pid, process] : processes_) {
        kill_process(pid, process->pidfd.get());
        reap_killed(process->pidfd.get());
        if (process->check == nullptr) continue;
        process->check->pid_ = -1;
        if (report) process->check->report_.report_later(false, "killed: fdsupd stopped every probe");
        else process->check->report_.cancel();
    }
    processes_.clear();
}

}  // namespace fdsup::health
