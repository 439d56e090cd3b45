#include "launcher/spawn_error.h"

#include <cstring>

namespace fdsup {

std::string describe_child_failure(const SpawnPlan& plan, const ChildFailure& failure) {
    std::string text = std::string("exec ") + plan.path + ": " + std::strerror(failure.err) +
                       " (stage: " + child_stage_name(failure.stage);
    // The PATH search is the last step: a failure before it tried nothing.
    if (failure.stage == ChildStage::execve && plan.search_candidate_count > 0) {
        text += "; ";
        if (failure.candidate >= 0 && static_cast<size_t>(failure.candidate) < plan.search_candidate_count)
            text += std::string(plan.search_candidates[failure.candidate]) + "; ";
        text += std::string("searched PATH=") + (plan.search_path != nullptr ? plan.search_path : "");
    }
    return text + ")";
}

}  // namespace fdsup
