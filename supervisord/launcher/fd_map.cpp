#include "launcher/fd_map.h"

#include <algorithm>
#include <string>

namespace fdsup {

Result<FdMapPlan> FdMapPlan::make(std::vector<FdMapEntry> moves) {
    std::sort(moves.begin(), moves.end(),
              [](const FdMapEntry& a, const FdMapEntry& b) { return a.target < b.target; });
    for (size_t i = 0; i < moves.size(); ++i) {
        if (moves[i].source < 0 || moves[i].target < 0)
            return fail("fd map: negative fd (" + std::to_string(moves[i].source) + " -> " +
                        std::to_string(moves[i].target) + ")");
        if (i > 0 && moves[i].target == moves[i - 1].target)
            return fail("fd map: two fds for target " + std::to_string(moves[i].target));
    }
    FdMapPlan plan;
    int next = 0;  // lowest fd not yet accounted for
    for (const auto& m : moves) {
        if (m.target > next) plan.holes_.push_back({next, m.target - 1});
        next = m.target + 1;
    }
    plan.max_target_ = moves.empty() ? -1 : moves.back().target;
    for (const auto& m : moves) plan.max_source_ = std::max(plan.max_source_, m.source);
    plan.entries_ = std::move(moves);
    plan.scratch_.assign(plan.entries_.size(), -1);
    return plan;
}

FdMapView FdMapPlan::view() {
    return FdMapView{entries_.data(), entries_.size(), max_target_,
                     holes_.data(),   holes_.size(),   scratch_.data()};
}

}  // namespace fdsup
