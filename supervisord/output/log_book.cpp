#include "output/log_book.h"

namespace fdsup {

void LogBook::add(LogLine line) {
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

    Ring& ring = rings_[line.worker];
    ring.bytes += line.text.size();
    ring.lines.push_back(std::move(line));
    while (!ring.lines.empty() && (ring.lines.size() > kMaxLines || ring.bytes > kMaxBytes)) {
        ring.bytes -= ring.lines.front().text.size();
        ring.lines.pop_front();
    }
}

std::vector<LogLine> LogBook::recent(const std::string& worker, size_t count) const {
    auto it = rings_.find(worker);
    if (it == rings_.end()) return {};
    const auto& lines = it->second.lines;
    size_t first = lines.size() > count ? lines.size() - count : 0;
    return {lines.begin() + static_cast<std::ptrdiff_t>(first), lines.end()};
}

uint64_t LogBook::follow(const std::string& worker, Follower follower) {
    uint64_t id = next_id_++;
    followers_.emplace(id, Subscription{worker, std::move(follower)});
    return id;
}

void LogBook::unfollow(uint64_t id) { followers_.erase(id); }

void LogBook::forget(const std::string& worker) { rings_.erase(worker); }

}  // namespace fdsup
