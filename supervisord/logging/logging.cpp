#include "logging/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace fdsup {

void init_logging(const std::string& level) {
    // Single-threaded sink: the supervisor logs from its one loop thread only.
    auto logger = spdlog::stderr_color_st("fdsupd");
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
    spdlog::set_default_logger(logger);
    set_log_level(level);
    // Every line is flushed: the log is how operators (and tests) see what happened,
    // and a crash must not eat the last lines.
    logger->flush_on(spdlog::level::trace);
}

bool set_log_level(const std::string& level) {
    auto parsed = spdlog::level::from_str(level);
    if (parsed == spdlog::level::off && level != "off") return false;
    spdlog::set_level(parsed);
    return true;
}

}  // namespace fdsup
