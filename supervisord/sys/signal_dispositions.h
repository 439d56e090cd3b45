// The signals whose disposition in this process is not SIG_DFL (a handler, or ignored):
// what a spawn's vfork child must put back to the default before it execs. Asking the
// kernel costs one rt_sigaction per signal (64), which the child would otherwise pay on
// every spawn for the four or five fdsupd changed; so the answer is kept, and asked
// again only after note_signal_dispositions_changed(), which whatever changes a
// disposition after startup calls (SignalWatch: libuv's handlers come and go with it).
// Changes before the first spawn need no note: the first call asks.
#pragma once

#include <cstdint>

namespace fdsup {

// Bit (sig - 1) set for each signal 1..64 whose disposition is not SIG_DFL, as the
// kernel has it now (or at the last note). glibc's internal signals (32, 33) are always
// set: glibc installs their handlers when it first needs them, noting nothing.
uint64_t non_default_signals();

void note_signal_dispositions_changed();

}  // namespace fdsup
