// fdsupd's command line, parsed (main.cpp).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "upgrade/upgrader.h"

namespace fdsup::daemon {

struct Options {
    std::string config_path;  // absolute: a reload reads the same file whatever the cwd
    std::optional<std::string> log_level;
    bool check_config = false;
    bool version = false;
    bool state_formats = false;
    bool subreaper = false;  // also reap orphans when not PID 1
    const char* argv0 = nullptr;
    upgrade::RestoreArgs restore;  // how an in-place upgrade starts the next image
    // A test build (tests/CMakeLists.txt: fdsupd_fail_restore) whose restore fails once
    // everything is adopted, so that the rollback is tested from the worst point.
    bool fail_restore_for_test = false;

    bool restoring() const { return restore.state_fd >= 0; }
    bool rolled_back() const { return restore.rollback_reason.has_value(); }
    // What the next image of an upgrade is started with besides its state.
    std::vector<std::string> extra_args() const {
        std::vector<std::string> args;
        if (log_level) args.insert(args.end(), {"--log-level", *log_level});
        if (subreaper) args.push_back("--subreaper");
        return args;
    }
};

}  // namespace fdsup::daemon
