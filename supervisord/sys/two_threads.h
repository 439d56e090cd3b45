// Work split over two threads: the caller's and one started for it, joined before
// returning. For the /proc reads of a usage gathering, where the kernel's side is most
// of the cost and scales with the cores (the machines fdsupd runs on have a few).
#pragma once

#include <functional>

namespace fdsup {

// Runs work(0, parts) on this thread and, when `worth_a_thread`, work(1, parts) on a
// second one at the same time (parts = 2), or else work(0, 1) alone. The second thread
// has every signal blocked (fdsupd's handlers stay on the loop's thread) and is joined
// before this returns; if it cannot be started, this thread does both parts. An
// exception from either part is thrown here after both have ended (this thread's first).
void on_two_threads(bool worth_a_thread, const std::function<void(int part, int parts)>& work);

}  // namespace fdsup
