#include "supervisor/supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "config/values.h"
#include "sockets/bind.h"
#include "sys/output_file.h"

namespace fdsup {
using config::format_duration;

Supervisor::Supervisor(uv_loop_t* loop, config::Config config, std::vector<OwnedSocket> sockets,
                       SpawnContext context, bool for_restore)
    : loop_(loop), config_(std::move(config)), context_(std::move(context)), notify_drop_summary_(loop), shutdown_timer_(loop) {
    for (auto& socket : sockets) adopt_socket(std::move(socket));
    rebuild_socket_maps();
    null_fd_.reset(::open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!null_fd_) {
        std::perror("fdsupd: open /dev/null");
        std::abort();
    }
    auto hangups = HangupWatch::open(loop_, [this](int fd) { return on_stored_fd_hangup(fd); });
    if (hangups) hangups_ = std::move(*hangups);
    else spdlog::error("{}; stored fds are kept even when they hang up", hangups.error().text());
    for (const auto& worker_config : config_.workers) add_worker(worker_config, !for_restore);
}

Supervisor::~Supervisor() = default;

void Supervisor::adopt_socket(OwnedSocket socket) {
    socket.serial = next_socket_serial_++;
    sockets_.push_back(std::move(socket));
}

void Supervisor::rebuild_socket_maps() {
    socket_fds_.clear();
    socket_serials_.clear();
    for (const auto& socket : sockets_) {
        socket_fds_[socket.config.name] = socket.fd.get();
        socket_serials_[socket.config.name] = socket.serial;
    }
}

Worker& Supervisor::add_worker(const config::WorkerConfig& worker_config, bool with_instances) {
    auto worker = std::make_unique<Worker>();
    worker->config = worker_config;
    Worker& added = *worker;
    workers_.push_back(std::move(worker));
    if (with_instances)
        for (int i = 0; i < worker_config.instances; ++i) add_instance(added);
    return added;
}

Instance& Supervisor::add_instance(Worker& worker) {
    uint64_t id = next_instance_id_++;
    // The next index after the instances that stay (not those on their way out).
    int index = static_cast<int>(std::count_if(worker.instances.begin(), worker.instances.end(),
                                               [](const auto& i) { return !i->retiring && !i->replacement; }));
    worker.instances.push_back(std::make_unique<Instance>(loop_, &worker, index, id));
    instances_by_id_[id] = worker.instances.back().get();
    return *worker.instances.back();
}

Worker* Supervisor::find_worker(const std::string& name) const {
    for (const auto& worker : workers_)
        if (worker->config.name == name && !worker->removing) return worker.get();
    return nullptr;
}

Instance* Supervisor::find_instance(uint64_t id) const {
    auto it = instances_by_id_.find(id);
    return it == instances_by_id_.end() ? nullptr : it->second;
}

// ---- starting ---------------------------------------------------------------------

void Supervisor::start_all() {
    for (auto& worker : workers_) start_worker(*worker);
}

bool Supervisor::dependencies_ready(const Worker& worker) const {
    for (const auto& name : worker.config.after)
        if (const Worker* other = find_worker(name); other && !other->all_ready()) return false;
    return true;
}

void Supervisor::start_worker(Worker& worker) {
    if (shutting_down_ || worker.stopped_by_operator || worker.removing) return;
    if (!dependencies_ready(worker)) {
        if (!worker.waiting_for_dependencies) {
            std::string names;
            for (const auto& n : worker.config.after) names += (names.empty() ? "" : ", ") + n;
            spdlog::info("worker {}: waiting for {} to be ready", worker.config.name, names);
        }
        worker.waiting_for_dependencies = true;
        return;
    }
    worker.waiting_for_dependencies = false;
    for (auto& instance : worker.instances)
        if (!instance->has_process() && !instance->retiring && instance->state != InstanceState::backoff &&
            instance->state != InstanceState::failed)
            spawn(*instance);
}

void Supervisor::start_waiting_dependents() {
    for (auto& worker : workers_)
        if (worker->waiting_for_dependencies) start_worker(*worker);
}

// ---- spawning ---------------------------------------------------------------------

void Supervisor::spawn(Instance& instance) {
    const auto& cfg = instance.worker->config;
    const Worker& worker = *instance.worker;
    if (shutting_down_ || worker.stopped_by_operator || worker.removing) {
        // A backoff timer that fired after the worker was stopped, removed or shut down.
        instance.state = InstanceState::stopped;
        return;
    }
    if (!instance.start_limiter.try_start(cfg, Clock::now())) {
        instance.state = InstanceState::failed;
        instance.last_error = "start limit hit (" + std::to_string(cfg.start_limit_burst) + " starts within " +
                              format_duration(cfg.start_limit_interval) + ")" +
                              (instance.last_error.empty() ? "" : "; last failure: " + instance.last_error);
        spdlog::error("worker {}: start limit hit ({} starts within {}); state failed until "
                      "`fdsupctl start {}`",
                      instance.label(), cfg.start_limit_burst, format_duration(cfg.start_limit_interval),
                      cfg.name);
        return;
    }
    if (auto launched = launch(instance); !launched) {
        handle_spawn_failure(instance, launched.error());
        return;
    }
    instance.start_limiter.note_exec();
    instance.last_error.clear();
    instance.state = InstanceState::starting;
    switch (cfg.ready) {
        case config::ReadyMode::exec: become_ready(instance); break;
        case config::ReadyMode::delay:  // ready once it has survived ready_delay
            arm_ready_delay(instance, Clock::now() + cfg.ready_delay);
            break;
        case config::ReadyMode::notify:  // ready at READY=1, failed after ready_timeout
            arm_ready_timeout(instance, Clock::now() + cfg.ready_timeout);
            break;
    }
}

Result<void> Supervisor::launch(Instance& instance) {
    const auto& cfg = instance.worker->config;

    // stdout/stderr: a pipe per stream for "log" (read by an OutputCapture), else the
    // file, /dev/null or the supervisor's own stream.
    UniqueFd out_read, out_write, err_read, err_write;
    auto make_stream = [&](const config::OutputTarget& target, UniqueFd& read_end, UniqueFd& write_end,
                           const char* what) -> Result<void> {
        if (target.kind != config::OutputKind::log) {
            auto fd = open_output(target, what);
            if (!fd) return std::unexpected(fd.error());
            write_end = std::move(*fd);
            return {};
        }
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) < 0) return fail_errno(std::string("pipe for ") + what);
        read_end.reset(fds[0]);
        write_end.reset(fds[1]);
        if (::fcntl(read_end.get(), F_SETFL, O_NONBLOCK) < 0) return fail_errno(std::string("pipe for ") + what);
        return {};
    };
    if (auto r = make_stream(cfg.stdout_target, out_read, out_write, "stdout"); !r) return r;
    if (auto r = make_stream(cfg.stderr_target, err_read, err_write, "stderr"); !r) return r;

    auto prepared = PreparedSpawn::make(context_, cfg, instance.index, socket_fds_, fds_to_hand_over(instance),
                                        StdioFds{null_fd_.get(), out_write.get(), err_write.get()});
    if (!prepared) return std::unexpected(prepared.error());
    auto cgroup = make_spawn_cgroup(instance);
    if (!cgroup) return std::unexpected(cgroup.error());
    if (*cgroup) (*prepared)->plan().cgroup_fd = (*cgroup)->dir.get();
    auto spawn_began = Clock::now();
    auto process = launcher_.launch((*prepared)->plan());
    spawn_times_.record(Clock::now() - spawn_began);
    if (launcher_.clone3_errno() != 0 && !clone3_fallback_logged_) {
        clone3_fallback_logged_ = true;
        spdlog::warn("clone3: {}; a process joins its cgroup from the launcher's child instead",
                     std::strerror(launcher_.clone3_errno()));
    }
    if (!process) {
        if (*cgroup) discard_spawn_cgroup(**cgroup);
        return std::unexpected(process.error());
    }

    instance.pid = process->pid;
    instance.pidfd = std::move(process->pidfd);
    instance.started_at = Clock::now();
    instance.ready = false;
    instance.stop_escalated = false;
    instance.kill_reason = KillReason::none;
    instance.status_text.clear();
    instance.reloading = false;
    instance.stopping_notified = false;
    instance.watchdog_timeout = cfg.watchdog;
    instance.sockets_used.clear();
    auto note_socket = [&](const std::string& name) {
        if (auto it = socket_serials_.find(name); it != socket_serials_.end())
            instance.sockets_used.push_back(it->second);
    };
    for (const auto& [fd, name] : cfg.fds) note_socket(name);
    for (const auto& name : cfg.scm_rights) note_socket(name);
    auto exits = exit_watch();
    int err = exits ? (*exits)->add(instance.pidfd.get(), EPOLLIN | EPOLLONESHOT, instance.id) : 0;
    if (!exits || err != 0) {
        // Unwatched, it would become a zombie nobody restarts: take it back now (with
        // anything it may have forked already, in cgroup mode).
        if (*cgroup) (void)cgroups_->kill((*cgroup)->name);
        (void)pidfd_signal(instance.pidfd.get(), SIGKILL);
        (void)pidfd_reap(instance.pidfd.get());
        instance.pidfd.reset();
        instance.pid = -1;
        if (*cgroup) discard_spawn_cgroup(**cgroup);
        return exits ? fail("worker " + instance.label() + ": cannot watch its pidfd", err)
                     : std::unexpected(exits.error());
    }
    instances_by_pid_[instance.pid] = &instance;
    if (*cgroup) keep_spawn_cgroup(instance, std::move(**cgroup));

    if (out_read) add_capture(std::move(out_read), instance.label(), cfg.name, instance.index, false);
    if (err_read) add_capture(std::move(err_read), instance.label() + " stderr", cfg.name, instance.index, true);
    spdlog::info("worker {}: started pid {}", instance.label(), instance.pid);
    return {};  // the write ends close here: the worker holds the only copies
}

