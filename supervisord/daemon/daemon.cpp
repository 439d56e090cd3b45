#include "daemon/daemon.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "config/loader.h"
#include "control/metrics.h"
#include "fdserver/fd_access.h"
#include "state/state.h"
#include "sys/orphans.h"
#include "upgrade/preflight.h"
#include "state/restore_timings.h"
#include "upgrade/state_file.h"
#include "version.h"

namespace fdsup::daemon {
namespace {

// How long the clients told of an upgrade may take to read the notice, in all, while
// the exec waits (nothing else is served meanwhile).
constexpr std::chrono::milliseconds kUpgradeNoticeBudget{1000};

}  // namespace

Daemon::Daemon(const Options& options, Startup startup)
    : options_(options),
      startup_(std::move(startup)),
      supervisor_(loop_.get(), std::move(startup_.config), std::move(startup_.sockets),
                  std::move(startup_.spawn_context), options.restoring()),
      notify_handler_(loop_.get(), supervisor_),
      commands_{supervisor_, [this](std::function<void()> then) { begin_shutdown(std::move(then)); },
                [this](std::optional<std::string> binary, control::Responder responder) {
                    upgrader_->begin(std::move(binary), std::move(responder));
                },
                [this] { return notify_handler_.dropped(); },
                [this](uint64_t client) { return control_ ? control_->client_credentials(client) : std::nullopt; },
                {}},
      watchdog_(loop_.get()),
      settle_(loop_.get()) {
    if (options.restoring())
        spdlog::info("fdsupd {} restoring the state of fdsupd {} (pid {}, config {})", kVersion,
                     upgrade::field_or(*startup_.state, "old_version", std::string("?")), getpid(), options.config_path);
    else
        spdlog::info("fdsupd {} starting (pid {}, config {})", kVersion, getpid(), options.config_path);
}

int Daemon::inherited(const char* key) const {
    return startup_.state ? upgrade::field_or(*startup_.state, key, -1) : -1;
}

Result<void> Daemon::open() {
    // A limit whose controller cannot be had stops the start here, naming the file.
    if (!startup_.state)
        if (auto prepared = supervisor_.prepare_limits(); !prepared) return prepared;
    if (startup_.state) {
        state::restore_timings().lap("start");
        if (auto restored = state::restore_state(supervisor_, *startup_.state, options_.rolled_back(),
                                                   startup_.state_integers_only);
            !restored)
            return restored;
        notify_handler_.restore_dropped(upgrade::field_or(*startup_.state, "notify_dropped", uint64_t{0}));
    }

    control::ControlSettings settings{[this] { return supervisor_.config().supervisor.control_idle_timeout; },
                                      [this] { return supervisor_.config().supervisor.control_max_clients; }};
    auto control = control::ControlServer::open(
        loop_.get(), supervisor_.config().supervisor, settings,
        [this](const control::Json& request, control::Responder responder) {
            control::handle_request(commands_, request, responder);
        },
        inherited("control_fd"));
    if (!control) return std::unexpected(control.error());
    control_ = std::move(*control);
    spdlog::info("control socket: {}", control_->path());

    auto notify = notify::NotifySocket::open(
        loop_.get(), startup_.notify_path,
        [this](notify::Datagram datagram) { notify_handler_.handle(std::move(datagram)); }, inherited("notify_fd"));
    if (!notify) return std::unexpected(notify.error());
    notify_ = std::move(*notify);
    spdlog::info("notify socket: {}", notify_->path());
    supervisor_.set_notify_drain([this] { notify_->receive_pending(); });

    if (startup_.manager.enabled()) {
        Supervisor::ManagerHooks hooks;
        hooks.notify = [this](const std::string& message) { startup_.manager.send(message); };
        if (startup_.park_sockets) {
            hooks.park = [this](const std::string& name, int fd) { return park(startup_.manager, name, fd); };
            hooks.unpark = [this](const std::string& name) { startup_.manager.unpark(parked_name(name)); };
        }
        supervisor_.set_manager(std::move(hooks));
    }

    auto fd_server = fdserver::FdServer::open(loop_.get(), startup_.fd_socket_path, fdserver::hooks_for(supervisor_),
                                              inherited("fd_socket_fd"));
    if (!fd_server) return std::unexpected(fd_server.error());
    fd_server_ = std::move(*fd_server);
    spdlog::info("fd socket: {}", fd_server_->path());

    // [supervisor] metrics_listen: bound again by each image (a scrape during the exec
    // of an upgrade is refused; the next one is not).
    if (const auto& listen = supervisor_.config().supervisor.metrics_listen) {
        using Page = control::MetricsServer::Page;
        auto opened = control::MetricsServer::open(
            loop_.get(), *listen,
            {{"/metrics",
              [this] {
                  supervisor_.gather_usage();
                  return Page{200, control::metrics_text(supervisor_, commands_.requests, notify_handler_.dropped()),
                              "text/plain; version=0.0.4; charset=utf-8"};
              }},
             // Answered at all: the loop runs.
             {"/healthz", [] { return Page{200, "ok\n"}; }},
             {"/readyz", [this] {
                  auto not_ready = control::not_ready(supervisor_);
                  if (not_ready.empty()) return Page{200, "ready\n"};
                  std::string body;
                  for (const auto& line : not_ready) body += line + "\n";
                  return Page{503, body};
              }}});
        // An optional endpoint never stops fdsupd once it runs: a restoring image
        // (whose workers would die with it) goes on without it.
        if (!opened && !options_.restoring()) return std::unexpected(opened.error());
        if (opened) {
            metrics_ = std::move(*opened);
            spdlog::info("metrics: http://{}/metrics", metrics_->bound());
        } else {
            spdlog::error("{}; no metrics endpoint until the next upgrade or restart", opened.error().text());
        }
    }
    if (options_.restoring() && options_.fail_restore_for_test)
        return fail("restore failure injected by this test build (FDSUP_TEST_FAIL_RESTORE)");

    upgrader_ = std::make_unique<upgrade::Upgrader>(upgrade::UpgradeSetup{
        loop_.get(), startup_.self_binary, options_.config_path, options_.extra_args(),
        [this] { return supervisor_.upgrade_refusal(); },
        [this](JsonWriter& w, std::vector<int>& keep) { write_state(w, keep); },
        [this](uint64_t client) { return control_->client_fd(client); },
        [this](uint64_t client) { return control_->client_uid(client); },
        [this](const std::string& message) { startup_.manager.send(message); },
        [this](const std::string& binary, std::optional<uint64_t> upgrade_client) {
            control::Json notice{{"upgrading", true},         {"pid", getpid()},
                                 {"from", kVersion},          {"binary", binary},
                                 {"upgrades", supervisor_.upgrades()}};
            size_t told = control_->announce_upgrade(notice, upgrade_client.value_or(0), kUpgradeNoticeBudget);
            if (told > 0) spdlog::info("upgrade: told {} control client(s) to ask the next image", told);
            supervisor_.before_exec();
        },
        [this](const std::string& why) { control_->upgrade_failed(why); },
        [this](const std::string& binary) {
            upgrade_event(EventKind::upgrade_began,
                          {{"binary", binary}, {"upgrades", static_cast<int64_t>(supervisor_.upgrades())}});
        },
        [this](const std::string& why) { upgrade_event(EventKind::upgrade_failed, {{"error", why}}); }});
    open_signals();
    start_manager_watchdog();
    if (options_.restoring()) state::restore_timings().lap("servers");
    return {};
}

void Daemon::write_state(JsonWriter& w, std::vector<int>& keep) const {
    state::write_state(supervisor_, w, keep);
    w.member("notify_dropped", notify_handler_.dropped())
        .member("control_fd", control_->fd())
        .member("notify_fd", notify_->fd())
        .member("fd_socket_fd", fd_server_->fd());
    keep.insert(keep.end(), {control_->fd(), notify_->fd(), fd_server_->fd()});
}

void Daemon::open_signals() {
    auto stop = [this](int sig) {
        spdlog::info("received SIG{}: graceful shutdown", sig == SIGINT ? "INT" : "TERM");
        begin_shutdown(nullptr);
    };
    signals_.push_back(std::make_unique<SignalWatch>(loop_.get(), SIGTERM, stop));
    signals_.push_back(std::make_unique<SignalWatch>(loop_.get(), SIGINT, stop));
    signals_.push_back(std::make_unique<SignalWatch>(loop_.get(), SIGHUP, [this](int) { reload_on_signal(); }));
    // As PID 1 (a container's) or a subreaper, processes whose parent exited are
    // reparented to us: reaped here, each time a child exits, so none stays a zombie.
    if (::getpid() == 1 || options_.subreaper) {
        if (options_.subreaper && ::prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
            spdlog::error("--subreaper: prctl(PR_SET_CHILD_SUBREAPER): {}", std::strerror(errno));
        auto reap = [this] {
            auto ours = [this](pid_t pid) { return supervisor_.reaps(pid) || upgrade::is_preflight_child(pid); };
            for (const auto& [pid, status] : reap_orphans(ours))
                spdlog::info("reaped orphan pid {} ({})", pid, status.describe());
        };
        signals_.push_back(std::make_unique<SignalWatch>(loop_.get(), SIGCHLD, [reap](int) { reap(); }));
        reap();  // any that exited before (or during an upgrade's exec)
        spdlog::info("reaping orphans ({})", ::getpid() == 1 ? "PID 1" : "subreaper");
    }
    // logrotate's postrotate may signal instead of running `fdsupctl reopen-logs`.
    signals_.push_back(std::make_unique<SignalWatch>(loop_.get(), SIGUSR1, [this](int) {
        spdlog::info("received SIGUSR1: reopening the log files");
        supervisor_.reopen_logs();
    }));
    signals_.push_back(std::make_unique<SignalWatch>(loop_.get(), SIGUSR2, [this](int) {
        spdlog::info("received SIGUSR2: in-place upgrade from {}", startup_.self_binary);
        upgrader_->begin(std::nullopt, std::nullopt);
    }));
}

void Daemon::reload_on_signal() {
    spdlog::info("received SIGHUP: reloading the configuration");
    supervisor_.reload(nullptr, [](const ReloadResult& result) {
        if (!result.ok) spdlog::error("SIGHUP reload: {}", result.error);
    });
}

// The manager's watchdog (WatchdogSec=): pinged at half its timeout from the loop, so a
// loop that hangs stops the pings. An upgrade's next image goes on with it.
void Daemon::start_manager_watchdog() {
    auto timeout = ManagerNotify::watchdog_timeout();
    if (!timeout || !startup_.manager.enabled()) return;
    auto interval =
        std::max(std::chrono::duration_cast<std::chrono::milliseconds>(*timeout / 2), std::chrono::milliseconds(1));
    ping_watchdog_ = [this, interval] {
        startup_.manager.send("WATCHDOG=1");
        watchdog_.start(interval, ping_watchdog_);
    };
    spdlog::info("service manager watchdog: WATCHDOG=1 every {} ms", interval.count());
    ping_watchdog_();
}

void Daemon::begin_shutdown(std::function<void()> on_stopped) {
    if (on_stopped) on_stopped_.push_back(std::move(on_stopped));
    if (!supervisor_.shutting_down()) startup_.manager.send("STOPPING=1");
    supervisor_.shutdown([this] {
        for (auto& callback : on_stopped_) callback();
        uv_stop(loop_.get());
    });
}

int Daemon::run() {
    if (options_.restoring()) {
        // The handlers are in place (SIGCHLD's default was restored at the start):
        // pending signals arrive now.
        unblock_all_signals();
        finish_restore();
        // Once the restore's burst is over (and off the path of the first requests:
        // trimming several MiB takes milliseconds), the document and the warm heap go.
        settle_.start(std::chrono::seconds(1), [this] {
            startup_.state.reset();
            startup_.warm_heap.reset();
        });
    } else {
        // The loop's clock is as old as the loop: the deadlines the starts arm (ready
        // timeouts, ready delays) must count from now, not from before the servers opened.
        uv_update_time(loop_.get());
        supervisor_.start_all();
        startup_.manager.send("READY=1\nSTATUS=" + supervisor_.status_summary());
    }
    uv_run(loop_.get(), UV_RUN_DEFAULT);
    // A shutdown that was asked for ends with 0, also when a worker had to be
    // SIGKILLed: fdsupd did what it was asked (a service manager must not count the
    // stop as a failure); the kills were logged one by one, and are summed up here.
    if (supervisor_.shutdown_forced())
        spdlog::warn("shutdown: not every worker stopped within its stop_timeout (or shutdown_timeout); "
                     "those were SIGKILLed");
    // Closing the signal handles restores the default dispositions: a late SIGTERM
    // would then kill us with a misleading status. Block them for the last steps.
    sigset_t late;
    sigemptyset(&late);
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2}) sigaddset(&late, sig);
    sigprocmask(SIG_BLOCK, &late, nullptr);
    return 0;
}

