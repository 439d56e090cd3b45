// A canary's hold (rollout/rolling_restart.h) driven through a RolloutHost that is a
// plain table: which of the checks abort it, what it hands to the rollback, and the end
// of its pause. No processes: "spawning" gives an instance a made-up pid.
#include <doctest/doctest.h>
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "rollout/rolling_restart.h"

using namespace fdsup;

namespace {

class TableHost final : public RolloutHost {
public:
    explicit TableHost(int instances) {
        worker.config.name = "web";
        worker.config.instances = instances;
        for (int i = 0; i < instances; ++i) {
            auto& in = add(i);
            in.pid = next_pid++;
            in.state = InstanceState::running;
            in.ready = true;
        }
    }

    Worker* find_worker(const std::string& name) const override {
        return name == "web" ? const_cast<Worker*>(&worker) : nullptr;
    }
    Instance* find_instance(uint64_t id) const override {
        for (const auto& in : worker.instances)
            if (in->id == id) return in.get();
        return nullptr;
    }
    Instance& add_replacement(Worker&, const Instance& old) override {
        Instance& fresh = add(old.index);
        fresh.replacement = true;
        return fresh;
    }
    void start_fresh(Instance& instance) override { spawn(instance); }
    void spawn(Instance& instance) override {
        instance.pid = next_pid++;
        instance.state = InstanceState::starting;
        instance.ready = false;
        spawned_specs.push_back(instance.spec);
    }
    void stop_instance(Instance& instance) override {
        // Stopped at once: the process is gone.
        instance.pid = -1;
        instance.ready = false;
        instance.state = InstanceState::stopped;
    }
    void retire_instance(Instance& instance) override {
        if (!drain) return stop_instance(instance);
        instance.draining = true;  // stop_delay: still serving
        instance.ready = false;
    }
    void keep_instance(Instance& instance) override {
        instance.draining = false;
        instance.retiring = false;
        instance.ready = true;
    }
    void wake_at(Clock::time_point when) override { woken_at = when; }
    void roll_back(const RollingRestart& aborted) override { rolled_back = aborted.replaced_instances(); }
    void state_changed() override {}
    bool shutting_down() const override { return false; }
    EventLog& events() override { return journal; }

    // Whatever the driver started becomes ready and in service.
    void make_ready() {
        for (auto& in : worker.instances)
            if (in->state == InstanceState::starting) {
                in->state = InstanceState::running;
                in->ready = true;
            }
    }
    Instance* in_service(int index) {
        for (auto& in : worker.instances)
            if (in->index == index && !in->retiring && !in->replacement && in->has_process()) return in.get();
        return nullptr;
    }

    uv_loop_t* loop = uv_default_loop();
    bool drain = false;  // retire_instance drains (stop_delay) instead of stopping
    EventLog journal;
    Worker worker;
    uint64_t next_id = 1;
    pid_t next_pid = 1000;
    std::vector<std::shared_ptr<const config::WorkerConfig>> spawned_specs;
    std::optional<Clock::time_point> woken_at;
    std::optional<std::vector<uint64_t>> rolled_back;

private:
    Instance& add(int index) {
        worker.instances.push_back(std::make_unique<Instance>(loop, &worker, index, next_id++));
        return *worker.instances.back();
    }
};

std::vector<RollingRestart::Slot> slots_of(const TableHost& host) {
    std::vector<RollingRestart::Slot> slots;
    for (const auto& in : host.worker.instances) slots.push_back({in->index, in->id, in->pid, 0, -1, false, {}});
    return slots;
}

// A rollout of 3 instances with a canary of 1, advanced until it holds.
std::shared_ptr<RollingRestart> held(TableHost& host, config::Duration pause) {
    auto rollout = std::make_shared<RollingRestart>("web", 0, slots_of(host), 2, 1);
    rollout->pause = pause;
    CHECK_FALSE(rollout->advance(host));
    CHECK(rollout->phase() == "canary");
    host.make_ready();
    CHECK_FALSE(rollout->advance(host));
    REQUIRE(rollout->plan.holding());
    CHECK(rollout->phase() == "paused");
    return rollout;
}

}  // namespace