Result<UniqueFd> Supervisor::open_output(const config::OutputTarget& target, const std::string& what) {
    switch (target.kind) {
        case config::OutputKind::inherit:
        case config::OutputKind::null: {
            int source = target.kind == config::OutputKind::null ? null_fd_.get() : what == "stdout" ? 1 : 2;
            UniqueFd copy(::fcntl(source, F_DUPFD_CLOEXEC, 3));
            if (!copy) return fail_errno("dup " + what);
            return copy;
        }
        case config::OutputKind::file: {
            auto fd = open_output_file(target.path);
            if (!fd) {
                std::string named = fd.error().message + " " + what + " file " + target.path;
                if (fd.error().err == ELOOP)  // strerror's "too many levels" misleads here
                    return fail(named + ": " + std::strerror(ELOOP) + " (a symlink on the path)");
                return fail(named, fd.error().err);
            }
            return fd;
        }
        case config::OutputKind::log: break;
    }
    return fail("open_output: not a file target");
}

OutputCapture* Supervisor::add_capture(UniqueFd read_end, std::string label, std::string worker, int index,
                                      bool from_stderr, uint64_t restored_key) {
    auto pipes = output_pipes();
    if (!pipes) {
        spdlog::error("{}: {}; this output is lost", label, pipes.error().text());
        return nullptr;
    }
    // The capture outlives a removed worker (its pipe drains after the process exits):
    // it names the worker instead of pointing at it.
    auto keep_line = [this, worker, index, from_stderr](std::string_view line) {
        logs_.add(LogLine{std::chrono::system_clock::now(), worker, index, from_stderr, std::string(line)});
    };
    uint64_t key = restored_key != 0 ? restored_key : next_capture_key_++;
    auto capture = std::make_unique<OutputCapture>(**pipes, key, std::move(read_end), label, std::move(keep_line),
                                                   [this](OutputCapture* done) { captures_.erase(done->key()); },
                                                   restored_key != 0);
    if (!capture->ok()) {
        spdlog::error("{}: cannot watch the output pipe; this output is lost", label);
        return nullptr;
    }
    OutputCapture* added = capture.get();
    captures_.emplace(key, CaptureEntry{std::move(capture), std::move(worker), index, from_stderr});
    return added;
}

