#include "events/event_log.h"

#include <algorithm>
#include <array>

namespace fdsup {
namespace {

constexpr std::array<const char*, kEventKinds> kNames{
    "started",       "ready",         "start_failed",  "exited",          "restart_scheduled", "not_restarted",
    "failed",        "stopping",      "stop_timeout",  "stopped",         "probe_failed",      "recycle",
    "draining",      "on_demand_start", "idle_stop",
    "rollout_began", "rollout_step",  "rollout_finished", "rollout_stopped",
    "rollout_paused", "rollout_promoted", "rollout_aborted",
    "reload",        "reload_refused", "socket_adopted",
    "upgrade_began", "upgrade_done",  "upgrade_failed", "upgrade_rolled_back"};

// A cut never splits a UTF-8 sequence: back to the start of the character it is in.
void bound_text(std::string& text) {
    if (text.size() <= EventLog::kMaxText) return;
    size_t cut = EventLog::kMaxText;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    text.resize(cut);
    text += "...";
}

void bound(EventValue& value) {
    if (auto* text = std::get_if<std::string>(&value)) return bound_text(*text);
    auto* list = std::get_if<std::vector<std::string>>(&value);
    if (list == nullptr) return;
    if (list->size() > EventLog::kMaxList) {
        size_t more = list->size() - (EventLog::kMaxList - 1);
        list->resize(EventLog::kMaxList - 1);
        list->push_back("... " + std::to_string(more) + " more");
    }
    for (auto& item : *list) bound_text(item);
}

}  // namespace

const char* event_name(EventKind kind) { return kNames.at(static_cast<size_t>(kind)); }

std::optional<EventKind> event_kind(std::string_view name) {
    for (size_t i = 0; i < kNames.size(); ++i)
        if (name == kNames[i]) return static_cast<EventKind>(i);
    return std::nullopt;
}

void EventLog::add(Event event) {
    event.seq = next_seq_++;
    for (auto& [key, value] : event.fields) bound(value);
    if (event.time == std::chrono::system_clock::time_point{}) event.time = std::chrono::system_clock::now();
    ring_.push_back(std::move(event));
    if (ring_.size() > kCapacity) ring_.pop_front();
    if (followers_.empty()) return;
    const Event& added = ring_.back();
    std::vector<uint64_t> ids;
    ids.reserve(followers_.size());
    for (const auto& [id, follower] : followers_) ids.push_back(id);
    for (uint64_t id : ids) {
        auto it = followers_.find(id);  // an earlier follower may have removed this one
        if (it == followers_.end()) continue;
        Follower follower = it->second;  // a copy: it may unfollow itself
        follower(added);
    }
}

std::vector<Event> EventLog::after(uint64_t after, const std::function<bool(const Event&)>& pick) const {
    // Numbered in order: the first one wanted is found by its number.
    auto first = std::upper_bound(ring_.begin(), ring_.end(), after,
                                  [](uint64_t seq, const Event& e) { return seq < e.seq; });
    std::vector<Event> found;
    for (auto it = first; it != ring_.end(); ++it)
        if (!pick || pick(*it)) found.push_back(*it);
    return found;
}

bool EventLog::mentions(const std::string& worker) const {
    return std::any_of(ring_.begin(), ring_.end(), [&](const Event& e) { return e.worker == worker; });
}

uint64_t EventLog::follow(Follower follower) {
    uint64_t id = next_id_++;
    followers_.emplace(id, std::move(follower));
    return id;
}

void EventLog::unfollow(uint64_t id) { followers_.erase(id); }

void EventLog::restore(std::deque<Event> events, uint64_t next_seq) {
    ring_ = std::move(events);
    while (ring_.size() > kCapacity) ring_.pop_front();
    next_seq_ = std::max<uint64_t>(next_seq, ring_.empty() ? 1 : ring_.back().seq + 1);
}

}  // namespace fdsup