void Daemon::upgrade_event(EventKind kind, EventFields fields) {
    Event event;
    event.kind = kind;
    event.fields = std::move(fields);
    supervisor_.events().add(std::move(event));
}

void Daemon::finish_restore() {
    const StateDocument& state = *startup_.state;
    const std::string old_version = upgrade::field_or(state, "old_version", std::string("?"));
    ::close(options_.restore.state_fd);
    if (options_.restore.previous_image_fd >= 0) ::close(options_.restore.previous_image_fd);
    supervisor_.resume();
    state::restore_timings().lap("resume");
    control::Json reply;
    if (options_.rolled_back()) {
        spdlog::error("upgrade rolled back: {}; fdsupd {} goes on", *options_.restore.rollback_reason, kVersion);
        upgrade_event(EventKind::upgrade_rolled_back,
                      {{"error", *options_.restore.rollback_reason},
                       {"upgrades", static_cast<int64_t>(supervisor_.upgrades())}});
        reply = control::error_reply("the new image could not take over (" + *options_.restore.rollback_reason +
                                     "); rolled back: fdsupd " + kVersion + " goes on");
    } else {
        spdlog::info("upgrade done: fdsupd {} -> {} (pid {}, upgrade #{}); restored in {}", old_version, kVersion,
                     getpid(), supervisor_.upgrades(), state::restore_timings().summary());
        upgrade_event(EventKind::upgrade_done, {{"from", old_version},
                                                {"to", std::string(kVersion)},
                                                {"upgrades", static_cast<int64_t>(supervisor_.upgrades())}});
        reply = control::Json{{"ok", true},        {"old_version", old_version},
                              {"version", kVersion}, {"pid", getpid()},
                              {"state_format", kStateVersion}, {"upgrades", supervisor_.upgrades()}};
    }
    upgrade::answer_upgrade(upgrade::field_or(state, "reply_fd", -1), reply);
    startup_.manager.send("READY=1\nSTATUS=fdsupd " + std::string(kVersion) +
                          (options_.rolled_back() ? " (an upgrade was rolled back)"
                                                  : " (upgraded in place from " + old_version + ")"));
    // The file may have changed since the previous image loaded it: apply the
    // difference (not after a rollback: that upgrade did not happen).
    if (options_.rolled_back()) return;
    auto text = config::load_config_file(options_.config_path);
    if (text.config && text.config->source != supervisor_.config().source) {
        spdlog::info("upgrade: the configuration file changed since it was loaded; reloading");
        supervisor_.reload(nullptr, [](const ReloadResult& result) {
            if (!result.ok) spdlog::error("reload after upgrade: {}", result.error);
        });
    } else if (!text.config) {
        for (const auto& error : text.errors) spdlog::error("reload after upgrade: {}", error.text());
    }
}

}  // namespace fdsup::daemon
