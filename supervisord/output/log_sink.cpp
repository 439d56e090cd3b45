#include "output/log_sink.h"

#include <spdlog/spdlog.h>

#include "config/model.h"
#include "logging/log_subject.h"

namespace fdsup {

std::string StreamOrigin::label() const { return instance_label(worker, index) + (from_stderr ? " stderr" : ""); }

void LogSink::write_line(std::chrono::system_clock::time_point time, std::string_view line) {
    auto* logger = spdlog::default_logger_raw();
    if (!logger->should_log(spdlog::level::info)) return;
    // Stamped with the read's time, as the ring behind `fdsupctl logs` has it; the
    // subject gives log_format = "json" the worker, instance, pid, stream and bare line.
    LogAbout about(origin_.worker, origin_.index, origin_.pid, origin_.from_stderr ? "stderr" : "stdout", line);
    spdlog::memory_buf_t message;  // inline for most lines: no allocation
    message.append(label_.data(), label_.data() + label_.size());
    constexpr std::string_view kSeparator = ": ";
    message.append(kSeparator.data(), kSeparator.data() + kSeparator.size());
    message.append(line.data(), line.data() + line.size());
    logger->log(time, spdlog::source_loc{}, spdlog::level::info, spdlog::string_view_t(message.data(), message.size()));
}

}  // namespace fdsup
