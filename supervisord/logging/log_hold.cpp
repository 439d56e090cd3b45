#include "logging/log_hold.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <exception>
#include <string>

#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace fdsup {
namespace {

class HoldingStderrSink;

// The sink that holds, if fdsupd logs through one (not on a terminal).
HoldingStderrSink* holding_sink = nullptr;

// stderr without stdio: each line one write(2), or held (LogHold).
class HoldingStderrSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
public:
    ~HoldingStderrSink() override {
        if (holding_sink == this) holding_sink = nullptr;
        write_held();  // a logger replaced during a hold loses nothing
    }
    void hold() { ++holds_; }
    void release() {
        if (--holds_ > 0) return;
        write_held();
    }
    // What is held, now (the last hold ended, or fdsupd is about to die).
    void write_held() {
        if (held_.empty()) return;
        write_all(held_.data(), held_.size());
        held_.clear();
        if (held_.capacity() > kKeptCapacity) held_.shrink_to_fit();
    }

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        spdlog::memory_buf_t line;
        formatter_->format(msg, line);
        if (holds_ > 0) held_.append(line.data(), line.size());
        else write_all(line.data(), line.size());
    }
    void flush_() override {}  // nothing is buffered but what a hold holds

private:
    // As fwrite would: all of it, unless stderr fails (then the line is lost, not fdsupd).
    static void write_all(const char* bytes, size_t size) {
        while (size > 0) {
            ssize_t n = ::write(STDERR_FILENO, bytes, size);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return;
            bytes += n;
            size -= static_cast<size_t>(n);
        }
    }

    static constexpr size_t kKeptCapacity = 64 * 1024;
    int holds_ = 0;
    std::string held_;
};

// std::terminate (an exception nothing caught) does not unwind: what a hold held is
// written before the previous handler (libstdc++'s, which says what was thrown) runs.
std::terminate_handler terminate_before_holding = nullptr;

void write_held_then_terminate() {
    if (holding_sink != nullptr) holding_sink->write_held();
    if (terminate_before_holding != nullptr) terminate_before_holding();
    std::abort();
}

}  // namespace

std::shared_ptr<spdlog::sinks::sink> make_stderr_sink() {
    holding_sink = nullptr;
    if (::isatty(STDERR_FILENO) == 1) return std::make_shared<spdlog::sinks::stderr_color_sink_st>();
    auto sink = std::make_shared<HoldingStderrSink>();
    holding_sink = sink.get();
    if (std::get_terminate() != write_held_then_terminate)
        terminate_before_holding = std::set_terminate(write_held_then_terminate);
    return sink;
}

LogHold::LogHold() {
    if (holding_sink != nullptr) holding_sink->hold();
}

LogHold::~LogHold() {
    if (holding_sink != nullptr) holding_sink->release();
}

void write_held_log() {
    if (holding_sink != nullptr) holding_sink->write_held();
}

}  // namespace fdsup
