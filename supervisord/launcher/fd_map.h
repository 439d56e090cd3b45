// Planning and applying a worker's fd map: "put supervisor fd S at fd T in the child,
// for every (S, T), and close everything else".
//
// The algorithm (run by the vfork child, see child.cpp) never lets one move clobber a
// source that another move still needs, whatever the overlap between sources and targets:
//   1. dup every source to a fresh fd above the highest target (F_DUPFD_CLOEXEC);
//   2. dup2 each of those into its target (dup2 leaves the target without FD_CLOEXEC,
//      which also covers source == target: the fd becomes inheritable);
//   3. close everything above the highest target (close_range, or a loop where
//      close_range is refused by seccomp or missing);
//   4. close the holes: fds below the highest target that are not targets.
#pragma once

#include <cstddef>
#include <type_traits>
#include <vector>

#include "sys/result.h"

namespace fdsup {

struct FdMapEntry {
    int source;  // an fd of the supervisor
    int target;  // the fd number the worker sees
};

struct FdRange {
    int first;  // inclusive
    int last;   // inclusive
};

// What the child reads: plain pointers into an FdMapPlan the parent keeps alive.
struct FdMapView {
    const FdMapEntry* entries;  // sorted by target
    size_t count;
    int max_target;             // -1 when count == 0
    const FdRange* holes;       // fds in [0, max_target] that are not targets
    size_t hole_count;
    int* scratch;               // count ints the child may write (its temporary fds)
};
static_assert(std::is_trivially_destructible_v<FdMapView>);

class FdMapPlan {
public:
    // Validates the moves (sources and targets ≥ 0, no target twice) and plans them.
    static Result<FdMapPlan> make(std::vector<FdMapEntry> moves);

    FdMapView view();
    const std::vector<FdMapEntry>& entries() const { return entries_; }
    const std::vector<FdRange>& holes() const { return holes_; }
    int max_target() const { return max_target_; }
    // The highest source (-1 when there are none): the child's fd table needs nothing
    // above it once the map is the only thing left to read fds from.
    int max_source() const { return max_source_; }

private:
    std::vector<FdMapEntry> entries_;
    std::vector<FdRange> holes_;
    std::vector<int> scratch_;
    int max_target_ = -1;
    int max_source_ = -1;
};

// Runs steps 1-4 with `ops`, which provides (each returning -1 with errno set on error):
//   int dup_above(int fd, int floor);           // fcntl(fd, F_DUPFD_CLOEXEC, floor)
//   int dup_to(int from, int to);               // dup2(from, to)
//   int close_from(int first);                  // close every fd >= first
//   int close_between(int first, int last);     // close every fd in [first, last]
// Returns 0, or the failing step (1-4) with errno from the failing call. Allocation-free
// and async-signal-safe as long as `ops` is: the vfork child calls it.
template <class Ops>
int apply_fd_map(const FdMapView& map, Ops& ops) {
    for (size_t i = 0; i < map.count; ++i) {
        map.scratch[i] = ops.dup_above(map.entries[i].source, map.max_target + 1);
        if (map.scratch[i] < 0) return 1;
    }
    for (size_t i = 0; i < map.count; ++i)
        if (ops.dup_to(map.scratch[i], map.entries[i].target) < 0) return 2;
    if (ops.close_from(map.max_target + 1) < 0) return 3;
    for (size_t i = 0; i < map.hole_count; ++i)
        if (ops.close_between(map.holes[i].first, map.holes[i].last) < 0) return 4;
    return 0;
}

}  // namespace fdsup
