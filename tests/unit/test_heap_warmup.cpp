// HeapWarmup: the heap an upgrade's restore is about to fill is made resident in one
// go, kept for the allocations that follow, and given back on release.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "sys/heap_warmup.h"

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
    fdsup::HeapWarmup warm(64 * kMiB);
    size_t warmed = resident_bytes();
    CHECK(warmed >= before + 60 * kMiB);  // populated, not merely reserved

#if !defined(__SANITIZE_ADDRESS__)  // ASan's allocator is not glibc's: the rest is glibc's behaviour
    // Thousands of small allocations (what a restore makes) land in those pages.
    std::vector<void*> blocks;
    for (int i = 0; i < 100000; ++i) blocks.push_back(std::malloc(256));
    CHECK(resident_bytes() < warmed + 8 * kMiB);
    for (void* block : blocks) std::free(block);

    warm.release();
    CHECK(resident_bytes() < warmed - 56 * kMiB);
#endif
}