Result<EpollSet*> Supervisor::output_pipes() {
    if (!output_pipes_) {
        auto opened = EpollSet::open(loop_, "output pipes", [this](uint64_t key, uint32_t) { on_output_ready(key); });
        if (!opened) return std::unexpected(opened.error());
        output_pipes_ = std::move(*opened);
    }
    return output_pipes_.get();
}

void Supervisor::on_output_ready(uint64_t key) {
    // A capture closes (and leaves the set) before its entry goes: a key is always found.
    if (auto it = captures_.find(key); it != captures_.end()) it->second.capture->on_ready();
}

// ---- exits and restarts -----------------------------------------------------------

Result<EpollSet*> Supervisor::exit_watch() {
    if (!exits_) {
        auto opened = EpollSet::open(loop_, "process exits", [this](uint64_t id, uint32_t) { on_exit_reported(id); });
        if (!opened) return std::unexpected(opened.error());
        exits_ = std::move(*opened);
    }
    return exits_.get();
}

void Supervisor::on_exit_reported(uint64_t id) {
    // An instance erased since (its pidfd closed with it) is not reported again.
    Instance* instance = find_instance(id);
    if (instance != nullptr && instance->pidfd) on_exit_event(*instance);
}

void Supervisor::on_exit_event(Instance& instance) {
    auto exited = pidfd_has_exited(instance.pidfd.get());
    if (exited && !*exited) {
        // A spurious wakeup: still running. The one-shot registration is armed again.
        if (int err = exits_->modify(instance.pidfd.get(), EPOLLIN | EPOLLONESHOT, instance.id); err != 0)
            spdlog::error("worker {}: cannot watch pid {} again: {}; its exit will not be seen", instance.label(),
                          instance.pid, std::strerror(err));
        return;
    }
    // Its last words first, while its pid still names it. (The instance stays: it has a
    // process until handle_exit, so nothing the messages cause can erase it.)
    if (notify_drain_) notify_drain_();
    std::optional<ExitStatus> status;
    if (exited) {
        // kill_mode = "group": whatever the worker left in its process group goes with
        // it. Done before reaping, while the zombie still pins the group id. (In a
        // cgroup, it all goes: defer_exit_until_cgroup_empty.)
        if (instance.worker->config.kill_mode != config::KillMode::process && instance.cgroup.empty())
            ::kill(-instance.pid, SIGKILL);
        auto reaped = pidfd_try_reap(instance.pidfd.get());
        if (reaped && reaped->has_value()) status = **reaped;
        else if (!reaped) exited = std::unexpected(reaped.error());
    }
    if (!status) {
        // The process is gone but its status is not ours to read (someone else reaped
        // it). Never leave the watch armed on it: that would spin the loop forever.
        spdlog::error("worker {}: pid {}: {}; exit status unknown", instance.label(), instance.pid,
                      exited ? "already reaped" : exited.error().text());
        status = ExitStatus{false, 255, 0};
    }
    exits_->remove(instance.pidfd.get());
    instance.pidfd.reset();
    if (defer_exit_until_cgroup_empty(instance, *status)) {
        instances_by_pid_.erase(instance.pid);  // reaped: its pid may name another process now
        return;
    }
    release_cgroup(instance);
    handle_exit(instance, *status);
    state_changed();
}

