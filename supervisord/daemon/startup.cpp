#include "daemon/startup.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "config/loader.h"
#include "logging/logging.h"
#include "sockets/bind.h"
#include "sockets/take_over.h"
#include "sys/listen_fds.h"
#include "sys/paths.h"
#include "upgrade/reexec.h"
#include "state/restore_timings.h"
#include "upgrade/state_file.h"
#include "version.h"

namespace fdsup::daemon {
namespace {

// The restore allocates, in a heap as yet untouched, about this much per byte of state
// (the document, the instances, the captures): in use once restored, 11.5 at 10,000
// instances (23 MiB for a state of 2 MiB), 13 at 2,000 with their output captured; a
// little more, as pages the restore never touches cost as much to populate as the
// faults they save (24, sized for nlohmann's parser, populated 7 MiB too many).
constexpr size_t kHeapPerStateByte = 14;

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

// The path of our own executable as started (argv[0], searched in PATH if it has no
// '/'), made absolute. Not /proc/self/exe: after a package upgrade replaced the file,
// `upgrade` must pick up the new file at that path.
std::string resolve_self(const char* argv0) {
    std::string name = argv0 != nullptr ? argv0 : "fdsupd";
    if (name.find('/') != std::string::npos) return absolute_path(name);
    const char* path = std::getenv("PATH");
    std::string search = path != nullptr ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin";
    size_t start = 0;
    while (start <= search.size()) {
        size_t end = search.find(':', start);
        if (end == std::string::npos) end = search.size();
        std::string candidate = (end > start ? search.substr(start, end - start) : ".") + "/" + name;
        if (::access(candidate.c_str(), X_OK) == 0) return absolute_path(candidate);
        start = end + 1;
    }
    return name;
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

// The state an upgrade handed over, checked for its version.
Result<ReadJson> read_restore_state(int fd) {
    auto read = upgrade::read_state_file(fd);
    if (!read) return std::unexpected(read.error());
    const StateDocument& state = read->document;
    auto version = state.find("version");
    if (version == state.end() || !version->is_number_integer() || version->get<int>() != kStateVersion)
        return fail("the upgrade state has format " + (version == state.end() ? std::string("?") : version->dump()) +
                    "; this fdsupd reads format " + std::to_string(kStateVersion));
    return read;
}

// The state, and the configuration as the previous image had it loaded (the file may
// have changed since: the daemon applies that as a reload once it runs).
std::expected<void, StartError> load_restore_state(const Options& options, Startup& startup) {
    struct stat st{};
    if (::fstat(options.restore.state_fd, &st) == 0)
        startup.warm_heap = std::make_unique<HeapWarmup>(static_cast<size_t>(st.st_size) * kHeapPerStateByte);
    state::restore_timings().lap("warm heap");
    auto read = read_restore_state(options.restore.state_fd);
    if (!read) return std::unexpected(StartError{read.error().text()});
    startup.state = std::move(read->document);
    startup.state_integers_only = read->integers_only;
    // (The state's own fd is not in its keep list: it was added after the list was written.)
    auto inherited_fds = upgrade::fds_named_in(*startup.state);
    inherited_fds.push_back(options.restore.state_fd);
    upgrade::make_inherited_fds_cloexec(inherited_fds);
    state::restore_timings().lap("cloexec");
    auto loaded = config::load_config_string(upgrade::field_or(*startup.state, "config_source", std::string()),
                                             upgrade::field_or(*startup.state, "config_path", options.config_path));
    // The path fdsupd was first started from stays the default binary (not the
    // --binary of this upgrade, which is only our argv[0]).
    startup.self_binary = upgrade::field_or(*startup.state, "binary", startup.self_binary);
    for (const auto& error : loaded.errors) spdlog::error("the configuration the previous image ran: {}", error.text());
    if (!loaded.config)
        return std::unexpected(StartError{"cannot load the configuration the previous image ran", 1, std::move(startup.state)});
    startup.config = std::move(*loaded.config);
    state::restore_timings().lap("config");
    return {};
}

// The configured sockets: adopted from those a service manager passed (socket activation,
// matched by name: a .socket unit's under the socket's name, one fdsupd parked in the fd
// store under parked_name()), else bound here. A .socket unit's socket that differs from
// the config is an error; a parked one is taken out of the store and bound again (the
// config changed since it was parked). Passed sockets no [sockets.NAME] names are closed.
std::optional<std::vector<OwnedSocket>> adopt_or_bind(const config::Config& config, std::vector<ListenFd> passed,
                                                     ManagerNotify& manager) {
    std::vector<OwnedSocket> sockets;
    auto take = [&](const std::string& name) -> ListenFd* {
        for (auto& p : passed)
            if (p.fd && p.name == name) return &p;
        return nullptr;
    };
    auto unpark = [&](ListenFd& p) {
        manager.unpark(p.name);
        p.fd.reset();
    };
    for (const auto& socket_config : config.sockets) {
        const bool from_unit = take(socket_config.name) != nullptr;
        ListenFd* passed_fd = from_unit ? take(socket_config.name) : take(parked_name(socket_config.name));
        if (passed_fd != nullptr) {
            int number = passed_fd->fd.get();
            UniqueFd copy(::fcntl(number, F_DUPFD_CLOEXEC, 3));  // kept if a parked one is refused
            auto adopted = adopt_bound_socket(std::move(passed_fd->fd), socket_config);
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
        // adopt = { pid_file }: taken over from the running process that file names
        // (sockets/take_over.h); nothing else will do (its port is taken), so failing is fatal.
        if (socket_config.adopt) {
            auto taken = take_over_from_pid_file(socket_config);
            if (!taken) {
                spdlog::critical("{}", taken.error().text());
                return std::nullopt;
            }
            spdlog::info("socket {}: taken over from pid {} fd {} ({}), listening on {} ({})", socket_config.name,
                         taken->pid, taken->fd, socket_config.adopt->pid_file, taken->socket.bound, socket_config.listen);
            sockets.push_back({socket_config, std::move(taken->socket.fd), taken->socket.bound, 0, false,
                               OwnedSocket::AdoptedFrom{taken->pid, taken->fd}});
            continue;
        }
        auto bound = bind_socket(socket_config);
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

}  // namespace

void prepare_process(bool restoring) {
    ensure_stdio_open();
    // Whatever our parent left us must not change how we work: a SIGCHLD set to SIG_IGN
    // makes the kernel reap workers behind our back (waitid fails with ECHILD), and a
    // blocked signal would never reach libuv's handlers.
    signal(SIGCHLD, SIG_DFL);
    if (!restoring) unblock_all_signals();
}

void unblock_all_signals() {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
}

std::expected<Startup, StartError> load(const Options& options) {
    Startup startup;
    // Resolved here, not for --version or --check-config (which every pre-flight runs).
    startup.self_binary = resolve_self(options.argv0);
    if (options.restoring()) {
        if (auto loaded = load_restore_state(options, startup); !loaded) return std::unexpected(loaded.error());
    } else {
        auto loaded = config::load_config_file(options.config_path);
        for (const auto& error : loaded.errors) std::fprintf(stderr, "%s\n", error.text().c_str());
        if (!loaded.config) return std::unexpected(StartError{});
        startup.config = std::move(*loaded.config);
        startup.config_warnings = std::move(loaded.warnings);
    }
    init_logging(options.log_level.value_or(startup.config.supervisor.log_level), startup.config.supervisor.log_format);
    for (const auto& warning : startup.config_warnings) spdlog::warn("{}", warning.text());
    if (options.log_level && !set_log_level(*options.log_level))
        return std::unexpected(StartError{"unknown log level \"" + *options.log_level + "\"", 2, std::move(startup.state)});

    rlim_t starting_nofile = raise_nofile_limit();
    if (startup.state) starting_nofile = upgrade::field_or(*startup.state, "nofile_soft_at_start", starting_nofile);
    startup.notify_path = absolute_path(startup.config.supervisor.runtime_dir + "/notify.sock");
    startup.fd_socket_path = absolute_path(startup.config.supervisor.runtime_dir + "/fds.sock");
    startup.spawn_context = SpawnContext::capture(starting_nofile);
    startup.spawn_context.notify_socket = startup.notify_path;
    startup.spawn_context.fd_socket = startup.fd_socket_path;
    // Writes to a vanished reader (a closed client) must fail with EPIPE, not kill us.
    signal(SIGPIPE, SIG_IGN);
    startup.park_sockets = startup.manager.enabled() && ManagerNotify::fd_store_max() > 0;
    return startup;
}

std::expected<void, StartError> bind_sockets(Startup& startup) {
    auto bound = adopt_or_bind(startup.config, take_listen_fds(), startup.manager);
    if (!bound) return std::unexpected(StartError{});  // logged
    startup.sockets = std::move(*bound);
    if (startup.park_sockets)
        for (auto& socket : startup.sockets)
            if (!socket.held_by_manager) socket.held_by_manager = park(startup.manager, socket.config.name, socket.fd.get());
    return {};
}

bool park(ManagerNotify& manager, const std::string& name, int fd) {
    if (!manager.send("FDSTORE=1\nFDNAME=" + parked_name(name), fd)) return false;
    spdlog::info("socket {}: parked in the service manager's fd store", name);
    return true;
}

}  // namespace fdsup::daemon