TEST_CASE("canary: it holds after its instances, and each check aborts it into a rollback of the canary") {
    struct Trigger {
        const char* name;
        void (*apply)(TableHost&);
        const char* reason;
    };
    const Trigger triggers[] = {
        {"exit",
         [](TableHost& h) {
             Instance* c = h.in_service(0);
             c->pid = -1;
             c->state = InstanceState::backoff;
             c->last_exit = ExitStatus{false, 1, 0, false, {}};
         },
         "canary failed: web[0] exited with code 1"},
        {"liveness",
         [](TableHost& h) {
             h.in_service(0)->health.failures = 1;
             h.in_service(0)->health.last = ProbeOutcome{false, "GET /healthz: 503", {}, {}};
         },
         "canary failed: web[0] failed its liveness probe: GET /healthz: 503"},
        {"not ready",
         [](TableHost& h) { h.in_service(0)->state = InstanceState::stopping; },
         "canary failed: web[0] is no longer ready"},
        {"restarted in place",
         [](TableHost& h) { h.in_service(0)->pid = 4242; },
         "canary failed: web[0] was restarted (pid 4242)"},
        {"a sibling restarted",
         [](TableHost& h) { h.in_service(2)->restarts++; },
         "canary failed: worker web restarted an instance during the pause"},
    };
    for (const auto& trigger : triggers) {
        CAPTURE(trigger.name);
        TableHost host(3);
        pid_t old1 = host.in_service(1)->pid, old2 = host.in_service(2)->pid;
        auto rollout = held(host, config::Duration(60000));
        REQUIRE(host.woken_at.has_value());  // the end of the pause is asked for
        uint64_t canary = host.in_service(0) ? host.in_service(0)->id : 0;
        trigger.apply(host);
        CHECK(rollout->advance(host));  // aborted, and finished: nothing was draining
        CHECK(rollout->aborted);
        CHECK(rollout->stop_reason == trigger.reason);
        CHECK(rollout->phase() == "aborted");
        REQUIRE(host.rolled_back.has_value());
        CHECK(*host.rolled_back == std::vector<uint64_t>{canary});
        // The others were never touched.
        CHECK(host.in_service(1)->pid == old1);
        CHECK(host.in_service(2)->pid == old2);
        CHECK(rollout->plan.state(1) == RolloutPlan::SlotState::skipped);
    }
}

TEST_CASE("canary: a quiet hold waits, the end of the pause lets the rest go, and promote does too") {
    TableHost host(3);
    auto rollout = held(host, config::Duration(60000));
    for (int i = 0; i < 3; ++i) CHECK_FALSE(rollout->advance(host));
    CHECK(rollout->plan.holding());
    CHECK(rollout->plan.count(RolloutPlan::SlotState::replacing) == 0u);
    rollout->hold_until = Clock::now();  // the pause is over
    CHECK_FALSE(rollout->advance(host));
    CHECK(rollout->phase() == "rolling");
    CHECK(rollout->plan.count(RolloutPlan::SlotState::replacing) == 2u);  // max_surge 2
    host.make_ready();
    CHECK(rollout->advance(host));
    CHECK_FALSE(rollout->aborted);
    CHECK_FALSE(host.rolled_back.has_value());
    CHECK_FALSE(rollout->promote(host).has_value());  // nothing left to promote

    TableHost second(3);
    auto until_promoted = held(second, config::Duration(0));
    CHECK_FALSE(second.woken_at.has_value());  // no pause: nothing to wake for
    REQUIRE(until_promoted->promote(second).has_value());
    CHECK_FALSE(until_promoted->promote(second).has_value());  // already promoted
    CHECK_FALSE(until_promoted->advance(second));
    CHECK(until_promoted->plan.count(RolloutPlan::SlotState::replacing) == 2u);
}

