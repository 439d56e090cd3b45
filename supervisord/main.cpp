// fdsupd: argv, config, sockets, the loop. Everything else lives in fdsup_core.
#include <fcntl.h>
#include <unistd.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <uv.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "config/loader.h"
#include "control/commands.h"
#include "control/control_server.h"
#include "sockets/bind.h"
#include "supervisor/logging.h"
#include "supervisor/supervisor.h"
#include "supervisor/uv_handles.h"
#include "sys/paths.h"
#include "version.h"

namespace {

constexpr const char* kDefaultConfig = "/etc/fdsup/fdsup.toml";

constexpr const char* kUsage =
    "usage: fdsupd [-c FILE] [--log-level LEVEL]\n"
    "       fdsupd --check-config [-c FILE]\n"
    "       fdsupd --version\n"
    "\n"
    "  -c, --config FILE   configuration (default: $FDSUP_CONFIG, else /etc/fdsup/fdsup.toml)\n"
    "  --log-level LEVEL   trace|debug|info|warn|error (overrides [supervisor] log_level)\n"
    "  --check-config      validate the configuration and exit: 0 valid, 1 invalid\n"
    "  --version           print the version and the upgrade state format\n";

struct Options {
    std::string config_path;
    std::optional<std::string> log_level;
    bool check_config = false;
    bool version = false;
};

// Exits 2 with the usage on bad arguments.
Options parse_args(int argc, char** argv) {
    Options options;
    auto usage_error = [](const std::string& message) {
        std::fprintf(stderr, "fdsupd: %s\n%s", message.c_str(), kUsage);
        std::exit(2);
    };
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        auto value = [&](const char* name) -> std::string {
            if (i + 1 >= argc) usage_error(std::string(name) + " needs a value");
            return argv[++i];
        };
        if (arg == "-c" || arg == "--config") options.config_path = value("--config");
        else if (arg.rfind("--config=", 0) == 0) options.config_path = arg.substr(9);
        else if (arg == "--log-level") options.log_level = value("--log-level");
        else if (arg.rfind("--log-level=", 0) == 0) options.log_level = arg.substr(12);
        else if (arg == "--check-config") options.check_config = true;
        else if (arg == "--version") options.version = true;
        else if (arg == "-h" || arg == "--help") {
            std::fputs(kUsage, stdout);
            std::exit(0);
        } else usage_error("unknown argument: " + arg);
    }
    if (options.config_path.empty()) {
        const char* env = std::getenv("FDSUP_CONFIG");
        options.config_path = env != nullptr && *env != '\0' ? env : kDefaultConfig;
    }
    // Absolute, so that reload reads the same file whatever happens to the cwd.
    options.config_path = fdsup::absolute_path(options.config_path);
    return options;
}

std::optional<fdsup::config::Config> load_or_report(const std::string& path) {
    auto loaded = fdsup::config::load_config_file(path);
    for (const auto& error : loaded.errors) std::fprintf(stderr, "%s\n", error.text().c_str());
    return std::move(loaded.config);
}

// Workers get the limit the supervisor was started with (see plan_builder); the
// supervisor itself, which holds an fd per socket, pidfd and pipe, takes the hard limit.
rlim_t raise_nofile_limit() {
    struct rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    rlim_t starting_soft = limit.rlim_cur;
    if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &limit) < 0)
            spdlog::warn("cannot raise RLIMIT_NOFILE to {}: {}", limit.rlim_max, std::strerror(errno));
    }
    return starting_soft;
}

