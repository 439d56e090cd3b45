// Keeping long-lived fds at high numbers, so the fds opened for one spawn stay low.
//
// A spawn's child keeps only the fds below 1 + its highest fd-map source (launcher/
// spawn_plan.h, keep_fds_below), and the kernel copies that many slots of the
// supervisor's table. New fds take the lowest free number: if thousands of pidfds and
// capture pipes sat low, a spawn's own pipes and files would land above them and the
// copy would be as large as the table again. So each fd that lives as long as an
// instance is moved, where it is created, to the lowest free number at or above
// high_fd_base().
#pragma once

#include "sys/unique_fd.h"

namespace fdsup {

// Half the current soft RLIMIT_NOFILE (fdsupd raises soft to hard at start, before
// the first call), capped at 65,536 so the table stays small under a huge limit; 0
// (do not move) below 256, where there is no room worth the split. Read once.
int high_fd_base();

// Moves `fd` to the lowest free number >= `base` (F_DUPFD_CLOEXEC) and closes the
// original. Best effort: where that fails (EMFILE: the high range is full, EINVAL: the
// base is above the limit) or base is 0, `fd` stays as it is; only speed depends on it.
void move_fd_high(UniqueFd& fd, int base);
inline void move_fd_high(UniqueFd& fd) { move_fd_high(fd, high_fd_base()); }

}  // namespace fdsup
