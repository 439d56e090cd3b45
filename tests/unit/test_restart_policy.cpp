#include <doctest/doctest.h>

#include "table/restart_policy.h"

using namespace std::chrono_literals;
using fdsup::Backoff;
using fdsup::Clock;
using fdsup::ExitStatus;
using fdsup::StartLimiter;
using fdsup::config::RestartPolicy;
using fdsup::config::WorkerConfig;

TEST_CASE("restart policy: always, never, on-failure with success_exit_codes") {
    WorkerConfig w;
    ExitStatus clean{false, 0, 0, false, {}}, code3{false, 3, 0, false, {}}, killed{true, 0, 9, false, {}};
    w.restart = RestartPolicy::always;
    CHECK(fdsup::should_restart(w, clean));
    CHECK(fdsup::should_restart(w, killed));
    w.restart = RestartPolicy::never;
    CHECK_FALSE(fdsup::should_restart(w, code3));
    CHECK_FALSE(fdsup::should_restart(w, killed));
    w.restart = RestartPolicy::on_failure;
    CHECK_FALSE(fdsup::should_restart(w, clean));
    CHECK(fdsup::should_restart(w, code3));
    CHECK(fdsup::should_restart(w, killed));
    w.success_exit_codes = {0, 3};
    CHECK_FALSE(fdsup::should_restart(w, code3));
    // A signal is never a success, whatever the codes say.
    w.success_exit_codes = {0, 9};
    CHECK(fdsup::should_restart(w, killed));
}

TEST_CASE("backoff: quick exits double from backoff up to backoff_max; a healthy run resets") {
    WorkerConfig w;
    w.backoff = 100ms;
    w.backoff_max = 1000ms;
    w.healthy_after = 10s;
    Backoff b;
    CHECK(b.next_delay(w, 50ms) == 100ms);
    CHECK(b.next_delay(w, 0ms) == 200ms);
    CHECK(b.next_delay(w, 9s) == 400ms);
    CHECK(b.next_delay(w, 1s) == 800ms);
    CHECK(b.next_delay(w, 1s) == 1000ms);
    CHECK(b.next_delay(w, 1s) == 1000ms);  // capped
    // A run of healthy_after or more: restart at once, and the next quick exit starts over.
    CHECK(b.next_delay(w, 10s) == 0ms);
    CHECK(b.next_delay(w, 1s) == 100ms);
    CHECK(b.next_delay(w, 60s) == 0ms);
    CHECK(b.next_delay(w, 60s) == 0ms);
}

TEST_CASE("backoff: backoff_max below backoff caps even the first delay") {
    WorkerConfig w;
    w.backoff = 5s;
    w.backoff_max = 2s;
    Backoff b;
    CHECK(b.next_delay(w, 0ms) == 2s);
}

TEST_CASE("start limit: more than burst starts within the interval are refused") {
    WorkerConfig w;
    w.start_limit_burst = 3;
    w.start_limit_interval = 10s;
    StartLimiter limiter;
    auto t0 = Clock::time_point{} + 1000s;
    CHECK(limiter.try_start(w, t0));
    CHECK(limiter.try_start(w, t0 + 1s));
    CHECK(limiter.try_start(w, t0 + 2s));
    CHECK_FALSE(limiter.try_start(w, t0 + 3s));  // a 4th within 10 s
    CHECK_FALSE(limiter.try_start(w, t0 + 9999ms));
    // The first start leaves the window at t0 + 10 s: one more is allowed.
    CHECK(limiter.try_start(w, t0 + 10s));
    CHECK_FALSE(limiter.try_start(w, t0 + 10s));
    limiter.reset();  // `fdsupctl start` clears it
    CHECK(limiter.try_start(w, t0 + 10s));
}

TEST_CASE("backoff: a start that never ran (exec failed) is never a healthy run") {
    WorkerConfig w;
    w.backoff = 100ms;
    w.backoff_max = 400ms;
    w.healthy_after = 0ms;  // every run is healthy ...
    Backoff b;
    CHECK(b.next_delay(w, 0ms) == 0ms);
    // ... but an exec failure is not a run at all.
    CHECK(b.next_failure_delay(w) == 100ms);
    CHECK(b.next_failure_delay(w) == 200ms);
    CHECK(b.next_failure_delay(w) == 400ms);
    CHECK(b.next_failure_delay(w) == 400ms);
}

TEST_CASE("permanent spawn failures: start_limit_burst of them in a row fail the worker, however slow") {
    WorkerConfig w;
    w.start_limit_burst = 3;
    w.start_limit_interval = 10ms;  // starts spaced by backoff_max never reach the start limit ...
    StartLimiter limiter;
    auto t0 = Clock::time_point{} + 1000s;
    for (int i = 0; i < 2; ++i) {
        REQUIRE(limiter.try_start(w, t0 + i * 30s));
        CHECK_FALSE(limiter.note_permanent_failure(w));
    }
    REQUIRE(limiter.try_start(w, t0 + 60s));
    CHECK(limiter.note_permanent_failure(w));  // ... but the 3rd failure in a row is the end
    CHECK(limiter.permanent_failures() == 3);

    // A start that execs ends the row; so does the operator's start (reset).
    limiter.note_exec();
    CHECK_FALSE(limiter.note_permanent_failure(w));
    CHECK_FALSE(limiter.note_permanent_failure(w));
    limiter.reset();
    CHECK(limiter.permanent_failures() == 0);
    CHECK_FALSE(limiter.note_permanent_failure(w));

    w.start_limit_burst = 1;  // the first failure is enough
    StartLimiter once;
    CHECK(once.note_permanent_failure(w));
}

TEST_CASE("permanent spawn failures: the reason names the count and the last error") {
    fdsup::Error error{"exec /x: No such file or directory (stage: execve)", 0, true};
    CHECK(fdsup::cannot_start_reason(4, error) ==
          "could not be started 4 times in a row: exec /x: No such file or directory (stage: execve)");
    CHECK(fdsup::cannot_start_reason(1, fdsup::Error{"worker w: unknown user \"x\"", 0, true}) ==
          "could not be started: worker w: unknown user \"x\"");
}
