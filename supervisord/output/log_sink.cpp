#include "output/log_sink.h"

#include <spdlog/spdlog.h>

#include "config/model.h"

namespace fdsup {

std::string StreamOrigin::label() const { return instance_label(worker, index) + (from_stderr ? " stderr" : ""); }

void LogSink::write_line(std::chrono::system_clock::time_point, std::string_view line) {
    spdlog::info("{}: {}", label_, line);
}

}  // namespace fdsup
