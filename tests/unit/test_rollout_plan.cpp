#include <doctest/doctest.h>

#include <cstddef>
#include <vector>

#include "rollout/rollout_plan.h"

using fdsup::RolloutPlan;
using Slot = fdsup::RolloutPlan::SlotState;
using Slots = std::vector<size_t>;

TEST_CASE("rollout plan: max_surge 1 replaces one slot at a time") {
    RolloutPlan plan(3, 1);
    CHECK(plan.size() == 3u);
    CHECK(plan.start_next() == Slots{0});
    CHECK(plan.state(0) == Slot::replacing);
    // Nothing more while slot 0's replacement is not ready.
    CHECK(plan.start_next().empty());
    CHECK(plan.start_next().empty());
    plan.replacement_ready(0);
    CHECK(plan.state(0) == Slot::draining);
    // A draining slot no longer counts against the surge: slot 1 starts before 0 is gone.
    CHECK(plan.start_next() == Slots{1});
    CHECK(plan.start_next().empty());
    plan.old_gone(0);
    CHECK(plan.state(0) == Slot::done);
    CHECK(plan.start_next().empty());  // 1 is still replacing
    plan.replacement_ready(1);
    CHECK(plan.start_next() == Slots{2});
    plan.replacement_ready(2);
    CHECK(plan.start_next().empty());  // nobody left waiting
    plan.old_gone(1);
    plan.old_gone(2);
    CHECK(plan.finished());
    CHECK_FALSE(plan.stopped());
    CHECK(plan.count(Slot::done) == 3u);
}

TEST_CASE("rollout plan: max_surge 2 starts two slots at once") {
    RolloutPlan plan(4, 2);
    CHECK(plan.start_next() == Slots{0, 1});
    CHECK(plan.start_next().empty());
    plan.replacement_ready(1);
    // One place free: the lowest waiting slot takes it.
    CHECK(plan.start_next() == Slots{2});
    plan.replacement_ready(0);
    plan.replacement_ready(2);
    CHECK(plan.start_next() == Slots{3});
}

TEST_CASE("rollout plan: finished only once every slot is done") {
    RolloutPlan plan(2, 2);
    CHECK_FALSE(plan.finished());  // waiting
    CHECK(plan.start_next() == Slots{0, 1});
    CHECK_FALSE(plan.finished());  // replacing
    plan.replacement_ready(0);
    plan.replacement_ready(1);
    CHECK_FALSE(plan.finished());  // draining: the old processes may still be serving
    plan.old_gone(0);
    CHECK_FALSE(plan.finished());
    plan.old_gone(1);
    CHECK(plan.finished());
}

TEST_CASE("rollout plan: a failed replacement skips the rest; draining slots still finish") {
    RolloutPlan plan(5, 2);
    CHECK(plan.start_next() == Slots{0, 1});
    plan.replacement_ready(0);
    CHECK(plan.start_next() == Slots{2});  // 0 drains, 1 and 2 replace
    // 2 fails: 1 was replacing too and must be stopped; 3 and 4 never start.
    CHECK(plan.replacement_failed(2) == Slots{1});
    CHECK(plan.stopped());
    CHECK(plan.state(0) == Slot::draining);
    CHECK(plan.state(1) == Slot::skipped);
    CHECK(plan.state(2) == Slot::failed);
    CHECK(plan.state(3) == Slot::skipped);
    CHECK(plan.state(4) == Slot::skipped);
    CHECK(plan.start_next().empty());
    CHECK_FALSE(plan.finished());  // 0's old process is still draining
    plan.old_gone(0);
    CHECK(plan.state(0) == Slot::done);
    CHECK(plan.finished());
    CHECK(plan.start_next().empty());
}

TEST_CASE("rollout plan: replacement_failed returns the other replacing slot") {
    RolloutPlan plan(4, 2);
    CHECK(plan.start_next() == Slots{0, 1});
    CHECK(plan.replacement_failed(1) == Slots{0});
    CHECK(plan.stopped());
    CHECK(plan.state(0) == Slot::skipped);
    CHECK(plan.state(1) == Slot::failed);
    CHECK(plan.state(2) == Slot::skipped);
    CHECK(plan.state(3) == Slot::skipped);
    CHECK(plan.start_next().empty());
    // Nothing is left running: failed and skipped slots are final.
    CHECK(plan.finished());
    // A second failure report for a slot no longer replacing changes nothing.
    CHECK(plan.replacement_failed(0).empty());
    CHECK(plan.state(0) == Slot::skipped);
}

TEST_CASE("rollout plan: abort returns the replacing slots and skips the waiting ones") {
    RolloutPlan plan(5, 2);
    CHECK(plan.start_next() == Slots{0, 1});
    plan.replacement_ready(0);
    CHECK(plan.start_next() == Slots{2});
    CHECK(plan.abort() == Slots{1, 2});
    CHECK(plan.stopped());
    CHECK(plan.state(0) == Slot::draining);
    CHECK(plan.count(Slot::skipped) == 4u);
    CHECK(plan.count(Slot::failed) == 0u);  // an abort fails nobody
    CHECK(plan.start_next().empty());
    CHECK_FALSE(plan.finished());
    plan.old_gone(0);
    CHECK(plan.finished());

    // Aborting before anything started skips everything and returns nothing to stop.
    RolloutPlan fresh(3, 1);
    CHECK(fresh.abort().empty());
    CHECK(fresh.count(Slot::skipped) == 3u);
    CHECK(fresh.finished());
}