TEST_CASE("canary: a reload's new spec runs only on the canary until it is promoted") {
    TableHost host(3);
    host.worker.config.command = {"/bin/old"};
    auto next = std::make_shared<const config::WorkerConfig>([&] {
        config::WorkerConfig c = host.worker.config;
        c.command = {"/bin/new"};
        return c;
    }());
    auto rollout = std::make_shared<RollingRestart>("web", 0, slots_of(host), 1, 1);
    rollout->next_config = next;
    rollout->advance(host);
    REQUIRE(host.spawned_specs.size() == 1u);
    CHECK(host.spawned_specs[0] == next);
    host.make_ready();
    rollout->advance(host);
    REQUIRE(rollout->plan.holding());
    CHECK(host.worker.config.command == std::vector<std::string>{"/bin/old"});
    CHECK(host.in_service(0)->config().command == std::vector<std::string>{"/bin/new"});
    REQUIRE(rollout->promote(host).has_value());
    CHECK(host.worker.config.command == std::vector<std::string>{"/bin/new"});
    CHECK(host.worker.config.instances == 3);
    CHECK(host.in_service(0)->spec == nullptr);  // the worker's spec now
    rollout->advance(host);
    CHECK(host.spawned_specs.back() == nullptr);
}

TEST_CASE("canary: abort is refused once stopped or finished, and an abort before the hold rolls back nothing") {
    TableHost host(3);
    auto rollout = std::make_shared<RollingRestart>("web", 0, slots_of(host), 1, 1);
    rollout->advance(host);  // the canary is starting
    REQUIRE(rollout->abort("aborted by the operator").has_value());
    CHECK(rollout->advance(host));
    CHECK(rollout->stop_reason == "aborted by the operator");
    REQUIRE(host.rolled_back.has_value());
    CHECK(host.rolled_back->empty());  // nothing was replaced yet
    CHECK_FALSE(rollout->abort("again").has_value());
    CHECK_FALSE(rollout->promote(host).has_value());
}

TEST_CASE("canary: a reload's canary that fails before it is in service still sends the worker back") {
    TableHost host(3);
    auto next = std::make_shared<const config::WorkerConfig>(host.worker.config);
    auto rollout = std::make_shared<RollingRestart>("web", 0, slots_of(host), 1, 1);
    rollout->next_config = next;
    rollout->previous_config = std::make_shared<const config::WorkerConfig>(host.worker.config);
    rollout->advance(host);
    // The replacement exits before it is ready.
    for (auto& in : host.worker.instances)
        if (in->state == InstanceState::starting) {
            in->pid = -1;
            in->state = InstanceState::exited;
            in->last_exit = ExitStatus{false, 3, 0, false, {}};
        }
    CHECK(rollout->advance(host));
    CHECK(rollout->aborted);
    REQUIRE(host.rolled_back.has_value());  // the host undoes the loaded config from here
    CHECK(host.rolled_back->empty());
}

TEST_CASE("canary: an abort gives a slot back to its old process while that still drains") {
    TableHost host(3);
    host.drain = true;
    pid_t old0 = host.in_service(0)->pid;
    auto rollout = std::make_shared<RollingRestart>("web", 0, slots_of(host), 1, 1);
    rollout->advance(host);
    host.make_ready();
    rollout->advance(host);
    // Slot 0's old process drains (stop_delay), its canary serves: the hold has begun.
    REQUIRE(rollout->plan.holding());
    REQUIRE(rollout->abort("aborted by the operator").has_value());
    CHECK(rollout->advance(host));
    CHECK(rollout->plan.state(0) == RolloutPlan::SlotState::skipped);
    Instance* back = host.in_service(0);
    REQUIRE(back != nullptr);
    CHECK(back->pid == old0);
    CHECK(back->ready);
    CHECK_FALSE(back->draining);
    REQUIRE(host.rolled_back.has_value());
    CHECK(host.rolled_back->empty());  // nothing left to roll back: the old process kept it
}

TEST_CASE("canary: promote is refused for a canary that failed a check, which aborts instead") {
    TableHost host(3);
    auto rollout = held(host, config::Duration(0));
    host.in_service(0)->health.failures = 1;
    auto promoted = rollout->promote(host);
    REQUIRE_FALSE(promoted.has_value());
    CHECK(promoted.error().text().find("not promoted: canary failed: web[0] failed its liveness probe") == 0);
    CHECK(rollout->advance(host));
    CHECK(rollout->aborted);
}
