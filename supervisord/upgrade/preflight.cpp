#include "upgrade/preflight.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <sstream>
#include <unordered_set>
#include <vector>

#include "launcher/fd_map.h"
#include "launcher/launcher.h"
#include "loop/uv_handles.h"
#include "sys/process.h"
#include "sys/unique_fd.h"

extern char** environ;

namespace fdsup::upgrade {
namespace {

constexpr size_t kMaxOutput = 16 * 1024;

std::unordered_set<pid_t>& running_checks() {
    static std::unordered_set<pid_t> pids;  // one loop thread
    return pids;
}

// One child: its combined stdout and stderr, its exit status. Owns itself until done.
class Check : public std::enable_shared_from_this<Check> {
public:
    using Finished = std::function<void(Result<std::string> output)>;

    static void start(uv_loop_t* loop, std::vector<std::string> argv, Finished finished) {
        auto check = std::shared_ptr<Check>(new Check(loop, std::move(argv), std::move(finished)));
        check->launch();
    }

private:
    Check(uv_loop_t* loop, std::vector<std::string> argv, Finished finished)
        : loop_(loop), argv_(std::move(argv)), finished_(std::move(finished)), timeout_(loop) {}

    std::string command() const {
        std::string text;
        for (const auto& arg : argv_) text += (text.empty() ? "" : " ") + arg;
        return text;
    }

    void launch() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) return finish(fail_errno("pre-flight: pipe"));
        read_end_.reset(fds[0]);
        UniqueFd write_end(fds[1]);
        UniqueFd dev_null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        if (!dev_null) return finish(fail_errno("pre-flight: open /dev/null"));
        // Through the launcher, as workers are spawned: its child shares fdsupd's fd
        // table and keeps only the few fds below these (CLOSE_RANGE_UNSHARE), where a
        // fork-style spawn would copy the whole table (tens of thousands of fds at
        // 10,000 instances) only for its exec to close them one by one.
        auto map = FdMapPlan::make({{dev_null.get(), 0}, {write_end.get(), 1}, {write_end.get(), 2}});
        if (!map) return finish(std::unexpected(map.error()));
        std::vector<char*> argv;
        for (auto& arg : argv_) argv.push_back(arg.data());
        argv.push_back(nullptr);
        struct rlimit nofile{};
        ::getrlimit(RLIMIT_NOFILE, &nofile);
        SpawnPlan plan{};
        plan.path = argv_[0].c_str();  // as given: no PATH search
        plan.search_path = "";
        plan.argv = argv.data();
        plan.envp = environ;
        plan.fd_map = map->view();
        plan.umask_value = -1;
        plan.parent_pid = ::getpid();
        sigemptyset(&plan.exec_sigmask);
        plan.close_fallback_limit = static_cast<int>(std::min<rlim_t>(nofile.rlim_max, 1u << 20));
        plan.keep_fds_below = map->max_source() + 1;
        auto launched = launcher_.launch(plan);
        if (!launched) {
            // "exec PATH: why (stage: ...)", said as before the launcher ran it.
            std::string why = launched.error().text();
            if (why.starts_with("exec ")) why.erase(0, 5);
            return finish(fail("pre-flight: cannot run " + why));
        }
        pid_ = launched->pid;
        pidfd_ = std::move(launched->pidfd);
        running_checks().insert(pid_);
        auto self = shared_from_this();
        output_watch_ = std::make_unique<FdWatch>(loop_, read_end_.get());
        exit_watch_ = std::make_unique<FdWatch>(loop_, pidfd_.get());
        if (output_watch_->start(UV_READABLE | UV_DISCONNECT, [self](int, int) { self->read_output(); }) != 0 ||
            exit_watch_->start(UV_READABLE, [self](int, int) { self->on_exit(); }) != 0) {
            // Unwatched, it would never be reaped nor reported: the upgrade would wait forever.
            output_watch_.reset();
            exit_watch_.reset();
            (void)pidfd_signal(pidfd_.get(), SIGKILL);
            (void)pidfd_reap(pidfd_.get());
            running_checks().erase(pid_);
            return finish(fail("pre-flight: cannot watch " + argv_[0]));
        }
        timeout_.start(std::chrono::duration_cast<std::chrono::milliseconds>(kPreflightTimeout), [self] {
            (void)pidfd_signal(self->pidfd_.get(), SIGKILL);
            self->timed_out_ = true;
        });
    }

