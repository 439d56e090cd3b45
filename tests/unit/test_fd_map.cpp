// fd-map planning and the exact algorithm the vfork child runs, applied to a simulated
// fd table so every overlap case can be checked without processes.
#include <doctest/doctest.h>

#include <cerrno>
#include <map>
#include <string>

#include "launcher/fd_map.h"

using fdsup::FdMapEntry;
using fdsup::FdMapPlan;

namespace {

// A process's fd table: fd -> what it refers to ("open file description" name) and
// whether FD_CLOEXEC is set. Implements the Ops that apply_fd_map needs.
struct FakeFdTable {
    struct Fd {
        std::string file;
        bool cloexec;
    };
    std::map<int, Fd> fds;
    int calls_to_fail = -1;  // fail the Nth call (0-based) with EMFILE; -1: never
    int calls = 0;

    bool should_fail() {
        if (calls++ == calls_to_fail) {
            errno = EMFILE;
            return true;
        }
        return false;
    }
    int dup_above(int fd, int floor) {
        if (should_fail() || !fds.contains(fd)) return -1;
        int n = floor;
        while (fds.contains(n)) ++n;
        fds[n] = {fds[fd].file, true};
        return n;
    }
    int dup_to(int from, int to) {
        if (should_fail() || !fds.contains(from)) return -1;
        fds[to] = {fds[from].file, false};  // dup2 never sets FD_CLOEXEC on the target
        return to;
    }
    int close_from(int first) {
        if (should_fail()) return -1;
        fds.erase(fds.lower_bound(first), fds.end());
        return 0;
    }
    int close_between(int first, int last) {
        if (should_fail()) return -1;
        fds.erase(fds.lower_bound(first), fds.upper_bound(last));
        return 0;
    }
    // What survives exec: fds without FD_CLOEXEC.
    std::map<int, std::string> after_exec() const {
        std::map<int, std::string> kept;
        for (const auto& [fd, entry] : fds)
            if (!entry.cloexec) kept[fd] = entry.file;
        return kept;
    }
};

std::map<int, std::string> run(FakeFdTable& table, std::vector<FdMapEntry> moves) {
    auto plan = FdMapPlan::make(std::move(moves));
    REQUIRE(plan.has_value());
    auto view = plan->view();
    REQUIRE(fdsup::apply_fd_map(view, table) == 0);
    return table.after_exec();
}

FakeFdTable supervisor_like_table() {
    // stdio, a few listeners, pipes, the loop's epoll fd: all CLOEXEC except 0-2.
    FakeFdTable t;
    t.fds = {{0, {"tty-in", false}},  {1, {"tty-out", false}}, {2, {"tty-err", false}},
             {3, {"epoll", true}},    {4, {"sock-a", true}},   {5, {"sock-b", true}},
             {6, {"pipe-out", true}}, {7, {"pipe-err", true}}, {8, {"devnull", true}},
             {40, {"sock-far", true}}};
    return t;
}

}  // namespace

TEST_CASE("fd map: the highest source, which bounds the fds the child keeps") {
    auto plan = fdsup::FdMapPlan::make({{7, 0}, {900, 3}, {12, 1}});
    REQUIRE(plan);
    CHECK(plan->max_source() == 900);
    auto empty = fdsup::FdMapPlan::make({});
    REQUIRE(empty);
    CHECK(empty->max_source() == -1);
}

TEST_CASE("fd map: plain moves above stdio, everything else closed") {
    auto t = supervisor_like_table();
    auto result = run(t, {{8, 0}, {6, 1}, {7, 2}, {4, 3}, {5, 4}});
    CHECK(result == std::map<int, std::string>{
                        {0, "devnull"}, {1, "pipe-out"}, {2, "pipe-err"}, {3, "sock-a"}, {4, "sock-b"}});
    // Nothing but the map exists any more, CLOEXEC or not (temporaries were closed).
    CHECK(t.fds.size() == 5);
}

