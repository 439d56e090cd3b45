// Keeps a flood of similar log lines (garbage on the notify socket, say) from filling
// the log: at most `burst` lines per `interval`; the next line allowed after a quiet
// spell says how many were left out (or the caller asks, see take_suppressed).
// Pure: the caller passes the time.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "sys/clock.h"

namespace fdsup {

class LogRateLimit {
public:
    LogRateLimit(int burst, Clock::duration interval) : burst_(burst), interval_(interval) {}

    // True if a line may be logged at `now`; then `suppressed` is how many lines were
    // refused since the last one allowed (to mention in it).
    bool allow(Clock::time_point now, uint64_t& suppressed) {
        if (now - window_start_ >= interval_) {
            window_start_ = now;
            used_ = 0;
        }
        if (used_ >= burst_) {
            ++suppressed_;
            return false;
        }
        ++used_;
        suppressed = suppressed_;
        suppressed_ = 0;
        return true;
    }

    // Lines refused since the last one allowed; resets the count (for a summary line
    // once a flood is over).
    uint64_t take_suppressed() { return std::exchange(suppressed_, 0); }
    // When the current window ends (a summary is due then, if anything was refused).
    Clock::time_point window_end() const { return window_start_ + interval_; }

    // " (N more WHAT)" for the line allowed after N were left out; "" when none were.
    static std::string left_out(uint64_t suppressed, const char* what) {
        return suppressed > 0 ? " (" + std::to_string(suppressed) + " more " + what + ")" : "";
    }

private:
    int burst_;
    Clock::duration interval_;
    Clock::time_point window_start_{};
    int used_ = 0;
    uint64_t suppressed_ = 0;
};

}  // namespace fdsup
