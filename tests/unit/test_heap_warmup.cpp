// HeapWarmup: the heap an upgrade's restore is about to fill is made resident in one
// go, kept for the allocations that follow, and given back on release. glibc's malloc
// only: under ASan (whose allocator refuses mallopt) the warm-up does nothing, and
// these tests are not built.
#include <doctest/doctest.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "sys/heap_warmup.h"

#if !defined(__SANITIZE_ADDRESS__)

namespace {

size_t resident_bytes() {
    long pages = 0, resident = 0;
    FILE* f = std::fopen("/proc/self/statm", "r");
    REQUIRE(f != nullptr);
    REQUIRE(std::fscanf(f, "%ld %ld", &pages, &resident) == 2);
    std::fclose(f);
    return static_cast<size_t>(resident) * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

constexpr size_t kMiB = 1 << 20;

}  // namespace

TEST_CASE("heap warmup: the heap is resident at once, reused by what follows, returned on release") {
    size_t before = resident_bytes();
    size_t free_in_heap = mallinfo2().fordblks;  // what earlier tests freed may be reused, resident already
    fdsup::HeapWarmup warm(24 * kMiB);
    size_t warmed = resident_bytes();
    CHECK(warmed + free_in_heap >= before + 22 * kMiB);  // populated, not merely reserved

    // Thousands of small allocations (what a restore makes) land in those pages.
    std::vector<void*> blocks;
    for (int i = 0; i < 60000; ++i) blocks.push_back(std::malloc(256));
    CHECK(resident_bytes() < warmed + 8 * kMiB);
    for (void* block : blocks) std::free(block);

    warm.release();
    CHECK(resident_bytes() < warmed - 20 * kMiB);
}

TEST_CASE("heap warmup: a request beyond the cap warms the cap, not the request") {
    size_t before = resident_bytes();
    size_t free_in_heap = mallinfo2().fordblks;
    fdsup::HeapWarmup warm(size_t{1} << 30);
    size_t grown = resident_bytes() - before;
    CHECK(grown + free_in_heap >= fdsup::HeapWarmup::kMaxBytes - 2 * kMiB);
    CHECK(grown <= fdsup::HeapWarmup::kMaxBytes + 8 * kMiB);
}

#endif  // !__SANITIZE_ADDRESS__