// Whatever our parent left us must not change how we work: a SIGCHLD set to SIG_IGN
// makes the kernel reap workers behind our back (waitid fails with ECHILD), and a
// blocked signal would never reach libuv's handlers.
void reset_inherited_signal_state() {
    signal(SIGCHLD, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
}

// Started with fd 0, 1 or 2 closed, the first socket we bind would land there: our log
// (and any worker with stdout = "inherit") would write into a listening socket.
void ensure_stdio_open() {
    for (;;) {
        int fd = ::open("/dev/null", O_RDWR);  // inheritable: it stands in for stdio
        if (fd < 0) return;
        if (fd > 2) {
            ::close(fd);
            return;
        }
    }
}

std::optional<std::vector<fdsup::OwnedSocket>> bind_all(const fdsup::config::Config& config) {
    std::vector<fdsup::OwnedSocket> sockets;
    for (const auto& socket_config : config.sockets) {
        auto bound = fdsup::bind_socket(socket_config);
        if (!bound) {
            spdlog::critical("{}", bound.error().text());
            return std::nullopt;
        }
        spdlog::info("socket {}: listening on {} ({})", socket_config.name, bound->bound, socket_config.listen);
        sockets.push_back({socket_config, std::move(bound->fd), bound->bound});
    }
    return sockets;
}

int run(const Options& options) {
    ensure_stdio_open();
    reset_inherited_signal_state();
    auto config = load_or_report(options.config_path);
    if (!config) return 1;
    fdsup::init_logging(options.log_level.value_or(config->supervisor.log_level));
    if (options.log_level && !fdsup::set_log_level(*options.log_level)) {
        std::fprintf(stderr, "fdsupd: unknown log level \"%s\"\n", options.log_level->c_str());
        return 2;
    }

    rlim_t starting_nofile = raise_nofile_limit();
    // Writes to a vanished reader (a closed client) must fail with EPIPE, not kill us.
    signal(SIGPIPE, SIG_IGN);

    auto sockets = bind_all(*config);
    if (!sockets) return 1;

    uv_loop_t loop;
    uv_loop_init(&loop);
    int exit_code = 0;
    {
        spdlog::info("fdsupd {} starting (pid {}, config {})", fdsup::kVersion, getpid(), options.config_path);
        // Absolute: workers run in their own working_dir, and sd_notify() accepts only
        // absolute (or abstract) socket paths.
        const std::string notify_path = fdsup::absolute_path(config->supervisor.runtime_dir + "/notify.sock");
        const std::string fd_socket_path = fdsup::absolute_path(config->supervisor.runtime_dir + "/fds.sock");
        auto spawn_context = fdsup::SpawnContext::capture(starting_nofile);
        spawn_context.notify_socket = notify_path;
        spawn_context.fd_socket = fd_socket_path;
        fdsup::Supervisor supervisor(&loop, std::move(*config), std::move(*sockets), std::move(spawn_context));

        // Every way to shut down (SIGTERM, SIGINT, `fdsupctl shutdown`) ends here; the
        // callbacks run once all workers have stopped, before the loop ends.
        std::vector<std::function<void()>> on_stopped;
        auto begin_shutdown = [&](std::function<void()> then) {
            if (then) on_stopped.push_back(std::move(then));
            supervisor.shutdown([&] {
                for (auto& callback : on_stopped) callback();
                uv_stop(&loop);
            });
        };

        fdsup::control::CommandContext commands{supervisor, begin_shutdown};
        fdsup::control::ControlSettings settings{
            [&] { return supervisor.config().supervisor.control_idle_timeout; },
            [&] { return supervisor.config().supervisor.control_max_clients; }};
        auto control = fdsup::control::ControlServer::open(
            &loop, supervisor.config().supervisor, settings,
            [&](const fdsup::control::Json& request, fdsup::control::Responder responder) {
                fdsup::control::handle_request(commands, request, responder);
            });
        if (!control) {
            spdlog::critical("{}", control.error().text());
            return 1;
        }
        spdlog::info("control socket: {}", (*control)->path());
        auto notify = fdsup::notify::NotifySocket::open(
            &loop, notify_path,
            [&](fdsup::notify::Datagram datagram) { supervisor.handle_notify(std::move(datagram)); });
        if (!notify) {
            spdlog::critical("{}", notify.error().text());
            return 1;
        }
        spdlog::info("notify socket: {}", (*notify)->path());
        supervisor.set_notify_drain([n = notify->get()] { n->receive_pending(); });
        auto fd_server = fdsup::fdserver::FdServer::open(
            &loop, fd_socket_path,
            {[&](pid_t pid, uid_t uid) { return supervisor.fd_access(pid, uid); },
             [&](const std::string& name) { return supervisor.socket_fd(name); },
             [&](const fdsup::fdserver::FdAccess& peer, const std::string& name, std::vector<fdsup::UniqueFd> fds,
                 bool poll) { return supervisor.store_from_fd_socket(peer, name, std::move(fds), poll); }});
        if (!fd_server) {
            spdlog::critical("{}", fd_server.error().text());
            return 1;
        }
        spdlog::info("fd socket: {}", (*fd_server)->path());

        auto stop = [&](int sig) {
            spdlog::info("received SIG{}: graceful shutdown", sig == SIGINT ? "INT" : "TERM");
            begin_shutdown(nullptr);
        };
        fdsup::SignalWatch on_term(&loop, SIGTERM, stop);
        fdsup::SignalWatch on_int(&loop, SIGINT, stop);
        fdsup::SignalWatch on_hup(&loop, SIGHUP, [&](int) {
            spdlog::info("received SIGHUP: reloading the configuration");
            supervisor.reload(nullptr, [](const fdsup::ReloadResult& result) {
                if (!result.ok) spdlog::error("SIGHUP reload: {}", result.error);
            });
        });
        fdsup::SignalWatch on_usr2(&loop, SIGUSR2, [](int) {
            spdlog::warn("received SIGUSR2: in-place upgrade is not supported by this version yet");
        });
        supervisor.start_all();
        uv_run(&loop, UV_RUN_DEFAULT);
        // Closing the signal handles restores the default dispositions: a late SIGTERM
        // would then kill us with a misleading status. Block them for the last steps.
        sigset_t late;
        sigemptyset(&late);
        for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR2}) sigaddset(&late, sig);
        sigprocmask(SIG_BLOCK, &late, nullptr);
    }
    // The handles closed by the destructors above finish closing here.
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0) spdlog::debug("loop closed with handles still open");
    spdlog::info("fdsupd exiting with status {}", exit_code);
    return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
    Options options = parse_args(argc, argv);
    if (options.version) {
        std::printf("fdsupd %s (state format %d)\n", fdsup::kVersion, fdsup::kStateVersion);
        return 0;
    }
    if (options.check_config) {
        if (!load_or_report(options.config_path)) return 1;
        std::printf("%s: configuration is valid\n", options.config_path.c_str());
        return 0;
    }
    return run(options);
}