void Supervisor::handle_exit(Instance& instance, const ExitStatus& status) {
    const auto& cfg = instance.worker->config;
    auto run_time = Clock::now() - instance.started_at;
    pid_t pid = instance.pid;
    bool was_starting = instance.state == InstanceState::starting;
    KillReason reason = std::exchange(instance.kill_reason, KillReason::none);
    instances_by_pid_.erase(pid);
    if (shutting_down_ && instance.stop_escalated) shutdown_forced_ = true;  // SIGKILLed after stop_timeout
    instance.pid = -1;
    instance.ready = false;
    instance.last_exit = status;
    instance.timer.stop();
    instance.watchdog_timer.stop();
    std::string ran = "pid " + std::to_string(pid) + " " + status.describe() + " after " + format_duration(run_time);

    // Stopped on purpose (operator, shutdown, scale, rollout): done.
    if ((instance.state == InstanceState::stopping && reason == KillReason::none) || instance.retiring ||
        instance.worker->stopped_by_operator || instance.worker->removing) {
        instance.state = InstanceState::stopped;
        spdlog::info("worker {}: {}; stopped", instance.label(), ran);
        if (shutting_down_) advance_shutdown();
        return;
    }
    // A start that never became ready, or a process the watchdog found silent: a
    // failure whatever the exit code.
    bool failed = was_starting || reason != KillReason::none;
    if (failed && reason == KillReason::none) instance.last_error = ran + " before it was ready";
    if (instance.replacement) {  // a rollout's candidate: the rollout reports it, nothing restarts it
        instance.state = InstanceState::failed;
        spdlog::error("worker {}: replacement {}", instance.label(), instance.last_error);
        if (shutting_down_) advance_shutdown();
        return;
    }
    if (shutting_down_ || (!failed && !should_restart(cfg, status))) {
        instance.state = InstanceState::exited;
        spdlog::info("worker {}: {}; not restarted ({})", instance.label(), ran,
                     shutting_down_ ? "shutting down"
                     : cfg.restart == config::RestartPolicy::never ? "restart = never" : "restart = on-failure");
        if (shutting_down_) advance_shutdown();
        return;
    }
    if (failed && cfg.restart == config::RestartPolicy::never) {
        instance.state = InstanceState::failed;
        spdlog::error("worker {}: {}; failed: {} (restart = never)", instance.label(), ran, instance.last_error);
        return;
    }
    // A failed start backs off whatever its run time: a worker that never gets ready
    // must reach the start limit, not loop every ready_timeout.
    auto delay = failed ? instance.backoff.next_failure_delay(cfg)
                        : instance.backoff.next_delay(cfg, std::chrono::duration_cast<config::Duration>(run_time));
    std::string why = !failed ? ran : reason == KillReason::none ? instance.last_error : instance.last_error + " (" + ran + ")";
    schedule_restart(instance, delay, why);
}

