// Recent captured output per worker, for `fdsupctl logs`, and live followers for
// `fdsupctl logs -f`.
//
// Bounded by construction: each worker keeps at most kMaxLines lines and kMaxBytes of
// text (the oldest go first). Lines are already capped by OutputCapture::kMaxLine.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace fdsup {

struct LogLine {
    std::chrono::system_clock::time_point time;
    std::string worker;
    int instance = 0;
    bool from_stderr = false;
    std::string text;
};

class LogBook {
public:
    static constexpr size_t kMaxLines = 1000;
    static constexpr size_t kMaxBytes = 1024 * 1024;

    using Follower = std::function<void(const LogLine&)>;

    // Keeps the line and hands it to the worker's followers.
    void add(LogLine line);

    // The last `count` lines of `worker`, oldest first.
    std::vector<LogLine> recent(const std::string& worker, size_t count) const;

    // `follower` gets every later line of `worker` until unfollow(id). A follower may
    // unfollow itself (or others) from inside the call.
    uint64_t follow(const std::string& worker, Follower follower);
    void unfollow(uint64_t id);

    // Drops a removed worker's lines.
    void forget(const std::string& worker);

private:
    struct Ring {
        std::deque<LogLine> lines;
        size_t bytes = 0;
    };
    struct Subscription {
        std::string worker;
        Follower follower;
    };
    std::map<std::string, Ring> rings_;
    std::map<uint64_t, Subscription> followers_;
    uint64_t next_id_ = 1;
};

}  // namespace fdsup
