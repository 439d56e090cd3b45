#include "sys/heap_warmup.h"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>

namespace fdsup {
namespace {

// glibc's defaults. (Setting them at all turns glibc's dynamic adjustment of both off,
// for the process's life; fdsupd makes few large allocations, so nothing that matters
// changes.)
constexpr int kDefaultMmapThreshold = 128 * 1024;
constexpr int kDefaultTrimThreshold = 128 * 1024;

}  // namespace

HeapWarmup::HeapWarmup(size_t bytes) {
    bytes = std::min(bytes, kMaxBytes);
    if (bytes == 0) return;
    // From the heap (not a separate mmap), and not given back when freed: the block's
    // pages become the free space the allocations that follow are carved from. A
    // malloc that refuses either setting is left alone.
    active_ = true;
    if (mallopt(M_MMAP_THRESHOLD, static_cast<int>(bytes + (512 << 10))) == 0 ||
        mallopt(M_TRIM_THRESHOLD, static_cast<int>(2 * bytes + (1 << 20))) == 0)
        return;
    auto* block = static_cast<char*>(std::malloc(bytes));
    if (block == nullptr) return;
    const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    uintptr_t first = (reinterpret_cast<uintptr_t>(block) + page - 1) & ~(page - 1);
    uintptr_t end = (reinterpret_cast<uintptr_t>(block) + bytes) & ~(page - 1);
    if (end > first) (void)::madvise(reinterpret_cast<void*>(first), end - first, MADV_POPULATE_WRITE);
    std::free(block);
}

void HeapWarmup::release() {
    if (!active_) return;
    active_ = false;
    mallopt(M_MMAP_THRESHOLD, kDefaultMmapThreshold);
    mallopt(M_TRIM_THRESHOLD, kDefaultTrimThreshold);
    malloc_trim(0);
}

}  // namespace fdsup
