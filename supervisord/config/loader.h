// Reads a TOML config into config::Config and validates it completely: every problem
// found is reported (not just the first), each pointing at FILE:LINE:COL.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/model.h"

namespace fdsup::config {

struct ConfigError {
    std::string file;
    int line = 0;      // 1-based; 0 when the problem has no position (unreadable file)
    int column = 0;
    std::string message;

    // "FILE:LINE:COL: message" (or "FILE: message" without a position)
    std::string text() const;
};

struct LoadResult {
    std::optional<Config> config;          // set iff errors is empty
    std::vector<ConfigError> errors;
    // Valid, but probably not what was meant (each message starts with "warning: ").
    std::vector<ConfigError> warnings;
};

// Reads and validates `path`.
LoadResult load_config_file(const std::string& path);

// Validates `text` as if it had been read from `path` (for tests and reload).
LoadResult load_config_string(std::string_view text, const std::string& path);

}  // namespace fdsup::config
