#include "rollout/rollout_plan.h"

#include <algorithm>

namespace fdsup {

RolloutPlan::RolloutPlan(size_t slots, int max_surge, size_t canary)
    : slots_(slots, SlotState::waiting),
      max_surge_(static_cast<size_t>(std::max(1, max_surge))),
      canary_(std::min(canary, slots)),
      released_(canary_ == 0 || canary_ == slots) {}

RolloutPlan::RolloutPlan(std::vector<SlotState> slots, int max_surge, bool stopped, size_t canary, bool released)
    : slots_(std::move(slots)),
      max_surge_(static_cast<size_t>(std::max(1, max_surge))),
      stopped_(stopped),
      canary_(std::min(canary, slots_.size())),
      released_(released) {}

size_t RolloutPlan::count(SlotState state) const {
    return static_cast<size_t>(std::count(slots_.begin(), slots_.end(), state));
}

std::vector<size_t> RolloutPlan::start_next() {
    std::vector<size_t> started;
    if (stopped_) return started;
    size_t in_flight = count(SlotState::replacing);
    size_t startable = released_ ? slots_.size() : canary_;
    for (size_t i = 0; i < startable && in_flight < max_surge_; ++i) {
        if (slots_[i] != SlotState::waiting) continue;
        slots_[i] = SlotState::replacing;
        started.push_back(i);
        ++in_flight;
    }
    return started;
}

void RolloutPlan::replacement_ready(size_t slot) {
    if (slots_[slot] == SlotState::replacing) slots_[slot] = SlotState::draining;
}

void RolloutPlan::old_gone(size_t slot) {
    if (slots_[slot] == SlotState::draining) slots_[slot] = SlotState::done;
}

std::vector<size_t> RolloutPlan::replacement_failed(size_t slot) {
    if (slots_[slot] != SlotState::replacing) return {};
    slots_[slot] = SlotState::failed;
    return skip_remaining();
}

std::vector<size_t> RolloutPlan::abort() { return skip_remaining(); }

std::vector<size_t> RolloutPlan::skip_remaining() {
    stopped_ = true;
    std::vector<size_t> were_replacing;
    for (size_t i = 0; i < slots_.size(); ++i) {
        if (slots_[i] == SlotState::replacing) were_replacing.push_back(i);
        if (slots_[i] == SlotState::replacing || slots_[i] == SlotState::waiting) slots_[i] = SlotState::skipped;
    }
    return were_replacing;
}

bool RolloutPlan::holding() const {
    if (released_ || stopped_) return false;
    for (size_t i = 0; i < canary_; ++i)
        if (slots_[i] != SlotState::draining && slots_[i] != SlotState::done) return false;
    return true;
}

bool RolloutPlan::finished() const {
    return std::none_of(slots_.begin(), slots_.end(), [](SlotState s) {
        return s == SlotState::waiting || s == SlotState::replacing || s == SlotState::draining;
    });
}

}  // namespace fdsup
