// stdout/stderr = "log": each line goes to fdsupd's own log, as "web[2]: line".
#pragma once

#include "output/line_sink.h"

namespace fdsup {

class LogSink : public LineSink {
public:
    explicit LogSink(StreamOrigin origin) : origin_(std::move(origin)), label_(origin_.label()) {}
    void write_line(std::chrono::system_clock::time_point time, std::string_view line) override;

private:
    StreamOrigin origin_;
    std::string label_;
};

}  // namespace fdsup
