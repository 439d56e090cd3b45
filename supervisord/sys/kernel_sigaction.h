// The kernel's struct sigaction and sigset size for a raw rt_sigaction(2): glibc's
// differ in layout, and its sigaction() refuses its own internal signals (32, 33).
#pragma once

#include <signal.h>

namespace fdsup {

struct KernelSigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    unsigned long mask[_NSIG / (8 * sizeof(unsigned long))];
};
constexpr unsigned long kKernelSigsetSize = _NSIG / 8;  // the kernel's sigset_t, not glibc's

}  // namespace fdsup
