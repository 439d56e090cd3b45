// fdsupd: the command line, then the steps of a start (daemon/). Everything else lives
// in fdsup_core.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "config/host_checks.h"
#include "config/loader.h"
#include "daemon/daemon.h"
#include "daemon/options.h"
#include "daemon/startup.h"
#include "state/state.h"
#include "sys/paths.h"
#include "state/restore_timings.h"
#include "upgrade/upgrader.h"
#include "version.h"

namespace {

using fdsup::daemon::Options;

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
#ifdef FDSUP_TEST_FAIL_RESTORE
    options.fail_restore_for_test = true;
#endif
    return options;
}

// A start that cannot go on. A restoring image hands the state back to the previous
// image (roll_back execs it, and returns only if that failed too: then the waiting
// `fdsupctl upgrade` is told why); a fresh one says why and exits.
int cannot_start(const Options& options, const fdsup::daemon::StartError& error) {
    if (options.restoring()) {
        fdsup::upgrade::give_up_restore(options.restore, error.state.value_or(fdsup::StateDocument::object()),
                                        options.config_path, options.extra_args(), error.message);
        spdlog::critical("{}", error.message);
        return 1;
    }
    if (error.exit_code == 2) std::fprintf(stderr, "fdsupd: %s\n", error.message.c_str());
    else if (!error.message.empty()) spdlog::critical("{}", error.message);
    return error.exit_code;
}

int run(const Options& options) {
    fdsup::daemon::prepare_process(options.restoring());
    auto startup = fdsup::daemon::load(options);
    if (!startup) return cannot_start(options, startup.error());
    if (!options.restoring())
        if (auto bound = fdsup::daemon::bind_sockets(*startup); !bound) return cannot_start(options, bound.error());
    int exit_code;
    {
        fdsup::daemon::Daemon daemon(options, std::move(*startup));
        if (auto opened = daemon.open(); !opened)
            return cannot_start(options, fdsup::daemon::StartError(opened.error().text(), 1, daemon.take_state()));
        exit_code = daemon.run();
    }
    spdlog::info("fdsupd exiting with status {}", exit_code);
    return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
    fdsup::state::restore_timings().begin();  // a restoring image's pause counts from here
    Options options = parse_args(argc, argv);
    if (options.version) {
        std::printf("fdsupd %s (state format %d)\n", fdsup::kVersion, fdsup::kStateVersion);
        return 0;
    }
    // Both at once is the upgrade's pre-flight: one start of the binary, not two.
    if (options.check_config) {
        auto loaded = fdsup::config::load_config_file(options.config_path);
        for (const auto& error : loaded.errors) std::fprintf(stderr, "%s\n", error.text().c_str());
        if (!loaded.config) return 1;
        // Warnings change nothing: the configuration is valid (exit 0).
        for (const auto& warning : loaded.warnings) std::fprintf(stderr, "%s\n", warning.text().c_str());
        for (const auto& warning : fdsup::config::check_host(*loaded.config))
            std::fprintf(stderr, "%s: %s\n", options.config_path.c_str(), warning.c_str());
        std::printf("%s: configuration is valid\n", options.config_path.c_str());
    }
    if (options.state_formats) std::printf("%d\n", fdsup::kStateVersion);
    if (options.check_config || options.state_formats) return 0;
    return run(options);
}
