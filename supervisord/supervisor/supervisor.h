// The supervisor: owns the listening sockets, spawns every worker instance through the
// launcher, watches their pidfds, restarts them by policy, and stops them gracefully.
// Everything runs on one libuv loop; nothing here blocks.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/model.h"
#include "launcher/launcher.h"
#include "launcher/plan_builder.h"
#include "supervisor/instance.h"
#include "supervisor/output_capture.h"
#include "sys/unique_fd.h"

namespace fdsup {

// A listening socket the supervisor keeps open for its whole life.
struct OwnedSocket {
    config::SocketConfig config;
    UniqueFd fd;
    std::string bound;  // the real local address ("127.0.0.1:41234")
};

class Supervisor {
public:
    Supervisor(uv_loop_t* loop, config::Config config, std::vector<OwnedSocket> sockets,
               SpawnContext context);
    ~Supervisor();
    Supervisor(const Supervisor&) = delete;
    Supervisor& operator=(const Supervisor&) = delete;

    // Starts every worker, each once the workers in its `after` are ready.
    void start_all();

    // Graceful stop of every worker (dependents before their dependencies), SIGKILL for
    // what remains after shutdown_timeout; then `on_done`. Idempotent.
    void shutdown(std::function<void()> on_done);

    const config::Config& config() const { return config_; }
    const std::vector<OwnedSocket>& sockets() const { return sockets_; }
    const std::vector<std::unique_ptr<Worker>>& workers() const { return workers_; }

private:
    void start_worker(Worker& worker);
    void start_waiting_dependents();
    bool dependencies_ready(const Worker& worker) const;

    void spawn(Instance& instance);
    Result<void> launch(Instance& instance);
    void mark_ready(Instance& instance);
    void on_exit_event(Instance& instance);
    void handle_exit(Instance& instance, const ExitStatus& status);
    void handle_spawn_failure(Instance& instance, const Error& error);
    void schedule_restart(Instance& instance, config::Duration delay, const std::string& why);

    void stop_instance(Instance& instance);
    void signal_instance(Instance& instance, int signal);

    void advance_shutdown();
    bool is_needed_by_live_worker(const Worker& dependency) const;
    void finish_shutdown();

    Result<UniqueFd> open_output(const config::OutputTarget& target, const std::string& what);
    void add_capture(UniqueFd read_end, std::string label);

    uv_loop_t* loop_;
    config::Config config_;
    std::vector<OwnedSocket> sockets_;
    std::map<std::string, int> socket_fds_;  // name -> fd, for the plan builder
    SpawnContext context_;
    Launcher launcher_;
    UniqueFd null_fd_;  // /dev/null: stdin of every worker, and stdout/stderr = "null"
    std::vector<std::unique_ptr<Worker>> workers_;
    std::unordered_map<OutputCapture*, std::unique_ptr<OutputCapture>> captures_;

    bool shutting_down_ = false;
    bool shutdown_finished_ = false;
    Timer shutdown_timer_;
    std::function<void()> on_shutdown_done_;
};

}  // namespace fdsup