void Supervisor::handle_spawn_failure(Instance& instance, const Error& error) {
    const auto& cfg = instance.worker->config;
    instance.last_error = error.text();
    if (cfg.restart == config::RestartPolicy::never) {
        instance.state = InstanceState::failed;
        spdlog::error("worker {}: {}; not retried (restart = never)", instance.label(), error.text());
        return;
    }
    if (error.permanent && instance.start_limiter.note_permanent_failure(cfg)) {
        instance.state = InstanceState::failed;
        instance.last_error = cannot_start_reason(instance.start_limiter.permanent_failures(), error);
        spdlog::error("worker {}: {}; state failed until `fdsupctl start {}`", instance.label(), instance.last_error,
                      cfg.name);
        return;
    }
    schedule_restart(instance, instance.backoff.next_failure_delay(cfg), error.text());
}

// Always through the timer, even with no delay: a spawn that fails at once must not
// recurse into the next one (a 0 s backoff would otherwise overflow the stack).
void Supervisor::schedule_restart(Instance& instance, config::Duration delay, const std::string& why) {
    ++instance.restarts;
    if (delay == config::Duration::zero())
        spdlog::warn("worker {}: {}; restart #{} now", instance.label(), why, instance.restarts);
    else
        spdlog::warn("worker {}: {}; restart #{} in {}", instance.label(), why, instance.restarts,
                     format_duration(delay));
    instance.state = InstanceState::backoff;
    arm_restart(instance, Clock::now() + delay);
}

// ---- stopping ---------------------------------------------------------------------

