// The order of a rolling restart as pure state, without processes or timers, so the
// rules can be tested on their own (rolling_restart.cpp drives it with real instances).
//
// Every slot (instance index) goes waiting -> replacing -> draining -> done:
//   replacing: its replacement has been started and is not ready yet;
//   draining:  the replacement is ready and in service, the old process was asked to
//              stop and may still be finishing its requests.
// At most `max_surge` slots are replacing at once; draining ones do not count (they no
// longer accept). The first replacement that fails ends the rollout: that slot is
// failed, every slot still waiting or replacing is skipped (its old process keeps
// serving), and slots already draining finish. `abort` (a later command, shutdown)
// skips the same way. The rollout is finished once no slot is waiting, replacing or
// draining.
//
// A canary (`canary` > 0): only the first `canary` slots are started; the rest wait
// until release() (the operator's promote, or the end of the pause). `holding` is the
// pause itself: every canary slot's replacement is in service and the rest wait.
#pragma once

#include <cstddef>
#include <vector>

namespace fdsup {

class RolloutPlan {
public:
    enum class SlotState { waiting, replacing, draining, done, failed, skipped };

    RolloutPlan(size_t slots, int max_surge, size_t canary = 0);
    // A plan as an earlier fdsupd image left it (upgrade).
    RolloutPlan(std::vector<SlotState> slots, int max_surge, bool stopped, size_t canary = 0, bool released = true);

    // The slots whose replacement starts now (they become replacing).
    std::vector<size_t> start_next();
    void replacement_ready(size_t slot);  // replacing -> draining
    void old_gone(size_t slot);           // draining -> done
    // replacing -> failed; returns the other slots that were replacing (now skipped),
    // whose replacements must be stopped.
    std::vector<size_t> replacement_failed(size_t slot);
    // Returns the slots that were replacing (now skipped).
    std::vector<size_t> abort();
    // The canary has been judged good: the remaining slots may start.
    void release() { released_ = true; }

    size_t canary() const { return canary_; }
    bool released() const { return released_; }
    // The canary's replacements are all in service and the rest of the slots wait.
    bool holding() const;

    bool finished() const;
    bool stopped() const { return stopped_; }  // failed or aborted: nothing more starts
    size_t size() const { return slots_.size(); }
    SlotState state(size_t slot) const { return slots_[slot]; }
    size_t count(SlotState state) const;
    size_t max_surge() const { return max_surge_; }
    const std::vector<SlotState>& states() const { return slots_; }

private:
    std::vector<size_t> skip_remaining();

    std::vector<SlotState> slots_;
    size_t max_surge_;
    bool stopped_ = false;
    size_t canary_ = 0;      // 0: no canary
    bool released_ = true;   // false while a canary holds the rest back
};

}  // namespace fdsup
