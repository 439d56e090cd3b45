// A warm heap for a burst of allocations in a fresh process: an upgrade's next image
// starts with an empty heap and then, while nothing is served, builds the state document
// and thousands of instances and captures in it. Each first touch of a heap page is a
// page fault (measured ~2 us each on a 2-core VM; ~12 ms of the restore at 1,000
// instances with captured output). HeapWarmup populates that much heap with one
// madvise(MADV_POPULATE_WRITE) (Linux 5.14; elsewhere it does nothing) and keeps malloc
// from handing it back until release(), which restores malloc's defaults and trims.
#pragma once

#include <cstddef>

namespace fdsup {

class HeapWarmup {
public:
    // At most this much: malloc may refuse a larger mmap threshold (glibc caps it at
    // 32 MiB on some versions), and a block past the threshold would be an mmap that
    // free() unmaps at once, warming nothing.
    static constexpr size_t kMaxBytes = 31 << 20;

    explicit HeapWarmup(size_t bytes);  // clamped to kMaxBytes
    ~HeapWarmup() { release(); }
    HeapWarmup(const HeapWarmup&) = delete;
    HeapWarmup& operator=(const HeapWarmup&) = delete;

    // malloc's defaults again, and what is free returned to the kernel.
    void release();

private:
    bool active_ = false;
};

}  // namespace fdsup
