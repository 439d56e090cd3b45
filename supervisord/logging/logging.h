// The supervisor's log: spdlog to stderr (systemd's journal or the terminal), one
// thread, no colour when stderr is not a terminal.
#pragma once

#include <optional>
#include <string>

namespace fdsup {

// Installs the default logger. `level` is one of trace|debug|info|warn|error, `format`
// text|json ([supervisor] log_format; json_log_format.h). What is logged before this
// (a state or configuration that cannot be read) is spdlog's plain default.
void init_logging(const std::string& level, const std::string& format = "text");

// Changes the level later (config reload, --log-level); false for an unknown name.
bool set_log_level(const std::string& level);

// Changes the format later (config reload); false for an unknown name.
bool set_log_format(const std::string& format);

}  // namespace fdsup
