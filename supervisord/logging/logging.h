// The supervisor's log: spdlog to stderr (systemd's journal or the terminal), one
// thread, no colour when stderr is not a terminal.
#pragma once

#include <optional>
#include <string>

namespace fdsup {

// Installs the default logger. `level` is one of trace|debug|info|warn|error.
void init_logging(const std::string& level);

// Changes the level later (config reload, --log-level); false for an unknown name.
bool set_log_level(const std::string& level);

}  // namespace fdsup