void Supervisor::signal_instance(Instance& instance, int signal) {
    if (!instance.has_process()) return;
    if (!instance.cgroup.empty()) {
        signal_cgroup(instance, signal);
        return;
    }
    // "cgroup" without a cgroup (fallen back) is "group".
    if (instance.worker->config.kill_mode != config::KillMode::process) {
        ::kill(-instance.pid, signal);
        // A worker that left its process group (setpgid/setsid) is not reached by the
        // group signal: signal it directly too.
        if (::getpgid(instance.pid) == instance.pid) return;
    }
    if (auto sent = pidfd_signal(instance.pidfd.get(), signal); !sent && sent.error().err != ESRCH)
        spdlog::error("worker {}: {}", instance.label(), sent.error().text());
}

void Supervisor::stop_instance(Instance& instance) {
    const auto& cfg = instance.worker->config;
    // A stop asked for now wins over a failure kill in progress (ready timeout,
    // watchdog): its exit is a stop, not a failure to restart. kill_for sets the
    // reason again after calling this.
    instance.kill_reason = KillReason::none;
    if (!instance.has_process()) {
        instance.timer.stop();  // a pending restart (backoff) or nothing
        if (instance.state != InstanceState::failed && instance.state != InstanceState::exited)
            instance.state = InstanceState::stopped;
        return;
    }
    if (instance.exit_pending) {
        // The main process is gone and the rest already killed: the exit, once the
        // cgroup is empty, is a stop.
        instance.state = InstanceState::stopping;
        return;
    }
    if (instance.state == InstanceState::stopping) return;
    instance.state = InstanceState::stopping;
    instance.ready = false;
    instance.watchdog_timer.stop();
    spdlog::info("worker {}: stopping pid {} with SIG{} (timeout {})", instance.label(), instance.pid,
                 config::signal_name(cfg.stop_signal), format_duration(cfg.stop_timeout));
    signal_instance(instance, cfg.stop_signal);
    arm_stop_escalation(instance, Clock::now() + cfg.stop_timeout);
}

// ---- shutdown ---------------------------------------------------------------------

void Supervisor::shutdown(std::function<void()> on_done) {
    if (shutting_down_) return;
    shutting_down_ = true;
    on_shutdown_done_ = std::move(on_done);
    spdlog::info("shutting down: stopping all workers (timeout {})",
                 format_duration(config_.supervisor.shutdown_timeout));
    shutdown_timer_.start(config_.supervisor.shutdown_timeout, [this] {
        spdlog::warn("shutdown_timeout reached: sending SIGKILL to every remaining worker");
        shutdown_forced_ = true;
        for (auto& worker : workers_)
            for (auto& instance : worker->instances) signal_instance(*instance, SIGKILL);
    });
    advance_shutdown();
    state_changed();  // commands waiting for a start finish now: nothing starts any more
}

// A worker is stopped only once no live worker still lists it in `after`.
bool Supervisor::is_needed_by_live_worker(const Worker& dependency) const {
    for (const auto& worker : workers_) {
        if (!worker->any_process()) continue;
        for (const auto& name : worker->config.after)
            if (name == dependency.config.name) return true;
    }
    return false;
}

void Supervisor::advance_shutdown() {
    bool anything_left = false;
    for (auto& worker : workers_) {
        if (!is_needed_by_live_worker(*worker))
            for (auto& instance : worker->instances) stop_instance(*instance);
        anything_left |= worker->any_process();
    }
    if (!anything_left) finish_shutdown();
}

// ---- waiters ------------------------------------------------------------------------

void Supervisor::add_waiter(std::function<bool()> waiter, bool rollout) {
    waiters_.push_back({std::move(waiter), rollout});
    state_changed();  // it may be finished already
}

size_t Supervisor::command_waiters() const {
    return static_cast<size_t>(std::count_if(waiters_.begin(), waiters_.end(), [](const Waiter& w) { return !w.rollout; }));
}

