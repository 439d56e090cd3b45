// Who a line of fdsupd's log is about: the worker, instance and pid (and, for a line of
// a worker's captured output, its stream and the bare line). The text format says it in
// the message ("worker web[2]: started pid 1250"); log_format = "json" gives each its own
// field (json_log_format.h), for log shippers to filter on.
//
// Explicit and cheap: a LogAbout lives around the log calls about one subject and
// points a thread-local at it; the formatter, which spdlog runs inside the call (a
// synchronous logger, one thread), reads it. They nest: the innermost wins.
#pragma once

#include <spdlog/spdlog.h>
#include <sys/types.h>

#include <string_view>
#include <utility>

namespace fdsup {

struct LogSubject {
    std::string_view worker;  // empty: fdsupd's own line
    int instance = -1;        // -1: about the worker as a whole
    pid_t pid = -1;           // -1: no process meant
    // A captured output line only: "stdout" or "stderr", and the line without its
    // "web[2]: " label (the JSON "message"; the text format keeps the label).
    const char* stream = nullptr;
    std::string_view output;
};

class LogAbout {
public:
    explicit LogAbout(std::string_view worker, int instance = -1, pid_t pid = -1, const char* stream = nullptr,
                      std::string_view output = {}) noexcept
        : subject_{worker, instance, pid, stream, output}, previous_(current_) {
        current_ = &subject_;
    }
    ~LogAbout() { current_ = previous_; }
    LogAbout(const LogAbout&) = delete;
    LogAbout& operator=(const LogAbout&) = delete;

    // The subject of the line being logged now; null when none is.
    static const LogSubject* current() { return current_; }

    template <class... Args>
    void debug(spdlog::format_string_t<Args...> format, Args&&... args) const {
        spdlog::debug(format, std::forward<Args>(args)...);
    }
    template <class... Args>
    void info(spdlog::format_string_t<Args...> format, Args&&... args) const {
        spdlog::info(format, std::forward<Args>(args)...);
    }
    template <class... Args>
    void warn(spdlog::format_string_t<Args...> format, Args&&... args) const {
        spdlog::warn(format, std::forward<Args>(args)...);
    }
    template <class... Args>
    void error(spdlog::format_string_t<Args...> format, Args&&... args) const {
        spdlog::error(format, std::forward<Args>(args)...);
    }

private:
    LogSubject subject_;
    const LogSubject* previous_;
    static thread_local const LogSubject* current_;
};

}  // namespace fdsup
