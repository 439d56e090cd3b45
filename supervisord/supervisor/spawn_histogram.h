// How long the launcher takes per spawn (clone to exec'd-or-failed, as the parent sees
// it), as a Prometheus histogram: cumulative counts per upper bound, a sum and a count.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

namespace fdsup {

class SpawnHistogram {
public:
    // Upper bounds in seconds; the last bucket (+Inf) is `count`.
    static constexpr std::array<double, 11> kBounds = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                       0.005,   0.01,   0.025,   0.05,   0.1};

    void record(std::chrono::nanoseconds took) {
        double seconds = std::chrono::duration<double>(took).count();
        for (size_t i = 0; i < kBounds.size(); ++i)
            if (seconds <= kBounds[i]) ++buckets_[i];
        sum_ += seconds;
        ++count_;
    }
    uint64_t bucket(size_t i) const { return buckets_[i]; }  // cumulative: <= kBounds[i]
    double sum() const { return sum_; }
    uint64_t count() const { return count_; }

private:
    std::array<uint64_t, kBounds.size()> buckets_{};
    double sum_ = 0;
    uint64_t count_ = 0;
};

}  // namespace fdsup