TEST_CASE("rollout plan: events for a slot in the wrong state are ignored") {
    RolloutPlan plan(3, 1);
    // Late or duplicate events from processes must not move a slot out of order.
    plan.replacement_ready(1);  // waiting
    CHECK(plan.state(1) == Slot::waiting);
    plan.old_gone(1);  // waiting
    CHECK(plan.state(1) == Slot::waiting);
    CHECK(plan.start_next() == Slots{0});
    plan.old_gone(0);  // replacing, not draining
    CHECK(plan.state(0) == Slot::replacing);
    CHECK(plan.replacement_failed(1).empty());  // waiting
    CHECK(plan.state(1) == Slot::waiting);
    CHECK_FALSE(plan.stopped());
    plan.replacement_ready(0);
    plan.replacement_ready(0);  // twice
    CHECK(plan.state(0) == Slot::draining);
    CHECK(plan.replacement_failed(0).empty());  // draining: too late to fail
    CHECK(plan.state(0) == Slot::draining);
    CHECK_FALSE(plan.stopped());
    plan.old_gone(0);
    plan.old_gone(0);
    CHECK(plan.state(0) == Slot::done);
    plan.replacement_ready(0);  // done
    CHECK(plan.state(0) == Slot::done);
    CHECK(plan.start_next() == Slots{1});
}

TEST_CASE("rollout plan: zero slots is finished at once") {
    RolloutPlan plan(0, 1);
    CHECK(plan.size() == 0u);
    CHECK(plan.finished());
    CHECK(plan.start_next().empty());
    CHECK_FALSE(plan.stopped());
}

TEST_CASE("rollout plan: max_surge below 1 behaves as 1") {
    for (int surge : {0, -1, -100}) {
        CAPTURE(surge);
        RolloutPlan plan(3, surge);
        // Still makes progress, one at a time.
        CHECK(plan.start_next() == Slots{0});
        CHECK(plan.start_next().empty());
        plan.replacement_ready(0);
        CHECK(plan.start_next() == Slots{1});
    }
}

TEST_CASE("rollout plan: max_surge larger than the slots starts them all") {
    RolloutPlan plan(3, 10);
    CHECK(plan.start_next() == Slots{0, 1, 2});
    CHECK(plan.start_next().empty());
}

TEST_CASE("rollout plan: count per state") {
    RolloutPlan plan(6, 2);
    CHECK(plan.count(Slot::waiting) == 6u);
    CHECK(plan.count(Slot::replacing) == 0u);
    CHECK(plan.start_next() == Slots{0, 1});
    plan.replacement_ready(0);
    CHECK(plan.start_next() == Slots{2});
    plan.old_gone(0);
    plan.replacement_ready(1);
    CHECK(plan.start_next() == Slots{3});
    // 0 done, 1 draining, 2 and 3 replacing, 4 and 5 waiting.
    CHECK(plan.count(Slot::done) == 1u);
    CHECK(plan.count(Slot::draining) == 1u);
    CHECK(plan.count(Slot::replacing) == 2u);
    CHECK(plan.count(Slot::waiting) == 2u);
    CHECK(plan.count(Slot::failed) == 0u);
    CHECK(plan.count(Slot::skipped) == 0u);
    CHECK(plan.replacement_failed(3) == Slots{2});
    CHECK(plan.count(Slot::done) == 1u);
    CHECK(plan.count(Slot::draining) == 1u);
    CHECK(plan.count(Slot::replacing) == 0u);
    CHECK(plan.count(Slot::waiting) == 0u);
    CHECK(plan.count(Slot::failed) == 1u);
    CHECK(plan.count(Slot::skipped) == 3u);  // 2, 4, 5
}

TEST_CASE("rollout plan: a canary starts only its slots, holds once they are in service, and goes on when released") {
    RolloutPlan plan(4, 2, 1);
    CHECK(plan.canary() == 1u);
    CHECK_FALSE(plan.released());
    // max_surge 2, but only the canary's one slot may start.
    CHECK(plan.start_next() == Slots{0});
    CHECK(plan.start_next().empty());
    CHECK_FALSE(plan.holding());  // its replacement is not in service yet
    plan.replacement_ready(0);
    CHECK(plan.holding());
    CHECK(plan.start_next().empty());
    plan.old_gone(0);
    CHECK(plan.holding());
    CHECK_FALSE(plan.finished());
    plan.release();
    CHECK_FALSE(plan.holding());
    CHECK(plan.start_next() == Slots{1, 2});
}

TEST_CASE("rollout plan: an aborted canary skips the rest and is no longer holding") {
    RolloutPlan plan(3, 1, 2);
    CHECK(plan.start_next() == Slots{0});
    plan.replacement_ready(0);
    CHECK_FALSE(plan.holding());  // the canary is two slots: the second is still to come
    CHECK(plan.start_next() == Slots{1});
    plan.replacement_ready(1);
    CHECK(plan.holding());
    CHECK(plan.abort().empty());
    CHECK(plan.stopped());
    CHECK_FALSE(plan.holding());
    CHECK(plan.state(2) == Slot::skipped);
    plan.old_gone(0);
    plan.old_gone(1);
    CHECK(plan.finished());
}

TEST_CASE("rollout plan: a canary as large as the plan holds nothing back") {
    RolloutPlan plan(2, 2, 2);
    CHECK(plan.released());
    CHECK(plan.start_next() == Slots{0, 1});
    // Restored from an upgrade: the canary and whether it was released come back.
    RolloutPlan restored({Slot::done, Slot::waiting}, 1, false, 1, false);
    CHECK(restored.holding());
    CHECK(restored.start_next().empty());
}
