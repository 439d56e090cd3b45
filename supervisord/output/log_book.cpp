#include "output/log_book.h"

#include <algorithm>

namespace fdsup {

void LogBook::add(LogLine line) {
    line.seq = next_seq_++;
    // Followers first (they see the line even if the ring drops it at once).
    std::vector<uint64_t> ids;
    for (const auto& [id, sub] : followers_)
        if (sub.worker == line.worker) ids.push_back(id);
    for (uint64_t id : ids) {
        auto it = followers_.find(id);  // an earlier follower may have removed this one
        if (it == followers_.end()) continue;
        Follower follower = it->second.follower;  // a copy: it may unfollow itself
        follower(line);
    }

    keep(std::move(line));
}

void LogBook::keep(LogLine line) {
    Ring& ring = rings_[line.worker];
    ring.bytes += line.text.size();
    ring.lines.push_back(std::move(line));
    while (!ring.lines.empty() && (ring.lines.size() > kMaxLines || ring.bytes > kMaxBytes)) {
        ring.bytes -= ring.lines.front().text.size();
        ring.lines.pop_front();
    }
}

std::vector<LogLine> LogBook::recent(const std::string& worker, size_t count, const LogFilter& filter) const {
    auto it = rings_.find(worker);
    if (it == rings_.end() || count == 0) return {};
    const auto& lines = it->second.lines;
    // From the newest back, until `count` match.
    auto first = lines.end();
    size_t taken = 0;
    for (auto at = lines.end(); at != lines.begin() && taken < count;) {
        --at;
        if (filter.matches(*at)) {
            first = at;
            ++taken;
        }
    }
    std::vector<LogLine> picked;
    picked.reserve(taken);
    for (auto at = first; at != lines.end(); ++at)
        if (filter.matches(*at)) picked.push_back(*at);
    return picked;
}

uint64_t LogBook::follow(const std::string& worker, Follower follower) {
    uint64_t id = next_id_++;
    followers_.emplace(id, Subscription{worker, std::move(follower)});
    return id;
}

void LogBook::unfollow(uint64_t id) { followers_.erase(id); }

void LogBook::forget(const std::string& worker) { rings_.erase(worker); }

void LogBook::restore(std::vector<LogLine> lines, uint64_t next_seq) {
    for (auto& line : lines) {
        next_seq = std::max(next_seq, line.seq + 1);
        keep(std::move(line));
    }
    next_seq_ = std::max(next_seq_, next_seq);
}

}  // namespace fdsup
