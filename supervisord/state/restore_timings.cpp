#include "state/restore_timings.h"

#include <spdlog/spdlog.h>  // fmt::format

namespace fdsup::state {
namespace {

double ms(RestoreTimings::Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace

void RestoreTimings::begin() {
    began_ = last_ = Clock::now();
    laps_.clear();
}

void RestoreTimings::lap(const char* step) {
    if (began_ == Clock::time_point{}) return;
    auto now = Clock::now();
    laps_.emplace_back(step, now - last_);
    last_ = now;
}

std::string RestoreTimings::summary() const {
    if (began_ == Clock::time_point{}) return "";
    std::string text = fmt::format("{:.2f} ms from main()", ms(last_ - began_));
    const char* separator = ": ";
    for (const auto& [step, took] : laps_) {
        text += fmt::format("{}{} {:.2f} ms", separator, step, ms(took));
        separator = ", ";
    }
    return text;
}

RestoreTimings& restore_timings() {
    static RestoreTimings timings;
    return timings;
}

}  // namespace fdsup::state