TEST_CASE("fd map: sources and targets overlap (a swap and a rotation)") {
    auto t = supervisor_like_table();
    // 4 -> 5 and 5 -> 4 swap; 3 -> 6, 6 -> 7, 7 -> 3 rotate.
    auto result = run(t, {{8, 0}, {8, 1}, {8, 2}, {4, 5}, {5, 4}, {3, 6}, {6, 7}, {7, 3}});
    CHECK(result == std::map<int, std::string>{{0, "devnull"},
                                               {1, "devnull"},
                                               {2, "devnull"},
                                               {3, "pipe-err"},
                                               {4, "sock-b"},
                                               {5, "sock-a"},
                                               {6, "epoll"},
                                               {7, "pipe-out"}});
}

TEST_CASE("fd map: source == target loses FD_CLOEXEC and stays") {
    auto t = supervisor_like_table();
    auto result = run(t, {{8, 0}, {1, 1}, {2, 2}, {4, 4}});
    CHECK(result == std::map<int, std::string>{{0, "devnull"}, {1, "tty-out"}, {2, "tty-err"}, {4, "sock-a"}});
    CHECK_FALSE(t.fds.at(4).cloexec);
}

TEST_CASE("fd map: holes below the highest target are closed") {
    auto t = supervisor_like_table();
    auto plan = FdMapPlan::make({{8, 0}, {6, 1}, {7, 2}, {4, 9}, {5, 12}});
    REQUIRE(plan.has_value());
    REQUIRE(plan->holes().size() == 2);
    CHECK(plan->holes()[0].first == 3);
    CHECK(plan->holes()[0].last == 8);
    CHECK(plan->holes()[1].first == 10);
    CHECK(plan->holes()[1].last == 11);
    auto view = plan->view();
    REQUIRE(fdsup::apply_fd_map(view, t) == 0);
    CHECK(t.after_exec() == std::map<int, std::string>{
                                {0, "devnull"}, {1, "pipe-out"}, {2, "pipe-err"}, {9, "sock-a"}, {12, "sock-b"}});
    CHECK(t.fds.size() == 5);  // the CLOEXEC fds in the holes (3, 5-8) are gone too
}

TEST_CASE("fd map: a socket on fd 0 (inetd style), and a source far above every target") {
    auto t = supervisor_like_table();
    auto result = run(t, {{40, 0}, {6, 1}, {7, 2}});
    CHECK(result == std::map<int, std::string>{{0, "sock-far"}, {1, "pipe-out"}, {2, "pipe-err"}});
    CHECK(t.fds.size() == 3);
}

TEST_CASE("fd map: one source at several targets") {
    auto t = supervisor_like_table();
    auto result = run(t, {{8, 0}, {8, 1}, {8, 2}, {4, 3}, {4, 7}});
    CHECK(result.at(3) == "sock-a");
    CHECK(result.at(7) == "sock-a");
    CHECK(result.size() == 5);
}

TEST_CASE("fd map: invalid maps are refused") {
    auto twice = FdMapPlan::make({{4, 3}, {5, 3}});
    REQUIRE_FALSE(twice.has_value());
    CHECK(twice.error().text() == "fd map: two fds for target 3");
    CHECK_FALSE(FdMapPlan::make({{-1, 3}}).has_value());
    CHECK_FALSE(FdMapPlan::make({{3, -2}}).has_value());
}

TEST_CASE("fd map: a failing step is reported with its number") {
    auto plan = FdMapPlan::make({{8, 0}, {6, 1}, {7, 2}});
    REQUIRE(plan.has_value());
    auto view = plan->view();
    for (int failing_call = 0; failing_call < 8; ++failing_call) {
        auto t = supervisor_like_table();
        t.calls_to_fail = failing_call;
        int step = fdsup::apply_fd_map(view, t);
        // calls 0-2: dup_above (step 1), 3-5: dup_to (step 2), 6: close_from (3), 7: holes (none here)
        int expected = failing_call < 3 ? 1 : failing_call < 6 ? 2 : failing_call == 6 ? 3 : 0;
        CHECK(step == expected);
        if (step != 0) CHECK(errno == EMFILE);
    }
}
