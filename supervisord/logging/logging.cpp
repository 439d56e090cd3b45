#include "logging/logging.h"

#include <spdlog/spdlog.h>

#include "logging/json_log_format.h"
#include "logging/log_hold.h"
#include "logging/log_subject.h"

namespace fdsup {

thread_local const LogSubject* LogAbout::current_ = nullptr;

void init_logging(const std::string& level, const std::string& format) {
    // Single-threaded sink: the supervisor logs from its one loop thread only.
    auto logger = std::make_shared<spdlog::logger>("fdsupd", make_stderr_sink());
    spdlog::set_default_logger(logger);
    if (!set_log_format(format)) set_log_format("text");
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

bool set_log_format(const std::string& format) {
    auto logger = spdlog::default_logger();
    if (format == "text") logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
    else if (format == "json") logger->set_formatter(std::make_unique<JsonLogFormatter>());
    else return false;
    return true;
}

}  // namespace fdsup
