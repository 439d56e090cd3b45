// fdsupd: argv, config, sockets, the loop. Everything else lives in fdsup_core.
#include <fcntl.h>
#include <unistd.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <uv.h>

#include <algorithm>
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
#include "control/metrics.h"
#include "control/metrics_server.h"
#include "fdserver/fd_access.h"
#include "notify/notify_handler.h"
#include "sockets/bind.h"
#include "logging/logging.h"
#include "state/state.h"
#include "supervisor/supervisor.h"
#include "loop/uv_handles.h"
#include "sys/heap_warmup.h"
#include "sys/listen_fds.h"
#include "sys/orphans.h"
#include "sys/manager_notify.h"
#include "sys/paths.h"
#include "upgrade/preflight.h"
#include "upgrade/reexec.h"
#include "upgrade/state_file.h"
#include "upgrade/upgrader.h"
#include "version.h"

namespace {

constexpr const char* kDefaultConfig = "/etc/fdsup/fdsup.toml";

constexpr const char* kUsage =
    "usage: fdsupd [-c FILE] [--log-level LEVEL] [--subreaper]\n"
    "       fdsupd --check-config [-c FILE] [--state-formats]\n"
    "       fdsupd --version | --state-formats\n"
    "\n"
    "  -c, --config FILE   configuration (default: $FDSUP_CONFIG, else /etc/fdsup/fdsup.toml)\n"
    "  --log-level LEVEL   trace|debug|info|warn|error (overrides [supervisor] log_level)\n"
    "  --subreaper         become the subreaper of every process started below (orphans\n"
    "                      are reparented to fdsupd, which reaps them); PID 1 always does\n"
    "  --check-config      validate the configuration and exit: 0 valid, 1 invalid\n"
    "  --version           print the version and the upgrade state format\n"
    "  --state-formats     print the upgrade state formats this binary can restore, one per line\n"
    "(--restore-state FD, --previous-image FD and --rollback-reason TEXT are how an\n"
    "in-place upgrade starts the next image; they are not for operators.)\n";

struct Options {
    std::string config_path;
    std::optional<std::string> log_level;
    bool check_config = false;
    bool version = false;
    bool state_formats = false;
    bool subreaper = false;  // also reap orphans when not PID 1
    const char* argv0 = nullptr;
    fdsup::upgrade::RestoreArgs restore;
};

// The path of our own executable as started (argv[0], searched in PATH if it has no
// '/'), made absolute. Not /proc/self/exe: after a package upgrade replaced the file,
// `upgrade` must pick up the new file at that path.
std::string resolve_self(const char* argv0) {
    std::string name = argv0 != nullptr ? argv0 : "fdsupd";
    if (name.find('/') != std::string::npos) return fdsup::absolute_path(name);
    const char* path = std::getenv("PATH");
    std::string search = path != nullptr ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin";
    size_t start = 0;
    while (start <= search.size()) {
        size_t end = search.find(':', start);
        if (end == std::string::npos) end = search.size();
        std::string candidate = (end > start ? search.substr(start, end - start) : ".") + "/" + name;
        if (::access(candidate.c_str(), X_OK) == 0) return fdsup::absolute_path(candidate);
        start = end + 1;
    }
    return name;
}

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
        else if (arg == "--state-formats") options.state_formats = true;
        else if (arg == "--subreaper") options.subreaper = true;
        else if (arg == "--restore-state") options.restore.state_fd = std::atoi(value("--restore-state").c_str());
        else if (arg == "--previous-image") options.restore.previous_image_fd = std::atoi(value("--previous-image").c_str());
        else if (arg == "--rollback-reason") options.restore.rollback_reason = value("--rollback-reason");
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
    options.argv0 = argc > 0 ? argv[0] : nullptr;
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
void unblock_all_signals() {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
}

void reset_inherited_signal_state() {
    signal(SIGCHLD, SIG_DFL);
    unblock_all_signals();
}

// The state an upgrade handed over, checked for its version.
fdsup::Result<fdsup::StateDocument> read_restore_state(int fd) {
    auto read = fdsup::upgrade::read_state_file(fd);
    if (!read) return std::unexpected(read.error());
    fdsup::StateDocument state = std::move(*read);
    auto version = state.find("version");
    if (version == state.end() || !version->is_number_integer() || version->get<int>() != fdsup::kStateVersion)
        return fdsup::fail("the upgrade state has format " + (version == state.end() ? std::string("?") : version->dump()) +
                           "; this fdsupd reads format " + std::to_string(fdsup::kStateVersion));
    return state;
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

// The configured sockets: adopted from those a service manager passed (socket activation,
// matched by name: a .socket unit's under the socket's name, one fdsupd parked in the fd
// store under parked_name()), else bound here. A .socket unit's socket that differs from
// the config is an error; a parked one is taken out of the store and bound again (the
// config changed since it was parked). Passed sockets no [sockets.NAME] names are closed.
std::optional<std::vector<fdsup::OwnedSocket>> bind_all(const fdsup::config::Config& config,
                                                        std::vector<fdsup::ListenFd> passed,
                                                        fdsup::ManagerNotify& manager) {
    std::vector<fdsup::OwnedSocket> sockets;
    auto take = [&](const std::string& name) -> fdsup::ListenFd* {
        for (auto& p : passed)
            if (p.fd && p.name == name) return &p;
        return nullptr;
    };
    auto unpark = [&](fdsup::ListenFd& p) {
        manager.unpark(p.name);
        p.fd.reset();
    };
    for (const auto& socket_config : config.sockets) {
        const bool from_unit = take(socket_config.name) != nullptr;
        fdsup::ListenFd* passed_fd = from_unit ? take(socket_config.name) : take(fdsup::parked_name(socket_config.name));
        if (passed_fd != nullptr) {
            int number = passed_fd->fd.get();
            fdsup::UniqueFd copy(::fcntl(number, F_DUPFD_CLOEXEC, 3));  // kept if a parked one is refused
            auto adopted = fdsup::adopt_bound_socket(std::move(passed_fd->fd), socket_config);
            if (adopted) {
                spdlog::info("socket {}: adopted fd {} from the service manager{}, listening on {} ({})",
                             socket_config.name, number, from_unit ? "" : " (its fd store)", adopted->bound,
                             socket_config.listen);
                sockets.push_back({socket_config, std::move(adopted->fd), adopted->bound, 0, true});
                continue;
            }
            if (from_unit) {
                spdlog::critical("{}", adopted.error().text());
                return std::nullopt;
            }
            spdlog::warn("{} (parked before the configuration changed): taken out of the service manager's fd store; "
                         "binding it again", adopted.error().text());
            passed_fd->fd = std::move(copy);
            unpark(*passed_fd);
        }
        auto bound = fdsup::bind_socket(socket_config);
        if (!bound) {
            spdlog::critical("{}", bound.error().text());
            return std::nullopt;
        }
        spdlog::info("socket {}: listening on {} ({})", socket_config.name, bound->bound, socket_config.listen);
        sockets.push_back({socket_config, std::move(bound->fd), bound->bound});
    }
    for (auto& p : passed) {
        if (!p.fd) continue;
        if (p.name.starts_with("parked.")) {
            spdlog::warn("the service manager passed back fd {} parked as \"{}\", which the configuration no longer "
                         "has; taken out of its fd store and closed", p.fd.get(), p.name);
            unpark(p);
            continue;
        }
        bool named = std::any_of(sockets.begin(), sockets.end(), [&](const auto& s) { return s.config.name == p.name; });
        if (named) spdlog::warn("the service manager passed a second fd named \"{}\" (fd {}); closed", p.name, p.fd.get());
        else spdlog::warn("the service manager passed fd {} named \"{}\", which no [sockets.{}] names; closed", p.fd.get(), p.name, p.name);
    }
    return sockets;
}

// What the next image of an upgrade is started with besides its state.
std::vector<std::string> extra_args_of(const Options& options) {
    std::vector<std::string> args;
    if (options.log_level) args.insert(args.end(), {"--log-level", *options.log_level});
    if (options.subreaper) args.push_back("--subreaper");
    return args;
}

// The restored image goes on: the processes, timers and rollouts it adopted, the
// upgrade's client answered, and a config file changed since applied like `reload`.
void finish_restore(fdsup::Supervisor& supervisor, const fdsup::StateDocument& state, const Options& options,
                    fdsup::ManagerNotify& manager) {
    const std::string old_version = fdsup::upgrade::field_or(state, "old_version", std::string("?"));
    const bool rolled_back = options.restore.rollback_reason.has_value();
    ::close(options.restore.state_fd);
    if (options.restore.previous_image_fd >= 0) ::close(options.restore.previous_image_fd);
    supervisor.resume();
    fdsup::control::Json reply;
    if (options.restore.rollback_reason) {
        spdlog::error("upgrade rolled back: {}; fdsupd {} goes on", *options.restore.rollback_reason, fdsup::kVersion);
        reply = fdsup::control::error_reply("the new image could not take over (" + *options.restore.rollback_reason +
                                            "); rolled back: fdsupd " + fdsup::kVersion + " goes on");
    } else {
        spdlog::info("upgrade done: fdsupd {} -> {} (pid {}, upgrade #{})", old_version, fdsup::kVersion, getpid(),
                     supervisor.upgrades());
        reply = fdsup::control::Json{{"ok", true},        {"old_version", old_version},
                                     {"version", fdsup::kVersion}, {"pid", getpid()},
                                     {"state_format", fdsup::kStateVersion}, {"upgrades", supervisor.upgrades()}};
    }
    fdsup::upgrade::answer_upgrade(fdsup::upgrade::field_or(state, "reply_fd", -1), reply);
    manager.send("READY=1\nSTATUS=fdsupd " + std::string(fdsup::kVersion) +
                 (rolled_back ? " (an upgrade was rolled back)" : " (upgraded in place from " + old_version + ")"));
    // The file may have changed since the previous image loaded it: apply the
    // difference (not after a rollback: that upgrade did not happen).
    if (rolled_back) return;
    auto text = fdsup::config::load_config_file(options.config_path);
    if (text.config && text.config->source != supervisor.config().source) {
        spdlog::info("upgrade: the configuration file changed since it was loaded; reloading");
        supervisor.reload(nullptr, [](const fdsup::ReloadResult& result) {
            if (!result.ok) spdlog::error("reload after upgrade: {}", result.error);
        });
    } else if (!text.config) {
        for (const auto& error : text.errors) spdlog::error("reload after upgrade: {}", error.text());
    }
}

int run(const Options& options) {
    ensure_stdio_open();
    const bool restoring = options.restore.state_fd >= 0;
    // A restoring image keeps every signal blocked (as the previous image left them)
    // until its handlers are in place: none is lost, none acts by default meanwhile.
    if (restoring) signal(SIGCHLD, SIG_DFL);
    else reset_inherited_signal_state();
    // Resolved here, not for --version or --check-config (which every pre-flight runs).
    std::string self_binary = resolve_self(options.argv0);

    // The state an upgrade handed over, and the config as the previous image had it
    // loaded (the file may have changed since: that is applied as a reload, below).
    std::optional<fdsup::StateDocument> state;
    std::optional<fdsup::config::Config> config;
    auto give_up = [&](const std::string& why) {
        if (restoring)
            fdsup::upgrade::give_up_restore(options.restore, state.value_or(fdsup::StateDocument::object()),
                                            options.config_path, extra_args_of(options), why);
        spdlog::critical("{}", why);
        return 1;
    };
    // The restore allocates, in a heap as yet untouched, about this much per byte of
    // state (the document, the instances, the captures; measured at 1,000 instances).
    constexpr size_t kHeapPerStateByte = 24;
    std::optional<fdsup::HeapWarmup> warm_heap;
    if (restoring) {
        struct stat st{};
        if (::fstat(options.restore.state_fd, &st) == 0)
            warm_heap.emplace(static_cast<size_t>(st.st_size) * kHeapPerStateByte);
        auto read = read_restore_state(options.restore.state_fd);
        if (!read) return give_up(read.error().text());
        state = std::move(*read);
        // (The state's own fd is not in its keep list: it was added after the list was written.)
        auto inherited_fds = fdsup::upgrade::fds_named_in(*state);
        inherited_fds.push_back(options.restore.state_fd);
        fdsup::upgrade::make_inherited_fds_cloexec(inherited_fds);
        auto loaded = fdsup::config::load_config_string(fdsup::upgrade::field_or(*state, "config_source", std::string()),
                                                        fdsup::upgrade::field_or(*state, "config_path", options.config_path));
        // The path fdsupd was first started from stays the default binary (not the
        // --binary of this upgrade, which is only our argv[0]).
        self_binary = fdsup::upgrade::field_or(*state, "binary", self_binary);
        for (const auto& error : loaded.errors) spdlog::error("the configuration the previous image ran: {}", error.text());
        if (!loaded.config) return give_up("cannot load the configuration the previous image ran");
        config = std::move(loaded.config);
    } else {
        config = load_or_report(options.config_path);
        if (!config) return 1;
    }
    fdsup::init_logging(options.log_level.value_or(config->supervisor.log_level));
    if (options.log_level && !fdsup::set_log_level(*options.log_level)) {
        if (restoring) return give_up("unknown log level \"" + *options.log_level + "\"");
        std::fprintf(stderr, "fdsupd: unknown log level \"%s\"\n", options.log_level->c_str());
        return 2;
    }

    rlim_t starting_nofile = raise_nofile_limit();
    if (state) starting_nofile = fdsup::upgrade::field_or(*state, "nofile_soft_at_start", starting_nofile);
    // Writes to a vanished reader (a closed client) must fail with EPIPE, not kill us.
    signal(SIGPIPE, SIG_IGN);

    fdsup::ManagerNotify manager;  // our own service manager, if NOTIFY_SOCKET was given
    // With an fd store (FileDescriptorStoreMax=), the sockets fdsupd binds itself are
    // parked there: if fdsupd crashes, systemd holds them, clients queue, and the
    // restarted fdsupd gets them back by name (LISTEN_FDNAMES).
    const bool park_sockets = manager.enabled() && fdsup::ManagerNotify::fd_store_max() > 0;
    auto park = [&](const std::string& name, int fd) {
        if (!manager.send("FDSTORE=1\nFDNAME=" + fdsup::parked_name(name), fd)) return false;
        spdlog::info("socket {}: parked in the service manager's fd store", name);
        return true;
    };
    std::vector<fdsup::OwnedSocket> sockets;
    if (!restoring) {
        auto bound = bind_all(*config, fdsup::take_listen_fds(), manager);
        if (!bound) return 1;
        sockets = std::move(*bound);
        if (park_sockets)
            for (auto& socket : sockets)
                if (!socket.held_by_manager) socket.held_by_manager = park(socket.config.name, socket.fd.get());
    }

    uv_loop_t loop;
    uv_loop_init(&loop);
    int exit_code = 0;
    {
        if (restoring)
            spdlog::info("fdsupd {} restoring the state of fdsupd {} (pid {}, config {})", fdsup::kVersion,
                         fdsup::upgrade::field_or(*state, "old_version", std::string("?")), getpid(), options.config_path);
        else
            spdlog::info("fdsupd {} starting (pid {}, config {})", fdsup::kVersion, getpid(), options.config_path);
        // Absolute: workers run in their own working_dir, and sd_notify() accepts only
        // absolute (or abstract) socket paths.
        const std::string notify_path = fdsup::absolute_path(config->supervisor.runtime_dir + "/notify.sock");
        const std::string fd_socket_path = fdsup::absolute_path(config->supervisor.runtime_dir + "/fds.sock");
        auto spawn_context = fdsup::SpawnContext::capture(starting_nofile);
        spawn_context.notify_socket = notify_path;
        spawn_context.fd_socket = fd_socket_path;
        fdsup::Supervisor supervisor(&loop, std::move(*config), std::move(sockets), std::move(spawn_context), restoring);
        if (restoring) {
            if (auto restored = fdsup::state::restore_state(supervisor, *state, options.restore.rollback_reason.has_value()); !restored)
                return give_up(restored.error().text());
        }
        auto inherited = [&](const char* key) { return state ? fdsup::upgrade::field_or(*state, key, -1) : -1; };
        fdsup::notify::NotifyHandler notify_handler(&loop, supervisor);
        if (state) notify_handler.restore_dropped(fdsup::upgrade::field_or(*state, "notify_dropped", uint64_t{0}));

        // Every way to shut down (SIGTERM, SIGINT, `fdsupctl shutdown`) ends here; the
        // callbacks run once all workers have stopped, before the loop ends.
        std::vector<std::function<void()>> on_stopped;
        auto begin_shutdown = [&](std::function<void()> then) {
            if (then) on_stopped.push_back(std::move(then));
            if (!supervisor.shutting_down()) manager.send("STOPPING=1");
            supervisor.shutdown([&] {
                for (auto& callback : on_stopped) callback();
                uv_stop(&loop);
            });
        };

        std::unique_ptr<fdsup::upgrade::Upgrader> upgrader;
        fdsup::control::CommandContext commands{
            supervisor, begin_shutdown,
            [&](std::optional<std::string> binary, fdsup::control::Responder responder) {
                upgrader->begin(std::move(binary), std::move(responder));
            },
            [&] { return notify_handler.dropped(); },
            {}};
        fdsup::control::ControlSettings settings{
            [&] { return supervisor.config().supervisor.control_idle_timeout; },
            [&] { return supervisor.config().supervisor.control_max_clients; }};
        auto control = fdsup::control::ControlServer::open(
            &loop, supervisor.config().supervisor, settings,
            [&](const fdsup::control::Json& request, fdsup::control::Responder responder) {
                fdsup::control::handle_request(commands, request, responder);
            },
            inherited("control_fd"));
        if (!control) return give_up(control.error().text());
        spdlog::info("control socket: {}", (*control)->path());
        auto notify = fdsup::notify::NotifySocket::open(
            &loop, notify_path,
            [&](fdsup::notify::Datagram datagram) { notify_handler.handle(std::move(datagram)); },
            inherited("notify_fd"));
        if (!notify) return give_up(notify.error().text());
        spdlog::info("notify socket: {}", (*notify)->path());
        supervisor.set_notify_drain([n = notify->get()] { n->receive_pending(); });
        if (manager.enabled()) {
            fdsup::Supervisor::ManagerHooks hooks;
            hooks.notify = [&](const std::string& message) { manager.send(message); };
            if (park_sockets) {
                hooks.park = park;
                hooks.unpark = [&](const std::string& name) {
                    manager.unpark(fdsup::parked_name(name));
                };
            }
            supervisor.set_manager(std::move(hooks));
        }
        auto fd_server = fdsup::fdserver::FdServer::open(
            &loop, fd_socket_path,
            fdsup::fdserver::hooks_for(supervisor),
            inherited("fd_socket_fd"));
        if (!fd_server) return give_up(fd_server.error().text());
        spdlog::info("fd socket: {}", (*fd_server)->path());
        // [supervisor] metrics_listen: bound again by each image (a scrape during the exec
        // of an upgrade is refused; the next one is not).
        std::unique_ptr<fdsup::control::MetricsServer> metrics;
        if (const auto& listen = supervisor.config().supervisor.metrics_listen) {
            auto opened = fdsup::control::MetricsServer::open(
                &loop, *listen, [&] { return fdsup::control::metrics_text(supervisor, commands.requests, notify_handler.dropped()); });
            // An optional endpoint never stops fdsupd once it runs: a restoring image
            // (whose workers would die with it) goes on without it.
            if (!opened && !restoring) return give_up(opened.error().text());
            if (opened) {
                metrics = std::move(*opened);
                spdlog::info("metrics: http://{}/metrics", metrics->bound());
            } else {
                spdlog::error("{}; no metrics endpoint until the next upgrade or restart", opened.error().text());
            }
        }
#ifdef FDSUP_TEST_FAIL_RESTORE
        // A test build: everything is adopted (processes, pipes, the control, notify
        // and fd sockets), and now it fails, so that the rollback is tested from the
        // worst point.
        if (restoring) return give_up("restore failure injected by this test build (FDSUP_TEST_FAIL_RESTORE)");
#endif

        upgrader = std::make_unique<fdsup::upgrade::Upgrader>(fdsup::upgrade::UpgradeSetup{
            &loop, self_binary, options.config_path, extra_args_of(options),
            [&] { return supervisor.upgrade_refusal(); },
            [&](fdsup::JsonWriter& w, std::vector<int>& keep) {
                fdsup::state::write_state(supervisor, w, keep);
                w.member("notify_dropped", notify_handler.dropped())
                    .member("control_fd", (*control)->fd())
                    .member("notify_fd", (*notify)->fd())
                    .member("fd_socket_fd", (*fd_server)->fd());
                keep.insert(keep.end(), {(*control)->fd(), (*notify)->fd(), (*fd_server)->fd()});
            },
            [&](uint64_t client) { return (*control)->client_fd(client); },
            [&](uint64_t client) { return (*control)->client_uid(client); },
            [&](const std::string& message) { manager.send(message); }});

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
        // As PID 1 (a container's) or a subreaper, processes whose parent exited are
        // reparented to us: reaped here, each time a child exits, so none stays a zombie.
        std::optional<fdsup::SignalWatch> on_chld;
        if (::getpid() == 1 || options.subreaper) {
            if (options.subreaper && ::prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
                spdlog::error("--subreaper: prctl(PR_SET_CHILD_SUBREAPER): {}", std::strerror(errno));
            auto reap = [&] {
                auto ours = [&](pid_t pid) { return supervisor.runs(pid) || fdsup::upgrade::is_preflight_child(pid); };
                for (const auto& [pid, status] : fdsup::reap_orphans(ours))
                    spdlog::info("reaped orphan pid {} ({})", pid, status.describe());
            };
            on_chld.emplace(&loop, SIGCHLD, [reap](int) { reap(); });
            reap();  // any that exited before (or during an upgrade's exec)
            spdlog::info("reaping orphans ({})", ::getpid() == 1 ? "PID 1" : "subreaper");
        }
        fdsup::SignalWatch on_usr2(&loop, SIGUSR2, [&](int) {
            spdlog::info("received SIGUSR2: in-place upgrade from {}", self_binary);
            upgrader->begin(std::nullopt, std::nullopt);
        });
        // The manager's watchdog (WatchdogSec=): pinged at half its timeout from the loop,
        // so a loop that hangs stops the pings. An upgrade's next image goes on with it.
        fdsup::Timer watchdog(&loop);
        std::function<void()> ping_watchdog;
        if (auto timeout = fdsup::ManagerNotify::watchdog_timeout(); timeout && manager.enabled()) {
            auto interval = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(*timeout / 2),
                                     std::chrono::milliseconds(1));
            ping_watchdog = [&, interval] {
                manager.send("WATCHDOG=1");
                watchdog.start(interval, ping_watchdog);
            };
            spdlog::info("service manager watchdog: WATCHDOG=1 every {} ms", interval.count());
            ping_watchdog();
        }
        // Once the restore's burst is over (and off the path of the first requests:
        // trimming several MiB takes milliseconds), the document and the warm heap go.
        fdsup::Timer settle(&loop);
        if (restoring) {
            // The handlers are in place (SIGCHLD's default was restored at the start):
            // pending signals arrive now.
            unblock_all_signals();
            finish_restore(supervisor, *state, options, manager);
            settle.start(std::chrono::seconds(1), [&] {
                state.reset();
                warm_heap.reset();
            });
        } else {
            supervisor.start_all();
            manager.send("READY=1\nSTATUS=" + supervisor.status_summary());
        }
        uv_run(&loop, UV_RUN_DEFAULT);
        // 0: every worker stopped within its stop_timeout; 1: some had to be SIGKILLed.
        if (supervisor.shutdown_forced()) exit_code = 1;
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
    // Both at once is the upgrade's pre-flight: one start of the binary, not two.
    if (options.check_config) {
        if (!load_or_report(options.config_path)) return 1;
        std::printf("%s: configuration is valid\n", options.config_path.c_str());
    }
    if (options.state_formats) std::printf("%d\n", fdsup::kStateVersion);
    if (options.check_config || options.state_formats) return 0;
    return run(options);
}
