// stdout/stderr = "rotate:PATH": each line goes into the LogFile at PATH, shared by every
// stream written there (a worker's stdout and stderr, or instances whose path has no
// {instance}). Lines are written as the worker wrote them, after their stamp: a stderr
// line is not marked (as on a terminal, or with 2>&1); `fdsupctl logs` tells them apart.
#pragma once

#include <memory>

#include "output/line_sink.h"
#include "output/log_file.h"

namespace fdsup {

class RotateSink : public LineSink {
public:
    explicit RotateSink(std::shared_ptr<LogFile> file) : file_(std::move(file)) {}
    void write_line(std::chrono::system_clock::time_point time, std::string_view line) override {
        file_->append(time, line);
    }
    void flush() override { file_->flush(); }

private:
    std::shared_ptr<LogFile> file_;
};

}  // namespace fdsup
