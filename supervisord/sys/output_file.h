// Opening a worker's `file:` output. fdsupd opens it as root, before the worker's user
// is taken, in a directory the worker may own: the path must not pass through any
// symlink (one planted in the directory would aim root's writes at another file), and
// a FIFO must not hang the supervisor in open().
#pragma once

#include <sys/types.h>

#include <string>

#include "sys/result.h"
#include "sys/unique_fd.h"

namespace fdsup {

// Appends (O_APPEND), creating it with `mode` (0644 for `file:`, 0640 for the files
// fdsupd writes itself, output/log_file.h). With openat2's RESOLVE_NO_SYMLINKS where the
// kernel has it (5.6) and no seccomp filter forbids it, else O_NOFOLLOW for the last
// component only. On failure the error's message is the operation ("open", "fcntl")
// and its errno the reason (ELOOP: a symlink on the path, ENXIO: a FIFO nobody reads).
Result<UniqueFd> open_output_file(const std::string& path, mode_t mode = 0644);

// Why open_output_file failed with `err`, in words: strerror's, and for ELOOP that it
// means a symlink on the path (strerror's "too many levels" misleads here).
std::string open_failure_reason(int err);

}  // namespace fdsup