void Supervisor::state_changed() {
    // A waiter's callback may change state again (restart's start phase) or add
    // waiters: run to a fixed point, never recursively.
    if (checking_waiters_) {
        check_again_ = true;
        return;
    }
    checking_waiters_ = true;
    do {
        check_again_ = false;
        sweep();
        // Readiness can change in many ways (READY=1, a replacement taking over, a
        // not-ready instance scaled away): whatever the way, dependents start now.
        start_waiting_dependents();
        auto current = std::move(waiters_);
        waiters_.clear();
        std::vector<Waiter> unfinished;
        for (auto& waiter : current)
            if (!waiter.check()) unfinished.push_back(std::move(waiter));
        if (!waiters_.empty()) check_again_ = true;  // added meanwhile: not checked yet
        for (auto& waiter : waiters_) unfinished.push_back(std::move(waiter));
        waiters_ = std::move(unfinished);
    } while (check_again_);
    checking_waiters_ = false;
    if (manager_.notify && !manager_status_timer_.active())
        manager_status_timer_.start(std::chrono::milliseconds(250), [this] {
            std::string summary = status_summary();
            if (summary == manager_status_sent_) return;
            manager_status_sent_ = summary;
            manager_.notify("STATUS=" + summary);
        });
}

std::string Supervisor::status_summary() const {
    size_t workers = 0, instances = 0;
    std::map<InstanceState, size_t> by_state;
    for (const auto& worker : workers_) {
        if (worker->removing) continue;
        ++workers;
        for (const auto& instance : worker->instances) {
            if (instance->retiring || instance->replacement) continue;
            ++instances;
            ++by_state[instance->state];
        }
    }
    std::string text = std::to_string(workers) + (workers == 1 ? " worker, " : " workers, ") +
                       std::to_string(by_state[InstanceState::running]) + " of " + std::to_string(instances) +
                       (instances == 1 ? " instance" : " instances") + " running";
    for (auto state : {InstanceState::starting, InstanceState::stopping, InstanceState::backoff, InstanceState::failed,
                       InstanceState::exited, InstanceState::stopped})
        if (by_state[state] > 0) text += ", " + std::to_string(by_state[state]) + " " + (state == InstanceState::backoff ? "in backoff" : state_name(state));
    return text;
}

void Supervisor::sweep() {
    for (auto& worker : workers_) {
        if (!worker->fd_stores.empty()) release_fd_stores(*worker);
        std::erase_if(worker->instances, [this](const std::unique_ptr<Instance>& instance) {
            if (!instance->retiring || instance->has_process()) return false;
            instances_by_id_.erase(instance->id);
            return true;
        });
    }
    for (auto it = workers_.begin(); it != workers_.end();) {
        Worker& worker = **it;
        if (!worker.removing || worker.any_process()) {
            ++it;
            continue;
        }
        spdlog::info("worker {}: removed", worker.config.name);
        for (const auto& instance : worker.instances) instances_by_id_.erase(instance->id);
        if (find_worker(worker.config.name) == nullptr) logs_.forget(worker.config.name);
        it = workers_.erase(it);
    }
    for (auto it = retired_sockets_.begin(); it != retired_sockets_.end();) {
        bool held = false;
        for (const auto& worker : workers_)
            for (const auto& instance : worker->instances)
                if (instance->has_process() &&
                    std::find(instance->sockets_used.begin(), instance->sockets_used.end(), it->serial) !=
                        instance->sockets_used.end())
                    held = true;
        if (held) {
            ++it;
            continue;
        }
        spdlog::info("socket {}: closed ({})", it->config.name, it->bound);
        // Its file goes too, unless a current socket has been bound at the same path.
        bool path_reused = false;
        for (const auto& socket : sockets_)
            if (socket.config.address.is_unix() && socket.config.address.path == it->config.address.path &&
                socket.config.address.abstract == it->config.address.abstract)
                path_reused = true;
        if (!path_reused) remove_socket_file(it->config);
        it = retired_sockets_.erase(it);
    }
}

void Supervisor::finish_shutdown() {
    if (shutdown_finished_) return;
    shutdown_finished_ = true;
    shutdown_timer_.stop();
    for (auto& [key, entry] : captures_) entry.capture->drain_now();
    captures_.clear();
    for (const auto& socket : sockets_)
        if (!socket.held_by_manager) remove_socket_file(socket.config);
    spdlog::info("all workers stopped");
    if (auto done = std::move(on_shutdown_done_)) done();
}

}  // namespace fdsup
