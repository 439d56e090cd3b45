// RestoreTimings: the steps of a restoring image, in order, each with its own time, and
// the total from begin() (the "upgrade done" line ends with them).
#include <doctest/doctest.h>

#include <chrono>
#include <regex>
#include <thread>

#include "state/restore_timings.h"

using fdsup::state::RestoreTimings;

TEST_CASE("restore timings: nothing before begin()") {
    RestoreTimings timings;
    timings.lap("read");
    CHECK(timings.summary().empty());
}

TEST_CASE("restore timings: each step in order, timed from the end of the one before") {
    RestoreTimings timings;
    timings.begin();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    timings.lap("read");
    timings.lap("parse");
    std::string summary = timings.summary();
    std::smatch m;
    REQUIRE(std::regex_match(summary, m, std::regex(R"(([0-9.]+) ms from main\(\): read ([0-9.]+) ms, parse ([0-9.]+) ms)")));
    double total = std::stod(m[1]), read = std::stod(m[2]), parse = std::stod(m[3]);
    CHECK(read >= 20.0);
    CHECK(parse < read);
    CHECK(total == doctest::Approx(read + parse).epsilon(0.01));
}

TEST_CASE("restore timings: begin() starts again") {
    RestoreTimings timings;
    timings.begin();
    timings.lap("read");
    timings.begin();
    timings.lap("adopt");
    CHECK(timings.summary().find("read") == std::string::npos);
    CHECK(timings.summary().find("adopt ") != std::string::npos);
}
