// A Prometheus histogram of durations: cumulative counts per upper bound, a sum and a
// count. The bounds are a static array of the caller's (kSpawnBounds, kProbeBounds).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

namespace fdsup {

// How long the launcher takes per spawn (clone to exec'd-or-failed, as the parent sees it).
inline constexpr std::array<double, 11> kSpawnBounds = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                        0.005,   0.01,   0.025,   0.05,   0.1};
// How long a probe check takes (connect to status line, exec to exit).
inline constexpr std::array<double, 12> kProbeBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                        0.05,   0.1,   0.25,   0.5,   1,    2.5};

class Histogram {
public:
    // Upper bounds in seconds; the last bucket (+Inf) is `count`.
    explicit Histogram(std::span<const double> bounds) : bounds_(bounds), buckets_(bounds.size()) {}

    void record(std::chrono::nanoseconds took) {
        double seconds = std::chrono::duration<double>(took).count();
        for (size_t i = 0; i < bounds_.size(); ++i)
            if (seconds <= bounds_[i]) ++buckets_[i];
        sum_ += seconds;
        ++count_;
    }
    std::span<const double> bounds() const { return bounds_; }
    uint64_t bucket(size_t i) const { return buckets_[i]; }  // cumulative: <= bounds()[i]
    double sum() const { return sum_; }
    uint64_t count() const { return count_; }

private:
    std::span<const double> bounds_;
    std::vector<uint64_t> buckets_;
    double sum_ = 0;
    uint64_t count_ = 0;
};

}  // namespace fdsup
