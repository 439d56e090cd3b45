#include "sys/signal_dispositions.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

#include "sys/kernel_sigaction.h"

namespace fdsup {
namespace {

constexpr uint64_t kGlibcInternal = (uint64_t{1} << (32 - 1)) | (uint64_t{1} << (33 - 1));

// Bumped by every note; the answer is kept with the generation it was asked at. Atomic:
// a handler may be installed from another thread.
std::atomic<uint64_t> generation{1};
uint64_t asked_at = 0;
uint64_t answer = 0;

uint64_t ask_kernel() {
    uint64_t set = kGlibcInternal;
    for (int sig = 1; sig < _NSIG; ++sig) {
        KernelSigaction current{};
        if (syscall(SYS_rt_sigaction, sig, nullptr, &current, kKernelSigsetSize) != 0) continue;
        if (current.handler != SIG_DFL) set |= uint64_t{1} << (sig - 1);
    }
    return set;
}

}  // namespace

uint64_t non_default_signals() {
    uint64_t now = generation.load(std::memory_order_acquire);
    if (asked_at != now) {
        answer = ask_kernel();
        asked_at = now;
    }
    return answer;
}

void note_signal_dispositions_changed() { generation.fetch_add(1, std::memory_order_acq_rel); }

}  // namespace fdsup