    void read_output() {
        char buffer[4096];
        for (;;) {
            ssize_t n = ::read(read_end_.get(), buffer, sizeof buffer);
            if (n <= 0) {
                if (n == 0 || (errno != EAGAIN && errno != EINTR)) output_watch_.reset();
                return;
            }
            // The tail is kept: the confirmation and the formats are printed last
            // (stdout is flushed at exit), after whatever went to stderr.
            output_.append(buffer, static_cast<size_t>(n));
            if (output_.size() > kMaxOutput) output_.erase(0, output_.size() - kMaxOutput);
        }
    }

    void on_exit() {
        auto reaped = pidfd_try_reap(pidfd_.get());
        if (reaped && !reaped->has_value()) return;  // not yet
        running_checks().erase(pid_);
        read_output();
        exit_watch_.reset();
        output_watch_.reset();
        timeout_.stop();
        while (!output_.empty() && (output_.back() == '\n' || output_.back() == ' ')) output_.pop_back();
        if (!reaped) return finish(std::unexpected(reaped.error()));
        const ExitStatus& status = **reaped;
        if (timed_out_)
            return finish(fail("pre-flight: `" + command() + "` did not finish within " +
                               std::to_string(kPreflightTimeout.count()) + " s"));
        if (status.signaled || status.code != 0)
            return finish(fail("pre-flight: `" + command() + "` " + status.describe() +
                               (output_.empty() ? "" : ": " + output_)));
        finish(output_);
    }

    void finish(Result<std::string> result) {
        // Always from the loop, never inside start(): the caller's state is settled.
        auto self = shared_from_this();
        auto call = std::make_shared<Timer>(loop_);
        call->start(std::chrono::milliseconds(0), [self, call, result = std::move(result)]() mutable {
            auto finished = std::move(self->finished_);
            finished(std::move(result));
        });
    }

    uv_loop_t* loop_;
    std::vector<std::string> argv_;
    Finished finished_;
    pid_t pid_ = -1;
    UniqueFd read_end_;
    UniqueFd pidfd_;
    Launcher launcher_;  // its own child stack; the supervisor's launcher is not ours to use
    std::unique_ptr<FdWatch> output_watch_;
    std::unique_ptr<FdWatch> exit_watch_;
    Timer timeout_;
    bool timed_out_ = false;
    std::string output_;
};

}  // namespace

bool is_preflight_child(pid_t pid) { return running_checks().contains(pid); }

void run_preflight(uv_loop_t* loop, const std::string& binary, const std::string& config_path, int state_version,
                   PreflightDone done) {
    std::vector<std::string> argv{binary, "--check-config", "-c", config_path, "--state-formats"};
    Check::start(loop, argv, [binary, state_version, done = std::move(done)](Result<std::string> output) {
        if (!output) return done(std::unexpected(output.error()));
        bool config_valid = false;
        std::vector<std::string> formats;
        std::istringstream lines(*output);
        std::string line;
        while (std::getline(lines, line)) {
            if (line.ends_with(": configuration is valid")) config_valid = true;
            else if (!line.empty() && line.find_first_not_of("0123456789") == std::string::npos) formats.push_back(line);
        }
        // A binary that exits 0 without saying so did not check (one older than this
        // pre-flight, or not an fdsupd at all).
        if (!config_valid)
            return done(fail("pre-flight: " + binary + " did not confirm the configuration" +
                             (output->empty() ? std::string() : " (it said: " + *output + ")")));
        for (const auto& format : formats)
            if (format == std::to_string(state_version)) return done({});
        std::string readable;
        for (const auto& format : formats) readable += (readable.empty() ? "" : ", ") + format;
        done(fail("pre-flight: " + binary + " cannot read state format " + std::to_string(state_version) +
                  " (it reads: " + (readable.empty() ? "none" : readable) + ")"));
    });
}

}  // namespace fdsup::upgrade
