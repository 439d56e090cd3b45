// Recent captured output per worker, for `fdsupctl logs`, and live followers for
// `fdsupctl logs -f`.
//
// Bounded by construction: each worker keeps at most kMaxLines lines and kMaxBytes of
// text (the oldest go first). Lines are already capped by OutputCapture::kMaxLine.
// Every line keeps the time of the read that brought it and a sequence number (over
// all workers, carried across an in-place upgrade with the lines: state/), by which a
// follower resumes in the next image without a line lost or shown twice.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace fdsup {

struct LogLine {
    std::chrono::system_clock::time_point time;
    std::string worker;
    int instance = 0;
    bool from_stderr = false;
    std::string text;
    uint64_t seq = 0;  // given by LogBook::add: 1, 2, ...
};

// Which of a worker's lines `fdsupctl logs` wants (all of them by default).
struct LogFilter {
    std::optional<int> instance;                                // --instance N
    std::optional<std::chrono::system_clock::time_point> since;  // --since: read at or after
    uint64_t after = 0;                                          // seq above (a resumed follower)

    bool matches(const LogLine& line) const {
        return (!instance || line.instance == *instance) && (!since || line.time >= *since) && line.seq > after;
    }
};

class LogBook {
public:
    static constexpr size_t kMaxLines = 1000;
    static constexpr size_t kMaxBytes = 1024 * 1024;

    using Follower = std::function<void(const LogLine&)>;

    // Numbers the line, keeps it and hands it to the worker's followers.
    void add(LogLine line);

    // The last `count` lines of `worker` that `filter` matches, oldest first.
    std::vector<LogLine> recent(const std::string& worker, size_t count, const LogFilter& filter = {}) const;

    // The number the next line gets (one above the last line's).
    uint64_t next_seq() const { return next_seq_; }

    // `follower` gets every later line of `worker` until unfollow(id). A follower may
    // unfollow itself (or others) from inside the call.
    uint64_t follow(const std::string& worker, Follower follower);
    void unfollow(uint64_t id);

    // Drops a removed worker's lines.
    void forget(const std::string& worker);

    // Every kept line, worker by worker, each oldest first (for the upgrade state).
    template <class F>
    void each_line(F f) const {
        for (const auto& [worker, ring] : rings_)
            for (const auto& line : ring.lines) f(line);
    }
    // The lines an upgrade's state carried, numbered as they were (each worker's in
    // order), and the number the next line gets. Before any line is added.
    void restore(std::vector<LogLine> lines, uint64_t next_seq);

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
    uint64_t next_seq_ = 1;

    void keep(LogLine line);
};

}  // namespace fdsup
